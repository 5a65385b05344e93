//! Market-state tests: delta merge semantics, row keys, candles, options.

use super::*;
use crate::schwab::wire::parse_frame;

fn rows(state: &mut MarketState, text: &str) -> Vec<Row> {
    let frame = parse_frame(text, 0).expect("frame");
    frame
        .updates
        .iter()
        .filter_map(|u| state.apply(u).expect("row"))
        .collect()
}

fn equity(row: &Row) -> &EquityRow {
    match row {
        Row::Equity(e) => e,
        other => panic!("not an equity row: {other:?}"),
    }
}

#[test]
fn missing_fields_mean_unchanged_and_every_update_gives_a_full_row() {
    let mut s = MarketState::new();
    // Snapshot, as captured (AAPL, 2025-08-13).
    let snap = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1000,"content":[{"key":"AAPL","delayed":false,"assetMainType":"EQUITY","1":233.3,"2":233.35,"3":233.31,"4":1,"5":3,"8":69783000,"10":235.0}]}]}"#,
    );
    let r0 = equity(&snap[0]);
    assert_eq!(
        (r0.quote.bid, r0.quote.ask, r0.quote.last),
        (Some(233.3), Some(233.35), Some(233.31))
    );

    let d1 = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":2000,"content":[{"key":"AAPL","3":233.34,"8":69783236}]}]}"#,
    );
    let r1 = equity(&d1[0]);
    assert_eq!(r1.quote.last, Some(233.34));
    assert_eq!(r1.quote.total_volume, Some(69783236));
    assert_eq!(
        r1.quote.bid,
        Some(233.3),
        "bid not in the delta: unchanged, not null"
    );
    assert_eq!(r1.quote.ask_size, Some(3));
    assert_eq!(r1.quote.high, Some(235.0));

    let d2 = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":3000,"content":[{"key":"AAPL","1":233.33,"2":233.39,"5":1,"8":69784498}]}]}"#,
    );
    let r2 = equity(&d2[0]);
    assert_eq!(
        (r2.quote.bid, r2.quote.ask, r2.quote.last),
        (Some(233.33), Some(233.39), Some(233.34))
    );
    assert_eq!(r2.quote.ask_size, Some(1));
    assert_eq!(
        s.equity("AAPL").and_then(|q| q.total_volume),
        Some(69784498)
    );
}

#[test]
fn zero_is_a_value_not_a_missing_field() {
    let mut s = MarketState::new();
    rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[{"key":"X","4":5,"17":10.0}]}]}"#,
    );
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":2,"content":[{"key":"X","4":0,"17":0}]}]}"#,
    );
    assert_eq!(equity(&r[0]).quote.bid_size, Some(0));
    assert_eq!(equity(&r[0]).quote.open, Some(0.0));
}

#[test]
fn symbols_are_merged_independently() {
    let mut s = MarketState::new();
    rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[{"key":"A","1":1.0},{"key":"B","1":2.0}]}]}"#,
    );
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":2,"content":[{"key":"B","2":2.5}]}]}"#,
    );
    assert_eq!(r.len(), 1);
    assert_eq!(&*equity(&r[0]).ticker, "B");
    assert_eq!(equity(&r[0]).quote.bid, Some(2.0));
    assert_eq!(s.equity("A").and_then(|q| q.bid), Some(1.0));
}

#[test]
fn seq_separates_updates_with_the_same_timestamp_and_is_deterministic() {
    let text = r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":7,"content":[{"key":"A","1":1.0},{"key":"A","1":1.1}]},{"service":"LEVELONE_EQUITIES","timestamp":8,"content":[{"key":"A","1":1.2}]}]}"#;
    let mut s = MarketState::new();
    let keys: Vec<_> = rows(&mut s, text)
        .iter()
        .map(|r| (equity(r).timestamp.timestamp_millis(), equity(r).seq))
        .collect();
    assert_eq!(keys, [(7, 0), (7, 1), (8, 0)]);
    let mut again = MarketState::new();
    let keys2: Vec<_> = rows(&mut again, text)
        .iter()
        .map(|r| (equity(r).timestamp.timestamp_millis(), equity(r).seq))
        .collect();
    assert_eq!(keys, keys2, "same input, same natural keys");
}

