//! The batch statements: one `INSERT ... SELECT FROM UNNEST(arrays)` per table, whatever the
//! batch size. Quotes use `ON CONFLICT DO NOTHING`; candles are upserted; `latest_quotes`
//! keeps the newest merged quote per ticker.

use sqlx::{Postgres, Transaction};

use crate::db::SinkError;
use crate::rows::{Batch, EquityRow, finite, time_from_ms};

/// Bind arrays of quote fields: one `Vec` per column, read from each row's merged quote.
struct Columns<'a, R> {
    rows: &'a [R],
}

impl<'a, R: HasQuote> Columns<'a, R> {
    fn new(rows: &'a [R]) -> Self {
        Self { rows }
    }

    /// A float column; NaN and infinity become NULL.
    fn float(&self, f: fn(&R::Fields) -> Option<f64>) -> Vec<Option<f64>> {
        self.rows.iter().map(|r| finite(f(r.quote()))).collect()
    }

    fn int(&self, f: fn(&R::Fields) -> Option<i64>) -> Vec<Option<i64>> {
        self.rows.iter().map(|r| f(r.quote())).collect()
    }

    /// A time column from milliseconds since the epoch.
    fn time(&self, f: fn(&R::Fields) -> Option<i64>) -> Vec<Option<chrono::DateTime<chrono::Utc>>> {
        self.rows
            .iter()
            .map(|r| f(r.quote()).and_then(time_from_ms))
            .collect()
    }
}

/// A row with a merged quote of field table `Fields`.
trait HasQuote {
    type Fields;
    fn quote(&self) -> &Self::Fields;
}

impl HasQuote for EquityRow {
    type Fields = crate::schwab::wire::EquityFields;
    fn quote(&self) -> &Self::Fields {
        &self.quote
    }
}

impl HasQuote for &EquityRow {
    type Fields = crate::schwab::wire::EquityFields;
    fn quote(&self) -> &Self::Fields {
        &self.quote
    }
}

impl HasQuote for crate::rows::OptionRow {
    type Fields = crate::schwab::wire::OptionFields;
    fn quote(&self) -> &Self::Fields {
        &self.quote
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds the eleven indicator columns (in [`IndicatorValues::COLUMNS`] order) as arrays.
///
/// [`IndicatorValues::COLUMNS`]: crate::indicators::IndicatorValues::COLUMNS
fn bind_indicators<'q, 'r>(
    mut query: PgQuery<'q>,
    rows: impl Iterator<Item = &'r EquityRow> + Clone,
) -> PgQuery<'q> {
    for column in 0..crate::indicators::IndicatorValues::COLUMNS.len() {
        let values: Vec<Option<f64>> = rows
            .clone()
            .map(|r| finite(r.indicators.to_array()[column]))
            .collect();
        query = query.bind(values);
    }
    query
}

pub async fn insert_equities(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    let rows = &batch.equities;
    if rows.is_empty() {
        return Ok(0);
    }
    let c = Columns::new(rows);
    let query = sqlx::query(
        r#"INSERT INTO equity_data (ticker, "timestamp", seq, price, volume, bid, ask, bid_size, ask_size,
               mark, last_size, high, low, open, close, net_change, net_percent_change,
               quote_time, trade_time, security_status,
               sma, ema_fast, ema_slow, rsi, macd, macd_signal, macd_hist,
               bb_upper, bb_middle, bb_lower, vwap)
           SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::int4[], $4::float8[], $5::int8[],
               $6::float8[], $7::float8[], $8::int8[], $9::int8[], $10::float8[], $11::int8[],
               $12::float8[], $13::float8[], $14::float8[], $15::float8[], $16::float8[],
               $17::float8[], $18::timestamptz[], $19::timestamptz[], $20::text[],
               $21::float8[], $22::float8[], $23::float8[], $24::float8[], $25::float8[],
               $26::float8[], $27::float8[], $28::float8[], $29::float8[], $30::float8[],
               $31::float8[])
           ON CONFLICT DO NOTHING"#,
    )
    .bind(rows.iter().map(|r| &*r.ticker).collect::<Vec<&str>>())
    .bind(rows.iter().map(|r| r.timestamp).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<i32>>())
    .bind(c.float(|f| f.last))
    .bind(c.int(|f| f.total_volume))
    .bind(c.float(|f| f.bid))
    .bind(c.float(|f| f.ask))
    .bind(c.int(|f| f.bid_size))
    .bind(c.int(|f| f.ask_size))
    .bind(c.float(|f| f.mark))
    .bind(c.int(|f| f.last_size))
    .bind(c.float(|f| f.high))
    .bind(c.float(|f| f.low))
    .bind(c.float(|f| f.open))
    .bind(c.float(|f| f.close))
    .bind(c.float(|f| f.net_change))
    .bind(c.float(|f| f.net_percent_change))
    .bind(c.time(|f| f.quote_time_ms))
    .bind(c.time(|f| f.trade_time_ms))
    .bind(rows.iter().map(|r| r.quote.security_status.as_deref()).collect::<Vec<Option<&str>>>());
    let result = bind_indicators(query, rows.iter())
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("insert into equity_data", e))?;
    Ok(result.rows_affected())
}

