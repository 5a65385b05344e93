-- Quarantine (see the PostgreSQL migration): rows the database refused, as JSON text, with the
-- error. Pruned with the tick retention.
CREATE TABLE IF NOT EXISTS rejected_rows (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    table_name   TEXT NOT NULL,
    row_json     TEXT NOT NULL,
    error        TEXT NOT NULL,
    sqlstate     TEXT,
    batch_id     INTEGER NOT NULL,
    rejected_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
