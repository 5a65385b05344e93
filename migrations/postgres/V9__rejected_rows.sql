-- Quarantine: rows the database refused (a data exception, an integrity or a program-limit
-- error), isolated from their batch so the rest was written. One row per rejected row, as JSON
-- text (text, not jsonb: the row may hold what jsonb refuses, such as \u0000), with the error.
-- Pruned with the tick retention. Internal: no API role may read it.
CREATE TABLE IF NOT EXISTS rejected_rows (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name   text NOT NULL,
    row_json     text NOT NULL,
    error        text NOT NULL,
    sqlstate     text,
    batch_id     bigint NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);
SELECT market_admin.revoke_api_access('rejected_rows'::regclass);
ALTER TABLE rejected_rows ENABLE ROW LEVEL SECURITY;
