-- One row per equity: the merged quote of its latest update, upserted on every flush.
CREATE TABLE IF NOT EXISTS latest_quotes (
    ticker              TEXT PRIMARY KEY,
    "timestamp"         TEXT NOT NULL,
    price               REAL,
    volume              INTEGER,
    bid                 REAL,
    ask                 REAL,
    bid_size            INTEGER,
    ask_size            INTEGER,
    mark                REAL,
    high                REAL,
    low                 REAL,
    open                REAL,
    close               REAL,
    net_change          REAL,
    net_percent_change  REAL,
    security_status     TEXT,
    updated_at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
