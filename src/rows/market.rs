//! Rows of the futures, futures options, forex, futures candle, book, screener and account
//! activity services. Quotes are merged like equities (a full row per update); books and
//! screeners are whole snapshots whose nested parts are stored as JSON text (built once, when
//! the row is made); account activity keeps Schwab's message as JSON when it parses, else as
//! text.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use crate::indicators::IndicatorValues;
use crate::rows::EquityRow;
use crate::schwab::wire::{EquityFields, ForexFields, FuturesFields, FuturesOptionFields, Service};

/// The equity field table of a futures or forex quote: the fields `latest_quotes` and the
/// Broadcast quote carry, which both tables name alike (their percent change is equities'
/// `net_percent_change`).
macro_rules! as_equity_fields {
    ($q:expr) => {{
        let q = &$q;
        EquityFields {
            bid: q.bid,
            ask: q.ask,
            last: q.last,
            bid_size: q.bid_size,
            ask_size: q.ask_size,
            total_volume: q.total_volume,
            last_size: q.last_size,
            high: q.high,
            low: q.low,
            close: q.close,
            open: q.open,
            net_change: q.net_change,
            security_status: q.security_status.clone(),
            mark: q.mark,
            quote_time_ms: q.quote_time_ms,
            trade_time_ms: q.trade_time_ms,
            net_percent_change: q.percent_change,
        }
    }};
}

/// A full, merged LEVELONE_FUTURES quote at one event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FuturesRow {
    /// The subscribed key (`/ES`, or a contract such as `/ESZ25`).
    pub symbol: Arc<str>,
    pub timestamp: DateTime<Utc>,
    pub seq: i32,
    pub quote: FuturesFields,
    /// The symbol's indicators at this row (from its merged trades, like equities).
    pub indicators: IndicatorValues,
}

impl FuturesRow {
    /// The row as a `latest_quotes` / Broadcast quote (the names equities use).
    pub fn as_quote(&self) -> EquityRow {
        EquityRow {
            ticker: self.symbol.clone(),
            timestamp: self.timestamp,
            seq: self.seq,
            quote: as_equity_fields!(self.quote),
            indicators: self.indicators,
        }
    }
}

/// The contract of a futures option, from its key (`./OZCZ23C565`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FuturesOptionKey {
    /// `/OZC`.
    pub root: Arc<str>,
    /// The first day of the contract month (2023-12-01).
    pub contract_month: NaiveDate,
    /// `C` or `P`.
    pub contract_type: char,
    pub strike: f64,
}

/// A full, merged LEVELONE_FUTURES_OPTIONS quote at one event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FuturesOptionRow {
    pub symbol: Arc<str>,
    pub contract: FuturesOptionKey,
    pub timestamp: DateTime<Utc>,
    pub seq: i32,
    pub quote: FuturesOptionFields,
}

/// A full, merged LEVELONE_FOREX quote at one event.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForexRow {
    /// `EUR/USD`.
    pub symbol: Arc<str>,
    pub timestamp: DateTime<Utc>,
    pub seq: i32,
    pub quote: ForexFields,
}

impl ForexRow {
    /// The row as a `latest_quotes` / Broadcast quote (no indicators).
    pub fn as_quote(&self) -> EquityRow {
        EquityRow {
            ticker: self.symbol.clone(),
            timestamp: self.timestamp,
            seq: self.seq,
            quote: as_equity_fields!(self.quote),
            indicators: IndicatorValues::default(),
        }
    }
}

/// One CHART_FUTURES candle.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FuturesBarRow {
    pub symbol: Arc<str>,
    pub bar_start: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
    /// The item's `seq` (meaning undocumented; kept for reference).
    pub sequence: Option<i64>,
}

/// Which book a snapshot is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BookKind {
    Nyse,
    Nasdaq,
    Options,
}

impl BookKind {
    /// The book of a service (`None` for other services).
    pub fn of(service: Service) -> Option<Self> {
        match service {
            Service::NyseBook => Some(Self::Nyse),
            Service::NasdaqBook => Some(Self::Nasdaq),
            Service::OptionsBook => Some(Self::Options),
            _ => None,
        }
    }

    /// The `book` column: the service's wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Nyse => "NYSE_BOOK",
            Self::Nasdaq => "NASDAQ_BOOK",
            Self::Options => "OPTIONS_BOOK",
        }
    }
}

/// One stored book snapshot: the best level of each side as columns, the top `BOOK_DEPTH`
/// levels per side as JSON (see SCHEMA.md for their shape).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BookRow {
    pub book: BookKind,
    pub symbol: Arc<str>,
    pub snapshot_time: DateTime<Utc>,
    pub bid: Option<f64>,
    pub bid_size: Option<i64>,
    pub ask: Option<f64>,
    pub ask_size: Option<i64>,
    /// Levels Schwab sent per side (before the depth cut).
    pub bid_levels: i32,
    pub ask_levels: i32,
    /// JSON array of the stored bid levels.
    pub bids: String,
    /// JSON array of the stored ask levels.
    pub asks: String,
}

/// Which screener a snapshot is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScreenerKind {
    Equity,
    Option,
}

impl ScreenerKind {
    /// The screener of a service (`None` for other services).
    pub fn of(service: Service) -> Option<Self> {
        match service {
            Service::ScreenerEquity => Some(Self::Equity),
            Service::ScreenerOption => Some(Self::Option),
            _ => None,
        }
    }

    /// The `service` column: the wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Equity => "SCREENER_EQUITY",
            Self::Option => "SCREENER_OPTION",
        }
    }
}

/// One screener snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScreenerRow {
    pub service: ScreenerKind,
    /// `NASDAQ_VOLUME_30`.
    pub key: Arc<str>,
    pub timestamp: DateTime<Utc>,
    pub sort_field: Option<Arc<str>>,
    /// Minutes (0: the whole day).
    pub frequency: Option<i64>,
    pub item_count: i32,
    /// JSON array of the entries, with Schwab's field names.
    pub items: String,
}

/// One ACCT_ACTIVITY message. Private: `Debug` hides the account number and the message.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccountActivityRow {
    /// The subscription key the message came under.
    pub key: Arc<str>,
    pub account: Arc<str>,
    pub seq: i64,
    /// Empty on the nightly "Feature not supported" text frame.
    pub message_type: Arc<str>,
    /// When it was received (the data item's timestamp).
    pub received_at: DateTime<Utc>,
    /// The message as JSON text when field 3 parses as JSON.
    pub message_json: Option<String>,
    /// The message as Schwab sent it when it is not JSON.
    pub message_text: Option<String>,
    /// A stable 63-bit digest of the type and message: with `account` and `seq` the natural
    /// key, so a message repeated after a reconnect is stored once.
    pub message_hash: i64,
}

impl std::fmt::Debug for AccountActivityRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountActivityRow")
            .field("account", &"<redacted>")
            .field("seq", &self.seq)
            .field("message_type", &self.message_type)
            .field("received_at", &self.received_at)
            .finish_non_exhaustive()
    }
}

/// FNV-1a over the parts (with a separator), folded to a non-negative `i64`: stable across
/// processes and versions, which a `HashMap` hasher is not.
pub fn stable_hash(parts: &[&str]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h >> 1) as i64
}
