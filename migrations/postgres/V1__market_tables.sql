-- Market tables: one row per merged LEVELONE update, one per one-minute candle.
-- Natural keys make retried batches idempotent (ON CONFLICT DO NOTHING / upsert).

CREATE TABLE IF NOT EXISTS equity_data (
    ticker              text             NOT NULL,
    "timestamp"         timestamptz      NOT NULL,   -- event time: the data item's timestamp
    seq                 integer          NOT NULL DEFAULT 0, -- 1, 2, ... for more updates at the same timestamp
    price               double precision,            -- last price (field 3)
    volume              bigint,                      -- cumulative day volume (field 8)
    bid                 double precision,
    ask                 double precision,
    bid_size            bigint,
    ask_size            bigint,
    mark                double precision,
    last_size           bigint,
    high                double precision,
    low                 double precision,
    open                double precision,
    close               double precision,            -- previous close (field 12)
    net_change          double precision,
    net_percent_change  double precision,
    quote_time          timestamptz,
    trade_time          timestamptz,
    security_status     text,
    inserted_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS equity_data_timestamp_idx ON equity_data ("timestamp");

CREATE TABLE IF NOT EXISTS option_data (
    symbol              text             NOT NULL,   -- 21-character Schwab option symbol
    underlying          text             NOT NULL,
    expiration          date             NOT NULL,
    strike              double precision NOT NULL,
    contract_type       text             NOT NULL CHECK (contract_type IN ('C', 'P')),
    "timestamp"         timestamptz      NOT NULL,
    seq                 integer          NOT NULL DEFAULT 0,
    bid                 double precision,
    ask                 double precision,
    price               double precision,            -- last price (field 4)
    mark                double precision,
    volume              bigint,                      -- contracts, cumulative for the day
    open_interest       bigint,
    implied_volatility  double precision,            -- percent, as Schwab sends it (32.5 = 32.5 %)
    delta               double precision,
    gamma               double precision,
    theta               double precision,
    vega                double precision,
    rho                 double precision,
    underlying_price    double precision,
    high                double precision,
    low                 double precision,
    close               double precision,
    bid_size            bigint,
    ask_size            bigint,
    net_change          double precision,
    time_value          double precision,
    theoretical_value   double precision,
    days_to_expiration  bigint,
    quote_time          timestamptz,
    trade_time          timestamptz,
    inserted_at         timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, "timestamp", seq)
);
CREATE INDEX IF NOT EXISTS option_data_timestamp_idx ON option_data ("timestamp");
CREATE INDEX IF NOT EXISTS option_data_underlying_idx ON option_data (underlying, "timestamp");

CREATE TABLE IF NOT EXISTS equity_bars (
    ticker      text             NOT NULL,
    bar_start   timestamptz      NOT NULL,           -- candle start minute (field 7)
    open        double precision NOT NULL,
    high        double precision NOT NULL,
    low         double precision NOT NULL,
    close       double precision NOT NULL,
    volume      bigint           NOT NULL,
    sequence    bigint,                              -- minutes since 07:00 New York (field 1)
    chart_day   bigint,                              -- days since 1970-01-01 (field 8)
    updated_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (ticker, bar_start)
);
