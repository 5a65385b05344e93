//! Each table's column list, written once: its name, its type and how a row fills it.
//!
//! The PostgreSQL statements (`UNNEST` of one array per column), the SQLite statements
//! (multi-row `VALUES`) and the Broadcast payload (one JSON object per ticker, named like the
//! `latest_quotes` columns) are all generated from these lists, so a column is added in one
//! place. SCHEMA.md documents the tables; a test checks that each list matches the migrations.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};

use crate::rows::{BarRow, EquityRow, OptionRow, finite, time_from_ms};

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Text,
    /// `timestamptz` (PostgreSQL), ISO-8601 UTC text with milliseconds (SQLite).
    Time,
    /// `date` (PostgreSQL), `YYYY-MM-DD` text (SQLite).
    Date,
    Int4,
    Int8,
    /// `float8`; NaN and infinities are stored as NULL.
    Float8,
    /// `jsonb` (PostgreSQL, sent as text and cast), JSON text (SQLite).
    Json,
    /// `boolean` (PostgreSQL), 0/1 integer (SQLite).
    Bool,
}

impl Ty {
    /// The PostgreSQL array type of an `UNNEST` parameter of this column.
    pub const fn pg_array(self) -> &'static str {
        match self {
            Self::Text => "text[]",
            Self::Time => "timestamptz[]",
            Self::Date => "date[]",
            Self::Int4 => "int4[]",
            Self::Int8 => "int8[]",
            Self::Float8 => "float8[]",
            Self::Json => "text[]",
            Self::Bool => "bool[]",
        }
    }
}

/// One value of a row, typed like its column (`None` is NULL).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Text(Option<&'a str>),
    Time(Option<DateTime<Utc>>),
    Date(Option<NaiveDate>),
    Int4(Option<i32>),
    Int8(Option<i64>),
    Float8(Option<f64>),
    /// A JSON document as text.
    Json(Option<&'a str>),
    Bool(Option<bool>),
}

impl Value<'_> {
    /// The type this value belongs to.
    pub const fn ty(&self) -> Ty {
        match self {
            Self::Text(_) => Ty::Text,
            Self::Time(_) => Ty::Time,
            Self::Date(_) => Ty::Date,
            Self::Int4(_) => Ty::Int4,
            Self::Int8(_) => Ty::Int8,
            Self::Float8(_) => Ty::Float8,
            Self::Json(_) => Ty::Json,
            Self::Bool(_) => Ty::Bool,
        }
    }
}

/// One column of a table whose rows are `R`.
pub struct Column<R> {
    pub name: &'static str,
    pub ty: Ty,
    /// The row's value; its variant is always `ty`'s (checked by a test for every list).
    pub get: for<'r> fn(&'r R) -> Value<'r>,
}

// Not derived: a derive would require `R: Clone`, and a column holds no `R`.
impl<R> Clone for Column<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Column<R> {}

impl<R> Column<R> {
    /// The column name as written in SQL (`timestamp` is quoted: it is a type name).
    pub fn sql_name(&self) -> String {
        if self.name == "timestamp" {
            "\"timestamp\"".to_string()
        } else {
            self.name.to_string()
        }
    }
}

/// A table: its name, its columns and what a conflict on its natural key does.
pub struct TableSpec<R: 'static> {
    pub name: &'static str,
    pub columns: Vec<Column<R>>,
    pub on_conflict: Conflict,
}

/// What an insert does with a row whose natural key is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Ticks: the stored copy stays (`ON CONFLICT DO NOTHING`): a retried batch is harmless.
    Ignore,
    /// Candles: upserted by `key`; every other column is replaced and `updated_at` stamped.
    Upsert { key: &'static [&'static str] },
    /// Newest value per key: replaced only by a row whose `timestamp` is not older.
    UpsertIfNotOlder { key: &'static [&'static str] },
}

impl<R> TableSpec<R> {
    /// `name (col, col, …)` for an `INSERT INTO`.
    pub fn insert_target(&self) -> String {
        let cols: Vec<String> = self.columns.iter().map(Column::sql_name).collect();
        format!("{} ({})", self.name, cols.join(", "))
    }

