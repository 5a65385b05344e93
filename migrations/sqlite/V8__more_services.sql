-- Every other Schwab streamer service (issue 15); same columns as PostgreSQL. JSON columns are
-- TEXT holding a JSON document.

CREATE TABLE IF NOT EXISTS futures_data (
    symbol TEXT NOT NULL, "timestamp" TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
    active_symbol TEXT, price REAL, volume INTEGER, bid REAL, ask REAL, bid_size INTEGER,
    ask_size INTEGER, mark REAL, last_size INTEGER, high REAL, low REAL, open REAL, close REAL,
    net_change REAL, net_percent_change REAL, open_interest INTEGER, settlement_price REAL,
    multiplier REAL, expiration TEXT, quote_time TEXT, trade_time TEXT, security_status TEXT,
    sma REAL, ema_fast REAL, ema_slow REAL, rsi REAL, macd REAL, macd_signal REAL,
    macd_hist REAL, bb_upper REAL, bb_middle REAL, bb_lower REAL, vwap REAL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (symbol, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS futures_data_timestamp_idx ON futures_data ("timestamp");

CREATE TABLE IF NOT EXISTS futures_option_data (
    symbol TEXT NOT NULL, root TEXT NOT NULL, contract_month TEXT NOT NULL,
    strike REAL NOT NULL, contract_type TEXT NOT NULL CHECK (contract_type IN ('C', 'P')),
    "timestamp" TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0, underlying TEXT, bid REAL,
    ask REAL, price REAL, mark REAL, volume INTEGER, open_interest INTEGER, bid_size INTEGER,
    ask_size INTEGER, last_size INTEGER, high REAL, low REAL, open REAL, close REAL,
    settlement_price REAL, multiplier REAL, expiration TEXT, quote_time TEXT, trade_time TEXT,
    security_status TEXT,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (symbol, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS futures_option_data_timestamp_idx ON futures_option_data ("timestamp");

CREATE TABLE IF NOT EXISTS forex_data (
    symbol TEXT NOT NULL, "timestamp" TEXT NOT NULL, seq INTEGER NOT NULL DEFAULT 0,
    price REAL, volume INTEGER, bid REAL, ask REAL, bid_size INTEGER, ask_size INTEGER,
    mark REAL, last_size INTEGER, high REAL, low REAL, open REAL, close REAL, net_change REAL,
    net_percent_change REAL, quote_time TEXT, trade_time TEXT, security_status TEXT,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (symbol, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS forex_data_timestamp_idx ON forex_data ("timestamp");

CREATE TABLE IF NOT EXISTS futures_bars (
    symbol TEXT NOT NULL, bar_start TEXT NOT NULL, open REAL NOT NULL, high REAL NOT NULL,
    low REAL NOT NULL, close REAL NOT NULL, volume INTEGER NOT NULL, sequence INTEGER,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (symbol, bar_start)
);

CREATE TABLE IF NOT EXISTS book_snapshots (
    book TEXT NOT NULL CHECK (book IN ('NYSE_BOOK', 'NASDAQ_BOOK', 'OPTIONS_BOOK')),
    symbol TEXT NOT NULL, "timestamp" TEXT NOT NULL, bid REAL, bid_size INTEGER, ask REAL,
    ask_size INTEGER, bid_levels INTEGER NOT NULL, ask_levels INTEGER NOT NULL,
    bids TEXT NOT NULL, asks TEXT NOT NULL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (book, symbol, "timestamp")
);
CREATE INDEX IF NOT EXISTS book_snapshots_timestamp_idx ON book_snapshots ("timestamp");

CREATE TABLE IF NOT EXISTS screener_snapshots (
    service TEXT NOT NULL CHECK (service IN ('SCREENER_EQUITY', 'SCREENER_OPTION')),
    screener_key TEXT NOT NULL, "timestamp" TEXT NOT NULL, sort_field TEXT, frequency INTEGER,
    item_count INTEGER NOT NULL, items TEXT NOT NULL,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (screener_key, "timestamp")
);
CREATE INDEX IF NOT EXISTS screener_snapshots_timestamp_idx ON screener_snapshots ("timestamp");

CREATE TABLE IF NOT EXISTS account_activity (
    account TEXT NOT NULL, seq INTEGER NOT NULL, message_hash INTEGER NOT NULL,
    subscription_key TEXT NOT NULL, message_type TEXT NOT NULL, received_at TEXT NOT NULL,
    message_json TEXT, message_text TEXT,
    inserted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (account, seq, message_hash)
);
CREATE INDEX IF NOT EXISTS account_activity_received_idx ON account_activity (received_at);
