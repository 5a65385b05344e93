//! Column lists of the tables added for the futures, futures options, forex, futures candle,
//! book, screener and account activity services (migrations `V10__more_services` /
//! SQLite `V8__more_services`; SCHEMA.md documents them).

use std::sync::LazyLock;

use super::{Column, Conflict, TableSpec, Ty, Value, float, time_ms};
use crate::rows::{
    AccountActivityRow, BookRow, ForexRow, FuturesBarRow, FuturesOptionRow, FuturesRow, ScreenerRow,
};

/// `futures_data`: one row per LEVELONE_FUTURES update, with its indicators.
pub static FUTURES_DATA: LazyLock<TableSpec<FuturesRow>> = LazyLock::new(|| {
    let mut columns = vec![
        col!("symbol", Text, |r: FuturesRow| Value::Text(Some(&r.symbol))),
        col!("timestamp", Time, |r: FuturesRow| Value::Time(Some(
            r.timestamp
        ))),
        col!("seq", Int4, |r: FuturesRow| Value::Int4(Some(r.seq))),
        col!("active_symbol", Text, |r: FuturesRow| Value::Text(
            r.quote.active_symbol.as_deref()
        )),
        col!("price", Float8, |r: FuturesRow| float(r.quote.last)),
        col!("volume", Int8, |r: FuturesRow| Value::Int8(
            r.quote.total_volume
        )),
        col!("bid", Float8, |r: FuturesRow| float(r.quote.bid)),
        col!("ask", Float8, |r: FuturesRow| float(r.quote.ask)),
        col!("bid_size", Int8, |r: FuturesRow| Value::Int8(
            r.quote.bid_size
        )),
        col!("ask_size", Int8, |r: FuturesRow| Value::Int8(
            r.quote.ask_size
        )),
        col!("mark", Float8, |r: FuturesRow| float(r.quote.mark)),
        col!("last_size", Int8, |r: FuturesRow| Value::Int8(
            r.quote.last_size
        )),
        col!("high", Float8, |r: FuturesRow| float(r.quote.high)),
        col!("low", Float8, |r: FuturesRow| float(r.quote.low)),
        col!("open", Float8, |r: FuturesRow| float(r.quote.open)),
        col!("close", Float8, |r: FuturesRow| float(r.quote.close)),
        col!("net_change", Float8, |r: FuturesRow| float(
            r.quote.net_change
        )),
        col!("net_percent_change", Float8, |r: FuturesRow| float(
            r.quote.percent_change
        )),
        col!("open_interest", Int8, |r: FuturesRow| Value::Int8(
            r.quote.open_interest
        )),
        col!("settlement_price", Float8, |r: FuturesRow| float(
            r.quote.settlement_price
        )),
        col!("multiplier", Float8, |r: FuturesRow| float(
            r.quote.multiplier
        )),
        col!("expiration", Time, |r: FuturesRow| time_ms(
            r.quote.expiration_ms
        )),
        col!("quote_time", Time, |r: FuturesRow| time_ms(
            r.quote.quote_time_ms
        )),
        col!("trade_time", Time, |r: FuturesRow| time_ms(
            r.quote.trade_time_ms
        )),
        col!("security_status", Text, |r: FuturesRow| Value::Text(
            r.quote.security_status.as_deref()
        )),
    ];
    columns.extend(indicator_columns!(FuturesRow));
    TableSpec {
        name: "futures_data",
        columns,
        on_conflict: Conflict::Ignore,
    }
});

