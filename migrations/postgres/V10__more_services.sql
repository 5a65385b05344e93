-- Every other Schwab streamer service (issue 15): futures, futures options, forex, futures
-- candles, books, screeners and account activity. Quote tables are merged like equity_data
-- (one full row per update) and, like the book and screener snapshots, range-partitioned by
-- UTC day on "timestamp" (retention drops whole partitions). Candles are upserted by key and
-- bar start. Market tables: SELECT for anon/authenticated (RLS with a read policy).
-- account_activity is private: no API grant at all, RLS on without a policy.

CREATE TABLE IF NOT EXISTS futures_data (
    symbol              text             NOT NULL,   -- subscribed key: /ES (front month) or /ESZ25
    "timestamp"         timestamptz      NOT NULL,   -- event time: the data item's timestamp
    seq                 integer          NOT NULL DEFAULT 0,
    active_symbol       text,                        -- the contract behind the key (field 34), e.g. /ESZ25
    price               double precision,            -- last price (field 3)
    volume              bigint,                      -- contracts, cumulative for the day (field 8)
    bid                 double precision,
    ask                 double precision,
    bid_size            bigint,
    ask_size            bigint,
    mark                double precision,            -- field 24
    last_size           bigint,
    high                double precision,
    low                 double precision,
    open                double precision,
    close               double precision,            -- previous close (field 14)
    net_change          double precision,
    net_percent_change  double precision,            -- field 20
    open_interest       bigint,
    settlement_price    double precision,
    multiplier          double precision,            -- point value (field 31)
    expiration          timestamptz,                 -- field 35
    quote_time          timestamptz,
    trade_time          timestamptz,
    security_status     text,
    sma                 double precision,
    ema_fast            double precision,
    ema_slow            double precision,
    rsi                 double precision,
    macd                double precision,
    macd_signal         double precision,
    macd_hist           double precision,
    bb_upper            double precision,
    bb_middle           double precision,
    bb_lower            double precision,
    vwap                double precision,
    inserted_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);
SELECT market_admin.partition_by_day('futures_data', 'symbol, "timestamp", seq');
CREATE INDEX IF NOT EXISTS futures_data_timestamp_idx ON futures_data ("timestamp");

CREATE TABLE IF NOT EXISTS futures_option_data (
    symbol              text             NOT NULL,   -- ./OZCZ23C565
    root                text             NOT NULL,   -- /OZC (from the key)
    contract_month      date             NOT NULL,   -- first day of the contract month (from the key)
    strike              double precision NOT NULL,   -- from the key
    contract_type       text             NOT NULL CHECK (contract_type IN ('C', 'P')),
    "timestamp"         timestamptz      NOT NULL,
    seq                 integer          NOT NULL DEFAULT 0,
    underlying          text,                        -- field 24
    bid                 double precision,
    ask                 double precision,
    price               double precision,            -- last price (field 3)
    mark                double precision,            -- field 19
    volume              bigint,
    open_interest       bigint,
    bid_size            bigint,
    ask_size            bigint,
    last_size           bigint,
    high                double precision,
    low                 double precision,
    open                double precision,
    close               double precision,
    settlement_price    double precision,
    multiplier          double precision,
    expiration          timestamptz,                 -- field 26
    quote_time          timestamptz,
    trade_time          timestamptz,
    security_status     text,
    inserted_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);
SELECT market_admin.partition_by_day('futures_option_data', 'symbol, "timestamp", seq');
CREATE INDEX IF NOT EXISTS futures_option_data_timestamp_idx ON futures_option_data ("timestamp");

CREATE TABLE IF NOT EXISTS forex_data (
    symbol              text             NOT NULL,   -- EUR/USD
    "timestamp"         timestamptz      NOT NULL,
    seq                 integer          NOT NULL DEFAULT 0,
    price               double precision,            -- last (field 3)
    volume              bigint,                      -- field 6
    bid                 double precision,
    ask                 double precision,
    bid_size            bigint,
    ask_size            bigint,
    mark                double precision,            -- field 29
    last_size           bigint,                      -- field 7
    high                double precision,
    low                 double precision,
    open                double precision,            -- field 15
    close               double precision,            -- field 12
    net_change          double precision,            -- field 16
    net_percent_change  double precision,            -- field 17
    quote_time          timestamptz,                 -- field 8
    trade_time          timestamptz,                 -- field 9
    security_status     text,
    inserted_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);