#[test]
fn chart_items_become_bars_in_the_real_order() {
    let mut s = MarketState::new();
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"CHART_EQUITY","timestamp":1715904000123,"content":[{"seq":0,"key":"MSFT","1":779,"2":421.65,"3":421.79,"4":421.65,"5":421.755,"6":26.0,"7":1715903940000,"8":19859}]}]}"#,
    );
    let Row::Bar(b) = &r[0] else {
        panic!("not a bar")
    };
    assert_eq!(&*b.ticker, "MSFT");
    assert_eq!(b.bar_start.to_rfc3339(), "2024-05-16T23:59:00+00:00");
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume),
        (421.65, 421.79, 421.65, 421.755, 26)
    );
    assert_eq!((b.sequence, b.chart_day), (Some(779), Some(19859)));
}

#[test]
fn incomplete_candles_are_rejected() {
    let mut s = MarketState::new();
    let f = parse_frame(r#"{"data":[{"service":"CHART_EQUITY","timestamp":1,"content":[{"key":"MSFT","2":1.0,"3":1.0,"4":1.0,"7":1715903940000}]}]}"#, 0).expect("frame");
    let err = s.apply(&f.updates[0]).expect_err("no close");
    assert!(err.to_string().contains("field 5"), "{err}");
}

#[test]
fn option_rows_carry_the_parsed_contract_and_merged_greeks() {
    let mut s = MarketState::new();
    rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_OPTIONS","timestamp":1,"content":[{"key":"MSFT  251219C00480000","2":10.0,"3":10.2,"28":0.55,"29":0.01,"35":480.5}]}]}"#,
    );
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_OPTIONS","timestamp":2,"content":[{"key":"MSFT  251219C00480000","28":0.56}]}]}"#,
    );
    let Row::Option(o) = &r[0] else {
        panic!("not an option")
    };
    assert_eq!(&*o.contract.underlying, "MSFT");
    assert_eq!(o.contract.strike, 480.0);
    assert_eq!(o.contract.contract_type, option_symbol::ContractType::Call);
    assert_eq!(o.contract.expiration.to_string(), "2025-12-19");
    assert_eq!(
        (o.quote.delta, o.quote.gamma, o.quote.bid),
        (Some(0.56), Some(0.01), Some(10.0))
    );
}

#[test]
fn malformed_option_symbols_are_rejected() {
    let mut s = MarketState::new();
    let f = parse_frame(r#"{"data":[{"service":"LEVELONE_OPTIONS","timestamp":1,"content":[{"key":"MSFT_BAD","2":1.0}]}]}"#, 0).expect("frame");
    assert!(matches!(
        s.apply(&f.updates[0]),
        Err(ApplyError::BadOptionSymbol { .. })
    ));
}

#[test]
fn futures_merge_deltas_and_keep_the_active_contract() {
    let mut s = MarketState::new();
    rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_FUTURES","timestamp":1000,"content":[{"key":"/ES","delayed":false,"assetMainType":"FUTURE","1":6000.25,"2":6000.5,"3":6000.5,"8":1000,"20":0.42,"24":6000.375,"34":"/ESZ26","35":1797800000000}]}]}"#,
    );
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_FUTURES","timestamp":2000,"content":[{"key":"/ES","3":6001.0,"8":1003}]}]}"#,
    );
    let Row::Futures(f) = &r[0] else {
        panic!("not a futures row: {r:?}")
    };
    assert_eq!(f.quote.last, Some(6001.0));
    assert_eq!(f.quote.bid, Some(6000.25), "missing = unchanged");
    assert_eq!(f.quote.active_symbol.as_deref(), Some("/ESZ26"));
    assert_eq!(f.quote.percent_change, Some(0.42));
    let quote = f.as_quote();
    assert_eq!(
        (
            &*quote.ticker,
            quote.quote.net_percent_change,
            quote.quote.mark
        ),
        ("/ES", Some(0.42), Some(6000.375))
    );
}