pub async fn insert_options(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    let rows = &batch.options;
    if rows.is_empty() {
        return Ok(0);
    }
    let c = Columns::new(rows);
    let result = sqlx::query(
        r#"INSERT INTO option_data (symbol, underlying, expiration, strike, contract_type, "timestamp", seq,
               bid, ask, price, mark, volume, open_interest, implied_volatility,
               delta, gamma, theta, vega, rho, underlying_price,
               high, low, close, bid_size, ask_size, net_change, time_value, theoretical_value,
               days_to_expiration, quote_time, trade_time)
           SELECT * FROM UNNEST($1::text[], $2::text[], $3::date[], $4::float8[], $5::text[],
               $6::timestamptz[], $7::int4[], $8::float8[], $9::float8[], $10::float8[], $11::float8[],
               $12::int8[], $13::int8[], $14::float8[], $15::float8[], $16::float8[], $17::float8[],
               $18::float8[], $19::float8[], $20::float8[], $21::float8[], $22::float8[], $23::float8[],
               $24::int8[], $25::int8[], $26::float8[], $27::float8[], $28::float8[], $29::int8[],
               $30::timestamptz[], $31::timestamptz[])
           ON CONFLICT DO NOTHING"#,
    )
    .bind(rows.iter().map(|r| &*r.symbol).collect::<Vec<&str>>())
    .bind(rows.iter().map(|r| &*r.contract.underlying).collect::<Vec<&str>>())
    .bind(rows.iter().map(|r| r.contract.expiration).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.contract.strike).collect::<Vec<f64>>())
    .bind(rows.iter().map(|r| r.contract.contract_type.as_str()).collect::<Vec<&str>>())
    .bind(rows.iter().map(|r| r.timestamp).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<i32>>())
    .bind(c.float(|f| f.bid))
    .bind(c.float(|f| f.ask))
    .bind(c.float(|f| f.last))
    .bind(c.float(|f| f.mark))
    .bind(c.int(|f| f.total_volume))
    .bind(c.int(|f| f.open_interest))
    .bind(c.float(|f| f.volatility))
    .bind(c.float(|f| f.delta))
    .bind(c.float(|f| f.gamma))
    .bind(c.float(|f| f.theta))
    .bind(c.float(|f| f.vega))
    .bind(c.float(|f| f.rho))
    .bind(c.float(|f| f.underlying_price))
    .bind(c.float(|f| f.high))
    .bind(c.float(|f| f.low))
    .bind(c.float(|f| f.close))
    .bind(c.int(|f| f.bid_size))
    .bind(c.int(|f| f.ask_size))
    .bind(c.float(|f| f.net_change))
    .bind(c.float(|f| f.time_value))
    .bind(c.float(|f| f.theoretical_value))
    .bind(c.int(|f| f.days_to_expiration))
    .bind(c.time(|f| f.quote_time_ms))
    .bind(c.time(|f| f.trade_time_ms))
    .execute(&mut **tx)
    .await
    .map_err(|e| SinkError::new("insert into option_data", e))?;
    Ok(result.rows_affected())
}

pub async fn upsert_bars(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.bars.is_empty() {
        return Ok(0);
    }
    // An upsert may not touch one row twice in a statement: keep the last copy of each candle.
    let mut deduped = Batch {
        bars: batch.bars.clone(),
        ..Batch::default()
    };
    deduped.dedup_bars();
    let rows = &deduped.bars;
    let result = sqlx::query(
        r#"INSERT INTO equity_bars (ticker, bar_start, open, high, low, close, volume, sequence, chart_day)
           SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[],
               $6::float8[], $7::int8[], $8::int8[], $9::int8[])
           ON CONFLICT (ticker, bar_start) DO UPDATE SET
               open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
               volume = EXCLUDED.volume, sequence = EXCLUDED.sequence, chart_day = EXCLUDED.chart_day,
               updated_at = now()"#,
    )
    .bind(rows.iter().map(|r| &*r.ticker).collect::<Vec<&str>>())
    .bind(rows.iter().map(|r| r.bar_start).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.open).collect::<Vec<f64>>())
    .bind(rows.iter().map(|r| r.high).collect::<Vec<f64>>())
    .bind(rows.iter().map(|r| r.low).collect::<Vec<f64>>())
    .bind(rows.iter().map(|r| r.close).collect::<Vec<f64>>())
    .bind(rows.iter().map(|r| r.volume).collect::<Vec<i64>>())
    .bind(rows.iter().map(|r| r.sequence).collect::<Vec<Option<i64>>>())
    .bind(rows.iter().map(|r| r.chart_day).collect::<Vec<Option<i64>>>())
    .execute(&mut **tx)
    .await
    .map_err(|e| SinkError::new("upsert into equity_bars", e))?;
    Ok(result.rows_affected())
}

