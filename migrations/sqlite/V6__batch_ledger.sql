-- Exactly-once batches (see the PostgreSQL migration): the id of every committed batch, pruned
-- with the tick retention.
CREATE TABLE IF NOT EXISTS batch_ledger (
    batch_id      INTEGER PRIMARY KEY,
    row_count     INTEGER NOT NULL,
    committed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
