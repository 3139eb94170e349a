#!/usr/bin/env bash
# Starts or stops a throw-away S3-compatible server (s3rver from npm, pinned in tests/interop) on 127.0.0.1:4569 with
# the bucket pipeline-test, for tests and local runs. Credentials: any (s3rver checks signatures against S3RVER/S3RVER).
#   npm ci --omit=optional --prefix tests/interop && scripts/s3-local.sh start
#   scripts/s3-local.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
port=${S3_LOCAL_PORT:-4569}
state=/tmp/pipeline-s3-$port
case "${1:-start}" in
  start)
    if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then echo "S3 server already running on 127.0.0.1:$port"; exit 0; fi
    rm -rf "$state" && mkdir -p "$state/data"
    nohup node tests/interop/node_modules/s3rver/bin/s3rver.js -d "$state/data" -a 127.0.0.1 -p "$port" --silent \
      --configure-bucket pipeline-test >"$state/log" 2>&1 &
    echo $! >"$state/pid"
    for _ in $(seq 1 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "S3 server running on 127.0.0.1:$port (data in $state/data)"; exit 0; fi
      sleep 0.2
    done
    cat "$state/log" >&2
    exit 1
    ;;
  stop)
    [ -f "$state/pid" ] && kill "$(cat "$state/pid")" 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