    /// The `ON CONFLICT …` clause; `excluded` is spelled the same in both engines, and `now`
    /// is the engine's current-time expression for `updated_at`.
    pub fn conflict_clause(&self, now: &str) -> String {
        let set = |key: &[&str]| {
            self.columns
                .iter()
                .filter(|c| !key.contains(&c.name))
                .map(|c| format!("{0} = excluded.{0}", c.sql_name()))
                .chain(std::iter::once(format!("updated_at = {now}")))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self.on_conflict {
            Conflict::Ignore => "ON CONFLICT DO NOTHING".to_string(),
            Conflict::Upsert { key } => {
                format!(
                    "ON CONFLICT ({}) DO UPDATE SET {}",
                    key.join(", "),
                    set(key)
                )
            }
            Conflict::UpsertIfNotOlder { key } => format!(
                "ON CONFLICT ({}) DO UPDATE SET {} WHERE {}.\"timestamp\" <= excluded.\"timestamp\"",
                key.join(", "),
                set(key),
                self.name
            ),
        }
    }
}

pub(crate) fn float(v: Option<f64>) -> Value<'static> {
    Value::Float8(finite(v))
}

pub(crate) fn time_ms(ms: Option<i64>) -> Value<'static> {
    Value::Time(ms.and_then(time_from_ms))
}

/// Builds a `Column` from a name, a type and an expression over the row `r`.
macro_rules! col {
    ($name:literal, $ty:ident, |$r:ident: $row:ty| $get:expr) => {
        Column::<$row> {
            name: $name,
            ty: Ty::$ty,
            get: |$r: &$row| $get,
        }
    };
}

/// The eleven indicator columns of a row type with an `indicators: IndicatorValues` field,
/// in `IndicatorValues::COLUMNS` order (a test checks the names).
macro_rules! indicator_columns {
    ($row:ty) => {
        [
            col!("sma", Float8, |r: $row| float(r.indicators.sma)),
            col!("ema_fast", Float8, |r: $row| float(r.indicators.ema_fast)),
            col!("ema_slow", Float8, |r: $row| float(r.indicators.ema_slow)),
            col!("rsi", Float8, |r: $row| float(r.indicators.rsi)),
            col!("macd", Float8, |r: $row| float(r.indicators.macd)),
            col!("macd_signal", Float8, |r: $row| float(
                r.indicators.macd_signal
            )),
            col!("macd_hist", Float8, |r: $row| float(r.indicators.macd_hist)),
            col!("bb_upper", Float8, |r: $row| float(r.indicators.bb_upper)),
            col!("bb_middle", Float8, |r: $row| float(r.indicators.bb_middle)),
            col!("bb_lower", Float8, |r: $row| float(r.indicators.bb_lower)),
            col!("vwap", Float8, |r: $row| float(r.indicators.vwap)),
        ]
    };
}

// The tables of the futures, forex, book, screener and account activity services.
mod market;
pub use market::{
    ACCOUNT_ACTIVITY, BOOK_SNAPSHOTS, FOREX_DATA, FUTURES_BARS, FUTURES_DATA, FUTURES_OPTION_DATA,
    SCREENER_SNAPSHOTS,
};

/// The merged-quote columns of `latest_quotes`, also in `equity_data` and in the Broadcast
/// payload.
const QUOTE: [Column<EquityRow>; 15] = [
    col!("ticker", Text, |r: EquityRow| Value::Text(Some(&r.ticker))),
    col!("timestamp", Time, |r: EquityRow| Value::Time(Some(
        r.timestamp
    ))),
    col!("price", Float8, |r: EquityRow| float(r.quote.last)),
    col!("volume", Int8, |r: EquityRow| Value::Int8(
        r.quote.total_volume
    )),
    col!("bid", Float8, |r: EquityRow| float(r.quote.bid)),
    col!("ask", Float8, |r: EquityRow| float(r.quote.ask)),
    col!("bid_size", Int8, |r: EquityRow| Value::Int8(
        r.quote.bid_size
    )),
    col!("ask_size", Int8, |r: EquityRow| Value::Int8(
        r.quote.ask_size
    )),
    col!("mark", Float8, |r: EquityRow| float(r.quote.mark)),
    col!("high", Float8, |r: EquityRow| float(r.quote.high)),
    col!("low", Float8, |r: EquityRow| float(r.quote.low)),
    col!("open", Float8, |r: EquityRow| float(r.quote.open)),
    col!("close", Float8, |r: EquityRow| float(r.quote.close)),
    col!("net_change", Float8, |r: EquityRow| float(
        r.quote.net_change
    )),
    col!("net_percent_change", Float8, |r: EquityRow| float(
        r.quote.net_percent_change
    )),
];