/// `futures_option_data`: one row per LEVELONE_FUTURES_OPTIONS update, with the contract
/// from its key.
pub static FUTURES_OPTION_DATA: LazyLock<TableSpec<FuturesOptionRow>> =
    LazyLock::new(|| TableSpec {
        name: "futures_option_data",
        columns: vec![
            col!("symbol", Text, |r: FuturesOptionRow| Value::Text(Some(
                &r.symbol
            ))),
            col!("root", Text, |r: FuturesOptionRow| Value::Text(Some(
                &r.contract.root
            ))),
            col!("contract_month", Date, |r: FuturesOptionRow| Value::Date(
                Some(r.contract.contract_month)
            )),
            col!("strike", Float8, |r: FuturesOptionRow| Value::Float8(Some(
                r.contract.strike
            ))),
            col!("contract_type", Text, |r: FuturesOptionRow| Value::Text(
                Some(if r.contract.contract_type == 'P' {
                    "P"
                } else {
                    "C"
                })
            )),
            col!("timestamp", Time, |r: FuturesOptionRow| Value::Time(Some(
                r.timestamp
            ))),
            col!("seq", Int4, |r: FuturesOptionRow| Value::Int4(Some(r.seq))),
            col!("underlying", Text, |r: FuturesOptionRow| Value::Text(
                r.quote.underlying.as_deref()
            )),
            col!("bid", Float8, |r: FuturesOptionRow| float(r.quote.bid)),
            col!("ask", Float8, |r: FuturesOptionRow| float(r.quote.ask)),
            col!("price", Float8, |r: FuturesOptionRow| float(r.quote.last)),
            col!("mark", Float8, |r: FuturesOptionRow| float(r.quote.mark)),
            col!("volume", Int8, |r: FuturesOptionRow| Value::Int8(
                r.quote.total_volume
            )),
            col!("open_interest", Int8, |r: FuturesOptionRow| Value::Int8(
                r.quote.open_interest
            )),
            col!("bid_size", Int8, |r: FuturesOptionRow| Value::Int8(
                r.quote.bid_size
            )),
            col!("ask_size", Int8, |r: FuturesOptionRow| Value::Int8(
                r.quote.ask_size
            )),
            col!("last_size", Int8, |r: FuturesOptionRow| Value::Int8(
                r.quote.last_size
            )),
            col!("high", Float8, |r: FuturesOptionRow| float(r.quote.high)),
            col!("low", Float8, |r: FuturesOptionRow| float(r.quote.low)),
            col!("open", Float8, |r: FuturesOptionRow| float(r.quote.open)),
            col!("close", Float8, |r: FuturesOptionRow| float(r.quote.close)),
            col!("settlement_price", Float8, |r: FuturesOptionRow| float(
                r.quote.settlement_price
            )),
            col!("multiplier", Float8, |r: FuturesOptionRow| float(
                r.quote.multiplier
            )),
            col!("expiration", Time, |r: FuturesOptionRow| time_ms(
                r.quote.expiration_ms
            )),
            col!("quote_time", Time, |r: FuturesOptionRow| time_ms(
                r.quote.quote_time_ms
            )),
            col!("trade_time", Time, |r: FuturesOptionRow| time_ms(
                r.quote.trade_time_ms
            )),
            col!("security_status", Text, |r: FuturesOptionRow| Value::Text(
                r.quote.security_status.as_deref()
            )),
        ],
        on_conflict: Conflict::Ignore,
    });

/// `forex_data`: one row per LEVELONE_FOREX update.
pub static FOREX_DATA: LazyLock<TableSpec<ForexRow>> = LazyLock::new(|| TableSpec {
    name: "forex_data",
    columns: vec![
        col!("symbol", Text, |r: ForexRow| Value::Text(Some(&r.symbol))),
        col!("timestamp", Time, |r: ForexRow| Value::Time(Some(
            r.timestamp
        ))),
        col!("seq", Int4, |r: ForexRow| Value::Int4(Some(r.seq))),
        col!("price", Float8, |r: ForexRow| float(r.quote.last)),
        col!("volume", Int8, |r: ForexRow| Value::Int8(
            r.quote.total_volume
        )),
        col!("bid", Float8, |r: ForexRow| float(r.quote.bid)),
        col!("ask", Float8, |r: ForexRow| float(r.quote.ask)),
        col!("bid_size", Int8, |r: ForexRow| Value::Int8(
            r.quote.bid_size
        )),
        col!("ask_size", Int8, |r: ForexRow| Value::Int8(
            r.quote.ask_size
        )),
        col!("mark", Float8, |r: ForexRow| float(r.quote.mark)),
        col!("last_size", Int8, |r: ForexRow| Value::Int8(
            r.quote.last_size
        )),
        col!("high", Float8, |r: ForexRow| float(r.quote.high)),
        col!("low", Float8, |r: ForexRow| float(r.quote.low)),
        col!("open", Float8, |r: ForexRow| float(r.quote.open)),
        col!("close", Float8, |r: ForexRow| float(r.quote.close)),
        col!("net_change", Float8, |r: ForexRow| float(
            r.quote.net_change
        )),
        col!("net_percent_change", Float8, |r: ForexRow| float(
            r.quote.percent_change
        )),
        col!("quote_time", Time, |r: ForexRow| time_ms(
            r.quote.quote_time_ms
        )),
        col!("trade_time", Time, |r: ForexRow| time_ms(
            r.quote.trade_time_ms
        )),
        col!("security_status", Text, |r: ForexRow| Value::Text(
            r.quote.security_status.as_deref()
        )),
    ],
    on_conflict: Conflict::Ignore,
});