/// Upserts the newest merged quote per ticker; an older row never overwrites a newer one
/// (a retried batch may arrive after a later one).
pub async fn upsert_latest_quotes(
    tx: &mut Transaction<'_, Postgres>,
    latest: &[&EquityRow],
) -> Result<u64, SinkError> {
    if latest.is_empty() {
        return Ok(0);
    }
    let c = Columns::new(latest);
    let query = sqlx::query(
        r#"INSERT INTO latest_quotes AS l (ticker, "timestamp", price, volume, bid, ask, bid_size, ask_size,
               mark, high, low, open, close, net_change, net_percent_change, security_status,
               sma, ema_fast, ema_slow, rsi, macd, macd_signal, macd_hist, bb_upper, bb_middle,
               bb_lower, vwap, updated_at)
           SELECT u.*, now() FROM UNNEST($1::text[], $2::timestamptz[], $3::float8[], $4::int8[],
               $5::float8[], $6::float8[], $7::int8[], $8::int8[], $9::float8[], $10::float8[],
               $11::float8[], $12::float8[], $13::float8[], $14::float8[], $15::float8[], $16::text[],
               $17::float8[], $18::float8[], $19::float8[], $20::float8[], $21::float8[],
               $22::float8[], $23::float8[], $24::float8[], $25::float8[], $26::float8[],
               $27::float8[]) AS u
           ON CONFLICT (ticker) DO UPDATE SET
               "timestamp" = EXCLUDED."timestamp", price = EXCLUDED.price, volume = EXCLUDED.volume,
               bid = EXCLUDED.bid, ask = EXCLUDED.ask, bid_size = EXCLUDED.bid_size,
               ask_size = EXCLUDED.ask_size, mark = EXCLUDED.mark, high = EXCLUDED.high,
               low = EXCLUDED.low, open = EXCLUDED.open, close = EXCLUDED.close,
               net_change = EXCLUDED.net_change, net_percent_change = EXCLUDED.net_percent_change,
               security_status = EXCLUDED.security_status, sma = EXCLUDED.sma,
               ema_fast = EXCLUDED.ema_fast, ema_slow = EXCLUDED.ema_slow, rsi = EXCLUDED.rsi,
               macd = EXCLUDED.macd, macd_signal = EXCLUDED.macd_signal, macd_hist = EXCLUDED.macd_hist,
               bb_upper = EXCLUDED.bb_upper, bb_middle = EXCLUDED.bb_middle, bb_lower = EXCLUDED.bb_lower,
               vwap = EXCLUDED.vwap, updated_at = EXCLUDED.updated_at
           WHERE l."timestamp" <= EXCLUDED."timestamp""#,
    )
    .bind(latest.iter().map(|r| &*r.ticker).collect::<Vec<&str>>())
    .bind(latest.iter().map(|r| r.timestamp).collect::<Vec<_>>())
    .bind(c.float(|f| f.last))
    .bind(c.int(|f| f.total_volume))
    .bind(c.float(|f| f.bid))
    .bind(c.float(|f| f.ask))
    .bind(c.int(|f| f.bid_size))
    .bind(c.int(|f| f.ask_size))
    .bind(c.float(|f| f.mark))
    .bind(c.float(|f| f.high))
    .bind(c.float(|f| f.low))
    .bind(c.float(|f| f.open))
    .bind(c.float(|f| f.close))
    .bind(c.float(|f| f.net_change))
    .bind(c.float(|f| f.net_percent_change))
    .bind(latest.iter().map(|r| r.quote.security_status.as_deref()).collect::<Vec<Option<&str>>>());
    let result = bind_indicators(query, latest.iter().copied())
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new("upsert into latest_quotes", e))?;
    Ok(result.rows_affected())
}