/// `security_status`: in both quote tables, not in the Broadcast payload.
const SECURITY_STATUS: Column<EquityRow> =
    col!("security_status", Text, |r: EquityRow| Value::Text(
        r.quote.security_status.as_deref()
    ));

/// The columns only `equity_data` has (one row per update).
const TICK: [Column<EquityRow>; 4] = [
    col!("seq", Int4, |r: EquityRow| Value::Int4(Some(r.seq))),
    col!("last_size", Int8, |r: EquityRow| Value::Int8(
        r.quote.last_size
    )),
    col!("quote_time", Time, |r: EquityRow| time_ms(
        r.quote.quote_time_ms
    )),
    col!("trade_time", Time, |r: EquityRow| time_ms(
        r.quote.trade_time_ms
    )),
];

/// The eleven indicator columns, in `IndicatorValues::COLUMNS` order.
pub(crate) const INDICATORS: [Column<EquityRow>; 11] = indicator_columns!(EquityRow);

/// `equity_data`: one row per LEVELONE_EQUITIES update, with its indicators.
pub static EQUITY_DATA: LazyLock<TableSpec<EquityRow>> = LazyLock::new(|| TableSpec {
    name: "equity_data",
    columns: [&QUOTE[..], &TICK, &[SECURITY_STATUS], &INDICATORS].concat(),
    on_conflict: Conflict::Ignore,
});

/// `latest_quotes`: the newest merged quote and indicators per ticker.
pub static LATEST_QUOTES: LazyLock<TableSpec<EquityRow>> = LazyLock::new(|| TableSpec {
    name: "latest_quotes",
    columns: [&QUOTE[..], &[SECURITY_STATUS], &INDICATORS].concat(),
    on_conflict: Conflict::UpsertIfNotOlder { key: &["ticker"] },
});

/// The fields of one ticker in a Broadcast message: the `latest_quotes` columns without
/// `security_status`.
pub static BROADCAST_QUOTE: LazyLock<Vec<Column<EquityRow>>> =
    LazyLock::new(|| [&QUOTE[..], &INDICATORS].concat());

/// `option_data`: one row per LEVELONE_OPTIONS update, with the contract from its symbol.
pub static OPTION_DATA: LazyLock<TableSpec<OptionRow>> = LazyLock::new(|| TableSpec {
    name: "option_data",
    columns: vec![
        col!("symbol", Text, |r: OptionRow| Value::Text(Some(&r.symbol))),
        col!("underlying", Text, |r: OptionRow| Value::Text(Some(
            &r.contract.underlying
        ))),
        col!("expiration", Date, |r: OptionRow| Value::Date(Some(
            r.contract.expiration
        ))),
        col!("strike", Float8, |r: OptionRow| Value::Float8(Some(
            r.contract.strike
        ))),
        col!("contract_type", Text, |r: OptionRow| Value::Text(Some(
            r.contract.contract_type.as_str()
        ))),
        col!("timestamp", Time, |r: OptionRow| Value::Time(Some(
            r.timestamp
        ))),
        col!("seq", Int4, |r: OptionRow| Value::Int4(Some(r.seq))),
        col!("bid", Float8, |r: OptionRow| float(r.quote.bid)),
        col!("ask", Float8, |r: OptionRow| float(r.quote.ask)),
        col!("price", Float8, |r: OptionRow| float(r.quote.last)),
        col!("mark", Float8, |r: OptionRow| float(r.quote.mark)),
        col!("volume", Int8, |r: OptionRow| Value::Int8(
            r.quote.total_volume
        )),
        col!("open_interest", Int8, |r: OptionRow| Value::Int8(
            r.quote.open_interest
        )),
        col!("implied_volatility", Float8, |r: OptionRow| float(
            r.quote.volatility
        )),
        col!("delta", Float8, |r: OptionRow| float(r.quote.delta)),
        col!("gamma", Float8, |r: OptionRow| float(r.quote.gamma)),
        col!("theta", Float8, |r: OptionRow| float(r.quote.theta)),
        col!("vega", Float8, |r: OptionRow| float(r.quote.vega)),
        col!("rho", Float8, |r: OptionRow| float(r.quote.rho)),
        col!("underlying_price", Float8, |r: OptionRow| float(
            r.quote.underlying_price
        )),
        col!("high", Float8, |r: OptionRow| float(r.quote.high)),
        col!("low", Float8, |r: OptionRow| float(r.quote.low)),
        col!("close", Float8, |r: OptionRow| float(r.quote.close)),
        col!("bid_size", Int8, |r: OptionRow| Value::Int8(
            r.quote.bid_size
        )),
        col!("ask_size", Int8, |r: OptionRow| Value::Int8(
            r.quote.ask_size
        )),
        col!("net_change", Float8, |r: OptionRow| float(
            r.quote.net_change
        )),
        col!("time_value", Float8, |r: OptionRow| float(
            r.quote.time_value
        )),
        col!("theoretical_value", Float8, |r: OptionRow| float(
            r.quote.theoretical_value
        )),
        col!("days_to_expiration", Int8, |r: OptionRow| Value::Int8(
            r.quote.days_to_expiration
        )),
        col!("quote_time", Time, |r: OptionRow| time_ms(
            r.quote.quote_time_ms
        )),
        col!("trade_time", Time, |r: OptionRow| time_ms(
            r.quote.trade_time_ms
        )),
    ],
    on_conflict: Conflict::Ignore,
});