#[test]
fn forex_reads_its_own_field_numbers() {
    let mut s = MarketState::new();
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_FOREX","timestamp":1000,"content":[{"key":"EUR/USD","1":1.0821,"2":1.0823,"3":1.0822,"6":5000,"7":10,"8":999,"15":1.08,"16":0.0022,"17":0.2,"29":1.0822}]}]}"#,
    );
    let Row::Forex(x) = &r[0] else {
        panic!("not forex")
    };
    assert_eq!(x.quote.total_volume, Some(5000), "volume is field 6 here");
    assert_eq!(x.quote.last_size, Some(10));
    assert_eq!(x.quote.quote_time_ms, Some(999));
    assert_eq!(x.quote.open, Some(1.08));
    assert_eq!(x.quote.mark, Some(1.0822));
}

#[test]
fn futures_options_carry_the_contract_from_their_key() {
    let mut s = MarketState::new();
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"LEVELONE_FUTURES_OPTIONS","timestamp":1000,"content":[{"key":"./OZCZ23C565","1":12.5,"24":"/ZCZ23"}]}]}"#,
    );
    let Row::FuturesOption(o) = &r[0] else {
        panic!("not a futures option")
    };
    assert_eq!(&*o.contract.root, "/OZC");
    assert_eq!(o.contract.contract_month.to_string(), "2023-12-01");
    assert_eq!((o.contract.contract_type, o.contract.strike), ('C', 565.0));
    assert_eq!(o.quote.underlying.as_deref(), Some("/ZCZ23"));
    let f = parse_frame(r#"{"data":[{"service":"LEVELONE_FUTURES_OPTIONS","timestamp":1,"content":[{"key":"/OZCZ23C565","1":1.0}]}]}"#, 0).expect("frame");
    assert!(matches!(
        s.apply(&f.updates[0]),
        Err(ApplyError::BadFuturesOptionSymbol { .. })
    ));
}

#[test]
fn chart_futures_items_are_candles_in_wire_order_with_seq() {
    let mut s = MarketState::new();
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"CHART_FUTURES","timestamp":1765307265036,"command":"SUBS","content":[{"1":1765307160000,"2":6858.25,"3":6858.75,"4":6857.75,"5":6858.5,"6":897,"seq":2224,"key":"/ES"}]}]}"#,
    );
    let Row::FuturesBar(b) = &r[0] else {
        panic!("not a futures candle")
    };
    assert_eq!(b.bar_start.timestamp_millis(), 1765307160000);
    assert_eq!(
        (b.open, b.high, b.low, b.close, b.volume, b.sequence),
        (6858.25, 6858.75, 6857.75, 6858.5, 897, Some(2224))
    );
}

const BOOK: &str = r#"{"data":[{"service":"NYSE_BOOK","timestamp":1765306322400,"content":[{"key":"F","1":TIME,"2":[{"0":13.11,"1":100,"2":1,"3":[{"0":"ARCX","1":100,"2":49786000}]},{"0":13.12,"1":31600,"2":9,"3":[{"0":"NYSE","1":8800,"2":49786299}]}],"3":[{"0":13.13,"1":12000,"2":4,"3":[{"0":"ARCX","1":5000,"2":49790001}]}]}]}]}"#;