/// `futures_bars`: CHART_FUTURES candles, upserted by symbol and bar start.
pub static FUTURES_BARS: LazyLock<TableSpec<FuturesBarRow>> = LazyLock::new(|| TableSpec {
    name: "futures_bars",
    columns: vec![
        col!("symbol", Text, |r: FuturesBarRow| Value::Text(Some(
            &r.symbol
        ))),
        col!("bar_start", Time, |r: FuturesBarRow| Value::Time(Some(
            r.bar_start
        ))),
        col!("open", Float8, |r: FuturesBarRow| Value::Float8(Some(
            r.open
        ))),
        col!("high", Float8, |r: FuturesBarRow| Value::Float8(Some(
            r.high
        ))),
        col!("low", Float8, |r: FuturesBarRow| Value::Float8(Some(r.low))),
        col!("close", Float8, |r: FuturesBarRow| Value::Float8(Some(
            r.close
        ))),
        col!("volume", Int8, |r: FuturesBarRow| Value::Int8(Some(
            r.volume
        ))),
        col!("sequence", Int8, |r: FuturesBarRow| Value::Int8(r.sequence)),
    ],
    on_conflict: Conflict::Upsert {
        key: &["symbol", "bar_start"],
    },
});

/// `book_snapshots`: one stored snapshot per book, symbol and time.
pub static BOOK_SNAPSHOTS: LazyLock<TableSpec<BookRow>> = LazyLock::new(|| TableSpec {
    name: "book_snapshots",
    columns: vec![
        col!("book", Text, |r: BookRow| Value::Text(Some(
            r.book.as_str()
        ))),
        col!("symbol", Text, |r: BookRow| Value::Text(Some(&r.symbol))),
        col!("timestamp", Time, |r: BookRow| Value::Time(Some(
            r.snapshot_time
        ))),
        col!("bid", Float8, |r: BookRow| float(r.bid)),
        col!("bid_size", Int8, |r: BookRow| Value::Int8(r.bid_size)),
        col!("ask", Float8, |r: BookRow| float(r.ask)),
        col!("ask_size", Int8, |r: BookRow| Value::Int8(r.ask_size)),
        col!("bid_levels", Int4, |r: BookRow| Value::Int4(Some(
            r.bid_levels
        ))),
        col!("ask_levels", Int4, |r: BookRow| Value::Int4(Some(
            r.ask_levels
        ))),
        col!("bids", Json, |r: BookRow| Value::Json(Some(&r.bids))),
        col!("asks", Json, |r: BookRow| Value::Json(Some(&r.asks))),
    ],
    on_conflict: Conflict::Ignore,
});

/// `screener_snapshots`: one row per screener item.
pub static SCREENER_SNAPSHOTS: LazyLock<TableSpec<ScreenerRow>> = LazyLock::new(|| TableSpec {
    name: "screener_snapshots",
    columns: vec![
        col!("service", Text, |r: ScreenerRow| Value::Text(Some(
            r.service.as_str()
        ))),
        col!("screener_key", Text, |r: ScreenerRow| Value::Text(Some(
            &r.key
        ))),
        col!("timestamp", Time, |r: ScreenerRow| Value::Time(Some(
            r.timestamp
        ))),
        col!("sort_field", Text, |r: ScreenerRow| Value::Text(
            r.sort_field.as_deref()
        )),
        col!("frequency", Int4, |r: ScreenerRow| Value::Int4(
            r.frequency.and_then(|f| i32::try_from(f).ok())
        )),
        col!("item_count", Int4, |r: ScreenerRow| Value::Int4(Some(
            r.item_count
        ))),
        col!("items", Json, |r: ScreenerRow| Value::Json(Some(&r.items))),
    ],
    on_conflict: Conflict::Ignore,
});

/// `account_activity`: one row per ACCT_ACTIVITY message (private table).
pub static ACCOUNT_ACTIVITY: LazyLock<TableSpec<AccountActivityRow>> =
    LazyLock::new(|| TableSpec {
        name: "account_activity",
        columns: vec![
            col!("account", Text, |r: AccountActivityRow| Value::Text(Some(
                &r.account
            ))),
            col!("seq", Int8, |r: AccountActivityRow| Value::Int8(Some(
                r.seq
            ))),
            col!("message_hash", Int8, |r: AccountActivityRow| Value::Int8(
                Some(r.message_hash)
            )),
            col!("subscription_key", Text, |r: AccountActivityRow| {
                Value::Text(Some(&r.key))
            }),
            col!("message_type", Text, |r: AccountActivityRow| Value::Text(
                Some(&r.message_type)
            )),
            col!("received_at", Time, |r: AccountActivityRow| Value::Time(
                Some(r.received_at)
            )),
            col!("message_json", Json, |r: AccountActivityRow| Value::Json(
                r.message_json.as_deref()
            )),
            col!("message_text", Text, |r: AccountActivityRow| Value::Text(
                r.message_text.as_deref()
            )),
        ],
        on_conflict: Conflict::Ignore,
    });
