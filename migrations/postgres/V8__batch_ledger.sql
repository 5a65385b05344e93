-- Exactly-once batches: every flush records its batch id here in its own transaction, right
-- after BEGIN. A batch sent again (an attempt whose answer was lost, or the disk spool replayed
-- after a crash) fails this insert and is skipped, so nothing is written twice and an older copy
-- of a candle never overwrites a newer one. Pruned with the tick retention
-- (TICK_RETENTION_DAYS). Internal: no API role may read it.
CREATE TABLE IF NOT EXISTS batch_ledger (
    batch_id      bigint PRIMARY KEY,
    row_count     integer NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now()
);
SELECT market_admin.revoke_api_access('batch_ledger'::regclass);
ALTER TABLE batch_ledger ENABLE ROW LEVEL SECURITY;
