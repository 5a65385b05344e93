-- latest_quotes carries the indicator values of each ticker's newest row (same meaning and
-- units as the equity_data columns, see SCHEMA.md).
ALTER TABLE latest_quotes
    ADD COLUMN IF NOT EXISTS sma         double precision,
    ADD COLUMN IF NOT EXISTS ema_fast    double precision,
    ADD COLUMN IF NOT EXISTS ema_slow    double precision,
    ADD COLUMN IF NOT EXISTS rsi         double precision,
    ADD COLUMN IF NOT EXISTS macd        double precision,
    ADD COLUMN IF NOT EXISTS macd_signal double precision,
    ADD COLUMN IF NOT EXISTS macd_hist   double precision,
    ADD COLUMN IF NOT EXISTS bb_upper    double precision,
    ADD COLUMN IF NOT EXISTS bb_middle   double precision,
    ADD COLUMN IF NOT EXISTS bb_lower    double precision,
    ADD COLUMN IF NOT EXISTS vwap        double precision;
