#!/usr/bin/env bash
# Starts or stops a throw-away RabbitMQ node on 127.0.0.1:5672 (user guest, loopback only), with its management API on
# 127.0.0.1:15672 (the tests make a virtual host each through it), for tests and local runs.
#   scripts/rabbitmq-local.sh start   # prints the node's data folder
#   scripts/rabbitmq-local.sh stop
# The Debian package (apt-get install rabbitmq-server) does not start a node by itself in containers.
set -euo pipefail
node=${RABBITMQ_LOCAL_NODE:-ci@localhost}
# Erlang's port mapper, which the first command below may start, on loopback.
export ERL_EPMD_ADDRESS=127.0.0.1
case "${1:-start}" in
  start)
    if rabbitmq-diagnostics -n "$node" -q ping >/dev/null 2>&1; then echo "RabbitMQ node $node already running"; exit 0; fi
    dir=$(mktemp -d /tmp/rabbit.XXXXXX)
    mkdir -p "$dir/mnesia" "$dir/log"
    # The management API (queue depths for the dashboard) on loopback only.
    printf 'management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = %s\n' "${RABBITMQ_MANAGEMENT_PORT:-15672}" >"$dir/rabbitmq.conf"
    echo '[rabbitmq_management].' >"$dir/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$dir" 2>/dev/null || true # the server drops root privileges
    export RABBITMQ_CONFIG_FILE="$dir/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    export RABBITMQ_NODENAME=$node RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=${RABBITMQ_NODE_PORT:-5672}
    export RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-25672} RABBITMQ_MNESIA_BASE="$dir/mnesia" RABBITMQ_LOG_BASE="$dir/log"
    # The node's distribution port (what rabbitmqctl talks to) on loopback too.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do
      # check_running: the broker application has booted (ping answers as soon as the Erlang node is up).
      if rabbitmq-diagnostics -n "$node" -q check_running >/dev/null 2>&1; then echo "RabbitMQ node $node running (data in $dir)"; exit 0; fi
      sleep 1
    done
    echo "RabbitMQ did not start; see $dir/log" >&2
    exit 1
    ;;
  stop)
    rabbitmqctl -n "$node" stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