/// `equity_bars`: CHART_EQUITY candles, upserted by ticker and bar start.
pub static EQUITY_BARS: LazyLock<TableSpec<BarRow>> = LazyLock::new(|| TableSpec {
    name: "equity_bars",
    columns: vec![
        col!("ticker", Text, |r: BarRow| Value::Text(Some(&r.ticker))),
        col!("bar_start", Time, |r: BarRow| Value::Time(Some(
            r.bar_start
        ))),
        col!("open", Float8, |r: BarRow| Value::Float8(Some(r.open))),
        col!("high", Float8, |r: BarRow| Value::Float8(Some(r.high))),
        col!("low", Float8, |r: BarRow| Value::Float8(Some(r.low))),
        col!("close", Float8, |r: BarRow| Value::Float8(Some(r.close))),
        col!("volume", Int8, |r: BarRow| Value::Int8(Some(r.volume))),
        col!("sequence", Int8, |r: BarRow| Value::Int8(r.sequence)),
        col!("chart_day", Int8, |r: BarRow| Value::Int8(r.chart_day)),
        // A streamed candle is never a backfilled one: its upsert clears the mark.
        col!("backfilled", Bool, |_r: BarRow| Value::Bool(Some(false))),
    ],
    on_conflict: Conflict::Upsert {
        key: &["ticker", "bar_start"],
    },
});

