namespace Pipeline.Runtime;

/// <summary>
/// The ledger's one schema and its one migration path, for both backends. Each step runs once, in order, inside a
/// transaction that also records it in <c>schema_version</c>; the SQL is the subset SQLite and PostgreSQL share
/// (TEXT, BIGINT, DOUBLE PRECISION, <c>ON CONFLICT</c>). Step 1 creates tables only if missing, so ledgers written
/// before the version table existed migrate in place.
/// </summary>
internal static class LedgerSchema
{
    public static readonly IReadOnlyList<string> Steps =
    [
        """
        CREATE TABLE IF NOT EXISTS runs(run_id TEXT PRIMARY KEY, name TEXT, created TEXT, state TEXT, config TEXT);
        CREATE TABLE IF NOT EXISTS shards(shard_id TEXT PRIMARY KEY, run_id TEXT, stage TEXT, uri TEXT, sha256 TEXT,
            rows BIGINT, bytes BIGINT, config_hash TEXT, parents TEXT, extra TEXT, created TEXT);
        CREATE INDEX IF NOT EXISTS shards_by_stage ON shards(run_id, stage);
        CREATE TABLE IF NOT EXISTS processed(stage TEXT, input_id TEXT, run_id TEXT, state TEXT, outputs TEXT,
            stats TEXT, error TEXT, updated TEXT, PRIMARY KEY(stage, input_id));
        CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE IF NOT EXISTS metrics(run TEXT, kind TEXT, step BIGINT, name TEXT, value DOUBLE PRECISION, ts TEXT);
        CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run, kind);
        CREATE TABLE IF NOT EXISTS evals(run_name TEXT, step BIGINT, checkpoint TEXT, task TEXT, task_version TEXT,
            metric TEXT, value DOUBLE PRECISION, ts TEXT, PRIMARY KEY(checkpoint, task, task_version, metric));
        """,
        """
        CREATE TABLE IF NOT EXISTS leases(name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires BIGINT NOT NULL);
        """,
        """
        CREATE TABLE IF NOT EXISTS exact_claims(hash BIGINT PRIMARY KEY, holder TEXT NOT NULL);
        """,
        """
        CREATE TABLE IF NOT EXISTS crawl_handoffs(run_id TEXT, part BIGINT, url TEXT, depth BIGINT, PRIMARY KEY(run_id, part, url));
        CREATE TABLE IF NOT EXISTS crawl_parts(run_id TEXT, part BIGINT, idle_after BIGINT, pages BIGINT, PRIMARY KEY(run_id, part));
        """,
        // Exact-dedup claims are a run's own (runs side by side over the same pages each keep them); the claims of
        // the deployment-wide table belong to shards already done, which are never claimed again.
        """
        CREATE TABLE IF NOT EXISTS run_exact_claims(run_id TEXT NOT NULL, hash BIGINT NOT NULL, holder TEXT NOT NULL, PRIMARY KEY(run_id, hash));
        DROP TABLE IF EXISTS exact_claims;
        """,
        // Exact duplicates are decided by the smallest document id (reproducible whatever the crawl's timing), so a
        // hash is held by a document, no longer by the shard that claimed it first; documents kept before a smaller
        // duplicate arrived are recorded as superseded.
        """
        CREATE TABLE IF NOT EXISTS run_exact_holders(run_id TEXT NOT NULL, hash BIGINT NOT NULL, doc_id TEXT NOT NULL, shard_id TEXT NOT NULL, PRIMARY KEY(run_id, hash));
        CREATE TABLE IF NOT EXISTS run_superseded(run_id TEXT NOT NULL, doc_id TEXT NOT NULL, by_id TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(run_id, doc_id));
        DROP TABLE IF EXISTS run_exact_claims;
        """,
    ];
}
