-- Candles refilled from REST pricehistory after a stream gap (issue 16); see the PostgreSQL
-- migration V11. 0 = streamed, 1 = backfilled.
ALTER TABLE equity_bars ADD COLUMN backfilled INTEGER NOT NULL DEFAULT 0;
