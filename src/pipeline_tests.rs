//! Unit tests of [`FrameProcessor`]'s guards: only subscribed keys make state and rows (and a
//! removed key leaves none), and a time stamped ahead is clamped to the receive time so nothing
//! freezes.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::indicators::IndicatorSettings;
use crate::rows::EquityRow;

fn processor() -> FrameProcessor {
    FrameProcessor::new(
        Arc::new(PipelineStats::default()),
        IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"),
    )
}

fn equities(keys: &[&str]) -> Subscription {
    Subscription {
        service: Service::LevelOneEquities,
        keys: keys.iter().map(|k| k.to_string()).collect(),
        fields: vec![0, 3, 8],
    }
}

fn frame(service: &str, stamp_ms: i64, items: &[String]) -> String {
    format!(
        r#"{{"data":[{{"service":"{service}","timestamp":{stamp_ms},"command":"SUBS","content":[{}]}}]}}"#,
        items.join(",")
    )
}

fn quote(key: &str, last: f64, volume: i64) -> String {
    format!(r#"{{"key":"{key}","3":{last},"8":{volume}}}"#)
}

fn equity_rows(rows: &[Row]) -> Vec<&EquityRow> {
    rows.iter()
        .filter_map(|r| match r {
            Row::Equity(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn items_for_keys_never_subscribed_make_no_row_and_no_state_and_are_counted() {
    let mut p = processor().with_subscriptions(&[equities(&["AAPL"])]);
    let now = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    for chunk in 0..100 {
        let items: Vec<String> = (0..1_000)
            .map(|i| quote(&format!("ZZ{}", chunk * 1_000 + i), 10.0, 5))
            .collect();
        p.process_text(&frame("LEVELONE_EQUITIES", now, &items), now, &mut rows);
    }
    // A subscribed key of another service is not subscribed for this one.
    let chart = format!(r#"{{"key":"AAPL","1":1.0,"2":1.0,"3":1.0,"4":1.0,"5":1.0,"7":{now}}}"#);
    p.process_text(&frame("CHART_EQUITY", now, &[chart]), now, &mut rows);
    p.process_text(
        &frame("LEVELONE_EQUITIES", now, &[quote("AAPL", 10.0, 5)]),
        now,
        &mut rows,
    );
    assert_eq!(rows.len(), 1, "only AAPL's quote makes a row");
    assert_eq!(p.state().symbol_count(), 1);
    assert_eq!(p.indicators().symbol_count(), 1);
    let s = &p.stats;
    assert_eq!(
        PipelineStats::get(&s.items_unsubscribed[Service::LevelOneEquities.index()]),
        100_000
    );
    assert_eq!(
        PipelineStats::get(&s.items_unsubscribed[Service::ChartEquity.index()]),
        1
    );
}

#[test]
fn without_subscriptions_every_key_is_accepted() {
    let mut p = processor();
    let now = chrono::Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    let items = [quote("AAPL", 1.0, 1), quote("ANY", 2.0, 2)];
    p.process_text(&frame("LEVELONE_EQUITIES", now, &items), now, &mut rows);
    assert_eq!(rows.len(), 2);
    assert!(p.subscribed_keys().accepts_any());
}

#[test]
fn a_frame_stamped_ten_minutes_ahead_is_clamped_and_the_next_frames_move_on() {
    let mut p = processor().with_subscriptions(&[equities(&["AAPL"])]);
    let t0 = chrono::Utc::now().timestamp_millis() + 5_000;
    let mut rows = Vec::new();
    let mut at = |p: &mut FrameProcessor, stamp: i64, received: i64, last: f64, vol: i64| {
        rows.clear();
        p.process_text(
            &frame("LEVELONE_EQUITIES", stamp, &[quote("AAPL", last, vol)]),
            received,
            &mut rows,
        );
        let row = equity_rows(&rows)[0].clone();
        (row.timestamp.timestamp_millis(), row.indicators.vwap)
    };
    let (first, _) = at(&mut p, t0, t0, 100.0, 1_000);
    let (ahead, vwap_ahead) = at(&mut p, t0 + 600_000, t0 + 1_000, 200.0, 2_000);
    assert_eq!(ahead, t0 + 1_000, "clamped to the receive time");
    let (next, vwap_next) = at(&mut p, t0 + 2_000, t0 + 2_000, 400.0, 4_000);
    assert!(first < ahead && ahead < next, "times keep moving forward");
    assert_ne!(
        vwap_ahead, vwap_next,
        "the indicators follow the next frame"
    );
    let s = p.stats.clone();
    assert_eq!(PipelineStats::get(&s.times_clamped), 1);
    assert_eq!(s.clock_skew_max_ms.load(Relaxed), 599_000);
    // Within the tolerance nothing is clamped.
    at(&mut p, t0 + 3_000 + 59_000, t0 + 3_000, 400.0, 4_100);
    assert_eq!(PipelineStats::get(&s.times_clamped), 1);
}

#[test]
fn a_removed_key_leaves_no_state_and_its_waiting_book_snapshot_is_stored() {
    let sub = |service, keys: &[&str]| Subscription {
        service,
        keys: keys.iter().map(|k| k.to_string()).collect(),
        fields: vec![0, 1, 2, 3],
    };
    let mut p = processor().with_subscriptions(&[
        equities(&["AAPL"]),
        sub(Service::LevelOneFutures, &["/ES"]),
        sub(Service::NyseBook, &["F"]),
    ]);
    // The watchlist adds NVDA on the running connection.
    p.add_keys(Service::LevelOneEquities, &["NVDA".into()]);
    let t = chrono::Utc::now().timestamp_millis();
    let book = |ms: i64| {
        format!(
            r#"{{"data":[{{"service":"NYSE_BOOK","timestamp":{ms},"content":[{{"key":"F","1":{ms},"2":[{{"0":13.12,"1":100,"2":1,"3":[{{"0":"NYSE","1":100,"2":49786299}}]}}],"3":[{{"0":13.13,"1":200,"2":1,"3":[{{"0":"ARCX","1":200,"2":49790001}}]}}]}}]}}]}}"#
        )
    };
    let mut rows = Vec::new();
    for (i, ms) in [t, t + 1].into_iter().enumerate() {
        let items = [quote("AAPL", 10.0, 5), quote("NVDA", 20.0, 7)];
        p.process_text(&frame("LEVELONE_EQUITIES", ms, &items), ms, &mut rows);
        let es = [quote("/ES", 6000.0 + i as f64, 9)];
        p.process_text(&frame("LEVELONE_FUTURES", ms, &es), ms, &mut rows);
        p.process_text(&book(ms), ms, &mut rows);
    }
    // AAPL, NVDA, /ES merged; the second book snapshot waits for its slot.
    assert_eq!(p.state().symbol_count(), 3);
    assert_eq!(p.indicators().symbol_count(), 3);
    let books = |rows: &[Row]| rows.iter().filter(|r| matches!(r, Row::Book(_))).count();
    assert_eq!(books(&rows), 1);

    p.remove_keys(Service::LevelOneEquities, &["NVDA".into()]);
    p.remove_keys(Service::LevelOneFutures, &["/ES".into()]);
    p.remove_keys(Service::NyseBook, &["F".into()]);
    assert_eq!(p.state().symbol_count(), 1, "only AAPL's quote is kept");
    assert_eq!(p.indicators().symbol_count(), 1, "only AAPL's indicators");
    assert!(p.state().equity("NVDA").is_none() && p.state().futures("/ES").is_none());

    // The waiting book snapshot goes out with the next frame's rows; the removed keys'
    // items make nothing any more.
    let mut next = Vec::new();
    let items = [quote("AAPL", 11.0, 6), quote("NVDA", 21.0, 8)];
    p.process_text(&frame("LEVELONE_EQUITIES", t + 2, &items), t + 2, &mut next);
    p.process_text(&book(t + 2), t + 2, &mut next);
    assert_eq!(
        books(&next),
        1,
        "the kept snapshot is stored once: {next:?}"
    );
    assert_eq!(equity_rows(&next).len(), 1);
    assert_eq!(&*equity_rows(&next)[0].ticker, "AAPL");
    assert_eq!(p.state().symbol_count(), 1);
    let mut end = Vec::new();
    p.finish(&mut end);
    assert!(end.is_empty(), "nothing left over: {end:?}");
}
