-- Candles refilled from REST pricehistory after a stream gap (issue 16): marked, so they can be
-- told from streamed ones. A backfilled row never replaces a stored candle (ON CONFLICT DO
-- NOTHING); a streamed candle of the same minute replaces it and clears the mark.
ALTER TABLE equity_bars ADD COLUMN IF NOT EXISTS backfilled boolean NOT NULL DEFAULT false;