/// `equity_bars` rows fetched from REST `pricehistory` after a gap (`crate::backfill`):
/// the same columns, `backfilled` true, and `ON CONFLICT DO NOTHING` so a stored candle
/// (streamed, or backfilled before) is never overwritten.
pub static EQUITY_BARS_BACKFILL: LazyLock<TableSpec<BarRow>> = LazyLock::new(|| TableSpec {
    name: "equity_bars",
    columns: EQUITY_BARS
        .columns
        .iter()
        .map(|c| {
            if c.name == "backfilled" {
                col!("backfilled", Bool, |_r: BarRow| Value::Bool(Some(true)))
            } else {
                *c
            }
        })
        .collect(),
    on_conflict: Conflict::Ignore,
});

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::db::sqlite::{ROWS_PER_STATEMENT, SqliteSink};
    use crate::schwab::wire::{EquityFields, OptionFields};
    use streamer_config::option_symbol::OptionContract;

    fn equity() -> EquityRow {
        EquityRow {
            ticker: Arc::from("AAPL"),
            timestamp: Utc::now(),
            seq: 0,
            quote: EquityFields::default(),
            indicators: Default::default(),
        }
    }

    fn option() -> OptionRow {
        let symbol = "AAPL  271217C00250000";
        OptionRow {
            symbol: Arc::from(symbol),
            contract: OptionContract::parse(symbol).expect("a valid symbol"),
            timestamp: Utc::now(),
            seq: 0,
            quote: OptionFields::default(),
        }
    }

    fn bar() -> BarRow {
        BarRow {
            ticker: Arc::from("AAPL"),
            bar_start: Utc::now(),
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close: 1.5,
            volume: 10,
            sequence: None,
            chart_day: None,
        }
    }

    fn names<R>(columns: &[Column<R>]) -> Vec<&'static str> {
        columns.iter().map(|c| c.name).collect()
    }

    fn assert_typed<R>(spec: &[Column<R>], row: &R) {
        for c in spec {
            assert_eq!(
                (c.get)(row).ty(),
                c.ty,
                "column {} gives another type",
                c.name
            );
        }
    }

    #[test]
    fn every_column_gives_values_of_its_own_type() {
        assert_typed(&EQUITY_DATA.columns, &equity());
        assert_typed(&LATEST_QUOTES.columns, &equity());
        assert_typed(&BROADCAST_QUOTE, &equity());
        assert_typed(&OPTION_DATA.columns, &option());
        assert_typed(&EQUITY_BARS.columns, &bar());
    }

    #[test]
    fn no_table_names_a_column_twice_and_the_widest_fits_sqlites_parameter_limit() {
        let widths = [
            EQUITY_DATA.columns.len(),
            LATEST_QUOTES.columns.len(),
            OPTION_DATA.columns.len(),
            EQUITY_BARS.columns.len(),
        ];
        for list in [
            names(&EQUITY_DATA.columns),
            names(&LATEST_QUOTES.columns),
            names(&OPTION_DATA.columns),
            names(&EQUITY_BARS.columns),
        ] {
            let unique: BTreeSet<_> = list.iter().collect();
            assert_eq!(unique.len(), list.len(), "{list:?}");
        }
        let widest = widths.into_iter().max().unwrap_or(0);
        assert!(widest * ROWS_PER_STATEMENT < 32_766, "{widest} columns");
    }

    /// The Broadcast payload is a contract with front ends (SCHEMA.md, "Realtime contract").
    #[test]
    fn the_broadcast_quote_keeps_its_documented_fields() {
        let expected = [
            "ticker",
            "timestamp",
            "price",
            "volume",
            "bid",
            "ask",
            "bid_size",
            "ask_size",
            "mark",
            "high",
            "low",
            "open",
            "close",
            "net_change",
            "net_percent_change",
            "sma",
            "ema_fast",
            "ema_slow",
            "rsi",
            "macd",
            "macd_signal",
            "macd_hist",
            "bb_upper",
            "bb_middle",
            "bb_lower",
            "vwap",
        ];
        assert_eq!(names(&BROADCAST_QUOTE), expected);
        let indicators: Vec<_> = names(&INDICATORS);
        assert_eq!(indicators, crate::indicators::IndicatorValues::COLUMNS);
    }

    #[test]
    fn upserts_replace_every_column_but_the_key_and_latest_quotes_never_go_back_in_time() {
        let bars = EQUITY_BARS.conflict_clause("now()");
        assert!(
            bars.starts_with("ON CONFLICT (ticker, bar_start) DO UPDATE SET open = excluded.open")
        );
        assert!(!bars.contains("ticker = excluded"));
        assert!(bars.ends_with("updated_at = now()"));
        let latest = LATEST_QUOTES.conflict_clause("now()");
        assert!(latest.ends_with("WHERE latest_quotes.\"timestamp\" <= excluded.\"timestamp\""));
        assert_eq!(
            EQUITY_DATA.conflict_clause("now()"),
            "ON CONFLICT DO NOTHING"
        );
    }

    /// Every listed column exists in the SQLite schema the migrations build (the PostgreSQL
    /// schema is exercised by the writer's tests against a real server).
    #[tokio::test]
    async fn every_listed_column_exists_in_the_migrated_sqlite_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = SqliteSink::open(&dir.path().join("t.db"))
            .await
            .expect("open");
        sink.migrate().await.expect("migrate");
        let tables: [(&str, Vec<&str>); 4] = [
            ("equity_data", names(&EQUITY_DATA.columns)),
            ("latest_quotes", names(&LATEST_QUOTES.columns)),
            ("option_data", names(&OPTION_DATA.columns)),
            ("equity_bars", names(&EQUITY_BARS.columns)),
        ];
        for (table, listed) in tables {
            let stored: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?1)")
                .bind(table)
                .fetch_all(sink.pool())
                .await
                .expect("table_info");
            for name in listed {
                assert!(
                    stored.iter().any(|s| s == name),
                    "{table}.{name} is not in the schema"
                );
            }
        }
    }
}
