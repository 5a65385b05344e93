-- latest_quotes carries the indicator values of each ticker's newest row.
ALTER TABLE latest_quotes ADD COLUMN sma REAL;
ALTER TABLE latest_quotes ADD COLUMN ema_fast REAL;
ALTER TABLE latest_quotes ADD COLUMN ema_slow REAL;
ALTER TABLE latest_quotes ADD COLUMN rsi REAL;
ALTER TABLE latest_quotes ADD COLUMN macd REAL;
ALTER TABLE latest_quotes ADD COLUMN macd_signal REAL;
ALTER TABLE latest_quotes ADD COLUMN macd_hist REAL;
ALTER TABLE latest_quotes ADD COLUMN bb_upper REAL;
ALTER TABLE latest_quotes ADD COLUMN bb_middle REAL;
ALTER TABLE latest_quotes ADD COLUMN bb_lower REAL;
ALTER TABLE latest_quotes ADD COLUMN vwap REAL;
