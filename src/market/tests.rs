//! Market-state tests: delta merge semantics, row keys, candles, options.

use super::*;
use crate::schwab::wire::parse_frame;

fn rows(state: &mut MarketState, text: &str) -> Vec<Row> {
    let frame = parse_frame(text, 0).expect("frame");
    frame
        .updates
        .iter()
        .map(|u| state.apply(u).expect("row"))
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