#[test]
fn books_are_stored_at_most_once_per_interval_with_the_newest_kept() {
    use crate::market::books::BookSettings;
    let mut s = MarketState::with_books(BookSettings {
        depth: 1,
        interval_ms: 5_000,
    });
    let at = |ms: i64| BOOK.replace("TIME", &ms.to_string());
    let first = rows(&mut s, &at(1_765_306_322_349));
    let Row::Book(b) = &first[0] else {
        panic!("not a book")
    };
    assert_eq!(b.book.as_str(), "NYSE_BOOK");
    assert_eq!(
        (b.bid, b.bid_size, b.ask, b.ask_size),
        (Some(13.12), Some(31600), Some(13.13), Some(12000))
    );
    assert_eq!((b.bid_levels, b.ask_levels), (2, 1), "levels Schwab sent");
    let bids: serde_json::Value = serde_json::from_str(&b.bids).expect("json");
    assert_eq!(
        bids.as_array().map(Vec::len),
        Some(1),
        "BOOK_DEPTH 1: the best level only"
    );
    assert_eq!(bids[0]["price"], 13.12);
    assert_eq!(bids[0]["makers"][0]["id"], "NYSE");
    assert_eq!(
        bids[0]["makers"][0]["quote_time"],
        "2025-12-09T18:49:46.299Z"
    );
    // Within the interval: kept in memory, not stored.
    assert!(rows(&mut s, &at(1_765_306_323_349)).is_empty());
    assert!(rows(&mut s, &at(1_765_306_324_349)).is_empty());
    let mut due = Vec::new();
    s.due_books(1_765_306_325_000, &mut due);
    assert!(due.is_empty(), "slot not come yet");
    s.due_books(1_765_306_327_349, &mut due);
    let [Row::Book(kept)] = due.as_slice() else {
        panic!("the newest kept snapshot is stored when its slot comes: {due:?}")
    };
    assert_eq!(kept.snapshot_time.timestamp_millis(), 1_765_306_324_349);
}

#[test]
fn screeners_keep_named_items_and_account_activity_takes_json_or_text() {
    let mut s = MarketState::new();
    let r = rows(
        &mut s,
        r#"{"data":[{"service":"SCREENER_EQUITY","timestamp":5,"content":[{"key":"NASDAQ_VOLUME_30","1":1765306322349,"2":"VOLUME","3":30,"4":[{"symbol":"AAPL","description":"Apple","lastPrice":235.1,"netChange":1.2,"netPercentChange":0.51,"marketShare":4.2,"totalVolume":1000,"volume":10,"trades":3},{"symbol":"MSFT","lastPrice":420.0}]}]}]}"#,
    );
    let Row::Screener(sc) = &r[0] else {
        panic!("not a screener")
    };
    assert_eq!(
        (&*sc.key, sc.frequency, sc.item_count),
        ("NASDAQ_VOLUME_30", Some(30), 2)
    );
    let items: serde_json::Value = serde_json::from_str(&sc.items).expect("json");
    assert_eq!(items[0]["lastPrice"], 235.1);
    assert_eq!(items[0]["marketShare"], 4.2);
    assert!(
        items[1].get("trades").is_none(),
        "a missing field stays missing"
    );

    let r = rows(
        &mut s,
        r#"{"data":[{"service":"ACCT_ACTIVITY","timestamp":1765306322349,"content":[{"seq":7,"key":"Account Activity","1":"12345678","2":"OrderCreated","3":"{\"LimitPrice\":{\"lo\":\"220470000\",\"signScale\":12}}"},{"seq":11,"key":"Account Activity","1":"12345678","2":"","3":"Feature not supported"}]}]}"#,
    );
    let [Row::Account(order), Row::Account(text)] = r.as_slice() else {
        panic!("two account rows: {r:?}")
    };
    assert_eq!((order.seq, &*order.message_type), (7, "OrderCreated"));
    assert!(
        order
            .message_json
            .as_deref()
            .is_some_and(|j| j.contains("signScale"))
    );
    assert_eq!(order.message_text, None);
    assert_eq!(text.message_json, None);
    assert_eq!(text.message_text.as_deref(), Some("Feature not supported"));
    assert!(
        !format!("{order:?}").contains("12345678"),
        "Debug hides the account"
    );
}

#[test]
fn a_book_snapshot_still_waiting_when_the_stream_ends_is_stored() {
    let mut s = MarketState::new();
    let at = |ms: i64| BOOK.replace("TIME", &ms.to_string());
    assert_eq!(rows(&mut s, &at(1_765_306_322_349)).len(), 1);
    assert!(
        rows(&mut s, &at(1_765_306_323_349)).is_empty(),
        "kept for its slot"
    );
    let mut last = Vec::new();
    s.flush_books(&mut last);
    let [Row::Book(b)] = last.as_slice() else {
        panic!("the kept snapshot is stored at the end: {last:?}")
    };
    assert_eq!(b.snapshot_time.timestamp_millis(), 1_765_306_323_349);
    let mut again = Vec::new();
    s.flush_books(&mut again);
    assert!(again.is_empty(), "stored once");
}
