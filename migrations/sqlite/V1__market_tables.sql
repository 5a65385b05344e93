-- Market tables for the embedded SQLite default; same columns as PostgreSQL.
-- Times are ISO-8601 UTC text, so they sort and compare correctly.

CREATE TABLE IF NOT EXISTS equity_data (
    ticker              TEXT    NOT NULL,
    "timestamp"         TEXT    NOT NULL,
    seq                 INTEGER NOT NULL DEFAULT 0,
    price               REAL,
    volume              INTEGER,
    bid                 REAL,
    ask                 REAL,
    bid_size            INTEGER,
    ask_size            INTEGER,
    mark                REAL,
    last_size           INTEGER,
    high                REAL,
    low                 REAL,
    open                REAL,
    close               REAL,
    net_change          REAL,
    net_percent_change  REAL,
    quote_time          TEXT,
    trade_time          TEXT,
    security_status     TEXT,
    inserted_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (ticker, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS equity_data_timestamp_idx ON equity_data ("timestamp");

CREATE TABLE IF NOT EXISTS option_data (
    symbol              TEXT    NOT NULL,
    underlying          TEXT    NOT NULL,
    expiration          TEXT    NOT NULL,
    strike              REAL    NOT NULL,
    contract_type       TEXT    NOT NULL CHECK (contract_type IN ('C', 'P')),
    "timestamp"         TEXT    NOT NULL,
    seq                 INTEGER NOT NULL DEFAULT 0,
    bid                 REAL,
    ask                 REAL,
    price               REAL,
    mark                REAL,
    volume              INTEGER,
    open_interest       INTEGER,
    implied_volatility  REAL,
    delta               REAL,
    gamma               REAL,
    theta               REAL,
    vega                REAL,
    rho                 REAL,
    underlying_price    REAL,
    high                REAL,
    low                 REAL,
    close               REAL,
    bid_size            INTEGER,
    ask_size            INTEGER,
    net_change          REAL,
    time_value          REAL,
    theoretical_value   REAL,
    days_to_expiration  INTEGER,
    quote_time          TEXT,
    trade_time          TEXT,
    inserted_at         TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (symbol, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS option_data_timestamp_idx ON option_data ("timestamp");

CREATE TABLE IF NOT EXISTS equity_bars (
    ticker      TEXT    NOT NULL,
    bar_start   TEXT    NOT NULL,
    open        REAL    NOT NULL,
    high        REAL    NOT NULL,
    low         REAL    NOT NULL,
    close       REAL    NOT NULL,
    volume      INTEGER NOT NULL,
    sequence    INTEGER,
    chart_day   INTEGER,
    updated_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (ticker, bar_start)
);
