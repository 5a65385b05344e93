-- Indicator columns of equity_data (issue 4); same columns as PostgreSQL, see SCHEMA.md.
-- Computed per row on time bars of BAR_SECONDS; NULL until the indicator has enough bars.

ALTER TABLE equity_data ADD COLUMN sma         REAL;
ALTER TABLE equity_data ADD COLUMN ema_fast    REAL;
ALTER TABLE equity_data ADD COLUMN ema_slow    REAL;
ALTER TABLE equity_data ADD COLUMN rsi         REAL;
ALTER TABLE equity_data ADD COLUMN macd        REAL;
ALTER TABLE equity_data ADD COLUMN macd_signal REAL;
ALTER TABLE equity_data ADD COLUMN macd_hist   REAL;
ALTER TABLE equity_data ADD COLUMN bb_upper    REAL;
ALTER TABLE equity_data ADD COLUMN bb_middle   REAL;
ALTER TABLE equity_data ADD COLUMN bb_lower    REAL;
ALTER TABLE equity_data ADD COLUMN vwap        REAL;
