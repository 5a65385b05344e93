-- Schwab session for the embedded SQLite default: token store and stream gaps (see the
-- PostgreSQL migration for the meaning of each column). Times are ISO-8601 UTC text.

CREATE TABLE IF NOT EXISTS schwab_tokens (
    client_id          TEXT PRIMARY KEY,
    access_token       TEXT NOT NULL,
    refresh_token      TEXT NOT NULL,
    access_expires_at  TEXT NOT NULL,
    refresh_issued_at  TEXT NOT NULL,
    updated_at         TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE IF NOT EXISTS stream_gaps (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    gap_start    TEXT NOT NULL,
    gap_end      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    inserted_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK (gap_end >= gap_start)
);
CREATE INDEX IF NOT EXISTS stream_gaps_gap_start_idx ON stream_gaps (gap_start);