SELECT market_admin.partition_by_day('forex_data', 'symbol, "timestamp", seq');
CREATE INDEX IF NOT EXISTS forex_data_timestamp_idx ON forex_data ("timestamp");

CREATE TABLE IF NOT EXISTS futures_bars (
    symbol      text             NOT NULL,
    bar_start   timestamptz      NOT NULL,           -- candle start minute (field 1)
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      bigint           NOT NULL,
    sequence    bigint,                              -- the item's seq
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, bar_start)
);

CREATE TABLE IF NOT EXISTS book_snapshots (
    book        text             NOT NULL CHECK (book IN ('NYSE_BOOK', 'NASDAQ_BOOK', 'OPTIONS_BOOK')),
    symbol      text             NOT NULL,
    "timestamp" timestamptz      NOT NULL,           -- snapshot time (field 1)
    bid         double precision,                    -- best bid level
    bid_size    bigint,                              -- shares (contracts for OPTIONS_BOOK)
    ask         double precision,
    ask_size    bigint,
    bid_levels  integer          NOT NULL,           -- levels Schwab sent (before BOOK_DEPTH)
    ask_levels  integer          NOT NULL,
    bids        jsonb            NOT NULL,           -- top BOOK_DEPTH levels, best first
    asks        jsonb            NOT NULL,
    inserted_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (book, symbol, "timestamp")
);
SELECT market_admin.partition_by_day('book_snapshots', 'book, symbol, "timestamp"');
CREATE INDEX IF NOT EXISTS book_snapshots_timestamp_idx ON book_snapshots ("timestamp");

CREATE TABLE IF NOT EXISTS screener_snapshots (
    service     text             NOT NULL CHECK (service IN ('SCREENER_EQUITY', 'SCREENER_OPTION')),
    screener_key text            NOT NULL,           -- NASDAQ_VOLUME_30
    "timestamp" timestamptz      NOT NULL,           -- field 1
    sort_field  text,
    frequency   integer,                             -- minutes; 0 = the whole day
    item_count  integer          NOT NULL,
    items       jsonb            NOT NULL,           -- entries with Schwab's field names
    inserted_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (screener_key, "timestamp")
);
SELECT market_admin.partition_by_day('screener_snapshots', 'screener_key, "timestamp"');
CREATE INDEX IF NOT EXISTS screener_snapshots_timestamp_idx ON screener_snapshots ("timestamp");

CREATE TABLE IF NOT EXISTS account_activity (
    account      text        NOT NULL,               -- account number: private
    seq          bigint      NOT NULL,
    message_hash bigint      NOT NULL,               -- digest of type + message (a repeat after a reconnect is stored once)
    subscription_key text    NOT NULL,
    message_type text        NOT NULL,               -- '' on the nightly "Feature not supported" frame
    received_at  timestamptz NOT NULL,
    message_json jsonb,                              -- field 3 when it is JSON
    message_text text,                               -- field 3 otherwise
    inserted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, seq, message_hash)
);
CREATE INDEX IF NOT EXISTS account_activity_received_idx ON account_activity (received_at);

SELECT market_admin.grant_read_only(t::regclass), market_admin.read_only_policy(t::regclass)
FROM unnest(ARRAY['futures_data', 'futures_option_data', 'forex_data', 'futures_bars',
                  'book_snapshots', 'screener_snapshots']) AS t;

-- Private: orders and fills with account numbers. Only the service's own role (the owner)
-- reads and writes it; RLS without a policy shuts every API role out even if granted later.
SELECT market_admin.revoke_api_access('account_activity'::regclass);
ALTER TABLE account_activity ENABLE ROW LEVEL SECURITY;
