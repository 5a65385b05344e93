-- The watchlist (issue 16): symbols added and removed while the service runs (polled).
CREATE TABLE IF NOT EXISTS watchlist (
    service   TEXT NOT NULL,
    symbol    TEXT NOT NULL,
    added_by  TEXT,
    added_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    status    TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'rejected')),
    reason    TEXT,
    status_at TEXT,
    PRIMARY KEY (service, symbol)
);
