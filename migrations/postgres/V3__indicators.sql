-- Indicator columns of equity_data (issue 4). Computed per row on time bars of BAR_SECONDS
-- (default 60 s) built from the merged quotes: provisional values for the bar in progress,
-- as if it closed at this row's price. NULL until the indicator has enough bars.
-- Periods are configurable (.env); see SCHEMA.md for units and warm-up lengths.

ALTER TABLE equity_data
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

COMMENT ON COLUMN equity_data.sma IS 'SMA(SMA_PERIOD, default 20) of bar closes, dollars; first value on bar SMA_PERIOD';
COMMENT ON COLUMN equity_data.ema_fast IS 'EMA(EMA_FAST_PERIOD, default 9), SMA-seeded, dollars; first value on bar EMA_FAST_PERIOD';
COMMENT ON COLUMN equity_data.ema_slow IS 'EMA(EMA_SLOW_PERIOD, default 21), SMA-seeded, dollars; first value on bar EMA_SLOW_PERIOD';
COMMENT ON COLUMN equity_data.rsi IS 'Wilder RSI(RSI_PERIOD, default 14), 0-100; first value on bar RSI_PERIOD + 1';
COMMENT ON COLUMN equity_data.macd IS 'MACD line EMA(MACD_FAST) - EMA(MACD_SLOW) (default 12, 26), dollars; first value on bar MACD_SLOW + MACD_SIGNAL - 1';
COMMENT ON COLUMN equity_data.macd_signal IS 'EMA(MACD_SIGNAL, default 9) of the MACD line, dollars';
COMMENT ON COLUMN equity_data.macd_hist IS 'MACD line - signal, dollars';
COMMENT ON COLUMN equity_data.bb_upper IS 'Bollinger upper band: SMA(BB_PERIOD) + BB_STDDEV x population std dev (default 20, 2), dollars; first value on bar BB_PERIOD';
COMMENT ON COLUMN equity_data.bb_middle IS 'Bollinger middle band: SMA(BB_PERIOD), dollars';
COMMENT ON COLUMN equity_data.bb_lower IS 'Bollinger lower band: SMA(BB_PERIOD) - BB_STDDEV x population std dev, dollars';
COMMENT ON COLUMN equity_data.vwap IS 'Session VWAP since New York midnight: sum(typical price x bar volume) / sum(bar volume), dollars; NULL until the session has volume';
