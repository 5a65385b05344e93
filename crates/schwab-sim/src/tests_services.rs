//! Behaviour tests of the services beyond LEVELONE_EQUITIES / _OPTIONS / CHART_EQUITY:
//! futures, futures options, forex, CHART_FUTURES, books, screeners, account activity and the
//! symbol limit, through the public API, checking the wire text.

use serde_json::{Map, Value};

use super::market_time::ms_since_eastern_midnight;
use super::{MarketSimulator, SimConfig, SimError};

/// 2025-12-09 14:00:00 EST (a Tuesday, regular hours), a minute boundary.
const START: i64 = 1_765_306_800_000;
/// 2025-12-09 22:00:00 EST (after hours).
const NIGHT: i64 = START + 8 * 3_600_000;

fn sim(seed: u64) -> MarketSimulator {
    MarketSimulator::new(
        SimConfig {
            seed,
            ..SimConfig::default()
        },
        START,
    )
}

fn subscribe(sim: &mut MarketSimulator, service: &str, command: &str, keys: &[&str], max: u32) {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let fields: Vec<u32> = (0..=max).collect();
    if let Err(e) = sim.apply_command(service, command, &keys, &fields) {
        panic!("{command} {service} {keys:?} refused: {e}");
    }
}

/// (service, frame timestamp, item) of every data item, in order.
fn items(frames: &[String]) -> Vec<(String, i64, Map<String, Value>)> {
    let mut out = Vec::new();
    for frame in frames {
        let v: Value = serde_json::from_str(frame).unwrap_or_else(|e| panic!("{e}: {frame}"));
        let Some(data) = v.get("data").and_then(Value::as_array) else {
            continue;
        };
        let entry = &data[0];
        assert_eq!(entry["command"], "SUBS");
        let service = entry["service"].as_str().unwrap_or_default().to_string();
        let ts = entry["timestamp"].as_i64().unwrap_or_default();
        for item in entry["content"].as_array().into_iter().flatten() {
            let Some(map) = item.as_object() else {
                panic!("item is not an object: {frame}");
            };
            out.push((service.clone(), ts, map.clone()));
        }
    }
    out
}

fn of<'a>(
    all: &'a [(String, i64, Map<String, Value>)],
    service: &str,
    key: &str,
) -> Vec<&'a (String, i64, Map<String, Value>)> {
    all.iter()
        .filter(|(s, _, m)| s == service && m["key"] == key)
        .collect()
}

/// Checks Change delivery: a full snapshot with the header, then only changed fields.
fn check_change_delivery(
    all: &[(String, i64, Map<String, Value>)],
    service: &str,
    key: &str,
    asset: &str,
    max: u32,
) -> Map<String, Value> {
    let list = of(all, service, key);
    assert!(list.len() > 20, "{service} {key}: {} items", list.len());
    let first = &list[0].2;
    assert_eq!(first["delayed"], false);
    assert_eq!(first["assetMainType"], asset);
    for f in 1..=max {
        assert!(
            first.contains_key(&f.to_string()),
            "{key} snapshot lacks {f}"
        );
    }
    let mut merged = first.clone();
    for (_, _, item) in &list[1..] {
        for (name, value) in item {
            if name == "key" {
                continue;
            }
            assert!(!["delayed", "assetMainType", "cusip"].contains(&name.as_str()));
            assert_ne!(
                merged.get(name),
                Some(value),
                "{key}: {name} sent unchanged"
            );
            merged.insert(name.clone(), value.clone());
        }
        assert!(
            item.len() < first.len() / 2,
            "{key}: a delta with {} keys",
            item.len()
        );
    }
    merged
}

#[test]
fn futures_start_with_a_snapshot_then_send_only_changes() {
    let mut s = sim(3);
    subscribe(
        &mut s,
        "LEVELONE_FUTURES",
        "SUBS",
        &["/ES", "/NQ", "/CLF27"],
        40,
    );
    let all = items(&s.advance_to(START + 60_000));
    let es = check_change_delivery(&all, "LEVELONE_FUTURES", "/ES", "FUTURE", 40);
    assert_eq!(
        es["34"], "/ESZ25",
        "the December 2025 contract is the front month on 12-09"
    );
    assert_eq!(es["27"], "/ES");
    assert_eq!(es["31"], 50);
    assert_eq!(es["22"], "Normal");
    assert_eq!(es["25"], 0.25);
    assert_eq!(es["16"], "E-mini S&P 500 Index Futures,Dec-2025,ETH");
    let price = es["3"].as_f64().unwrap_or_default();
    assert!((5500.0..6500.0).contains(&price), "{price}");
    assert_eq!((price * 4.0).fract(), 0.0, "whole ticks: {price}");
    assert!(es["1"].as_f64() < es["2"].as_f64());
    assert!(es["10"].as_i64() > Some(START - 2000) && es["35"].as_i64() > Some(START));
    let nq = check_change_delivery(&all, "LEVELONE_FUTURES", "/NQ", "FUTURE", 40);
    assert_eq!(nq["31"], 20);
    assert!((19_000.0..23_000.0).contains(&nq["3"].as_f64().unwrap_or_default()));
    let cl = check_change_delivery(&all, "LEVELONE_FUTURES", "/CLF27", "FUTURE", 40);
    assert_eq!(
        (&cl["34"], &cl["31"], &cl["21"]),
        (
            &Value::from("/CLF27"),
            &Value::from(1000),
            &Value::from("XNYM")
        )
    );
    assert!((60.0..80.0).contains(&cl["3"].as_f64().unwrap_or_default()));
    assert_eq!(s.items_emitted("LEVELONE_FUTURES") as usize, all.len());
}

#[test]
fn futures_options_and_forex_follow_change_delivery() {
    let mut s = sim(5);
    subscribe(
        &mut s,
        "LEVELONE_FUTURES_OPTIONS",
        "SUBS",
        &["./OZCZ27C565"],
        31,
    );
    subscribe(
        &mut s,
        "LEVELONE_FOREX",
        "SUBS",
        &["EUR/USD", "USD/JPY"],
        29,
    );
    let all = items(&s.advance_to(START + 60_000));
    let o = check_change_delivery(
        &all,
        "LEVELONE_FUTURES_OPTIONS",
        "./OZCZ27C565",
        "FUTURE_OPTION",
        31,
    );
    assert_eq!(
        (&o["24"], &o["25"], &o["28"]),
        (&Value::from("/ZCZ27"), &Value::from(565), &Value::from("C"))
    );
    let (bid, ask) = (
        o["1"].as_f64().unwrap_or(-1.0),
        o["2"].as_f64().unwrap_or(-1.0),
    );
    assert!(bid >= 0.0 && bid < ask && ask < 100.0, "{bid} {ask}");
    assert!(o["26"].as_i64() > Some(START));
    let eur = check_change_delivery(&all, "LEVELONE_FOREX", "EUR/USD", "FOREX", 29);
    let jpy = check_change_delivery(&all, "LEVELONE_FOREX", "USD/JPY", "FOREX", 29);
    assert_eq!((&eur["19"], &jpy["19"]), (&Value::from(5), &Value::from(3)));
    assert!((1.0..1.2).contains(&eur["1"].as_f64().unwrap_or_default()));
    assert!((140.0..160.0).contains(&jpy["29"].as_f64().unwrap_or_default()));
    assert!(eur["1"].as_f64() < eur["2"].as_f64());
    for bad in ["/OZCZ27C565", "./OZCZ27"] {
        let e = s.apply_command(
            "LEVELONE_FUTURES_OPTIONS",
            "ADD",
            &[bad.to_string()],
            &[0, 1],
        );
        assert!(
            matches!(e, Err(SimError::InvalidKey { .. })),
            "{bad}: {e:?}"
        );
    }
    let e = s.apply_command("LEVELONE_FOREX", "SUBS", &["EURUSD".to_string()], &[0, 1]);
    assert!(matches!(e, Err(SimError::InvalidKey { .. })), "{e:?}");
    let e = s.apply_command("LEVELONE_FOREX", "SUBS", &["EUR/USD".to_string()], &[0, 30]);
    assert!(
        matches!(e, Err(SimError::FieldOutOfRange { max: 29, .. })),
        "{e:?}"
    );
}

#[test]
fn chart_futures_bars_have_seq_in_the_real_order_and_match_the_level_one_volume() {
    let mut s = sim(9);
    subscribe(&mut s, "LEVELONE_FUTURES", "SUBS", &["/ES"], 40);
    subscribe(&mut s, "CHART_FUTURES", "SUBS", &["/ES", "/NQ"], 6);
    let frames = s.advance_to(START + 240_000);
    for frame in frames.iter().filter(|f| f.contains("CHART_FUTURES")) {
        let content = &frame[frame.find("\"content\":[").unwrap_or_default()..];
        assert!(content.starts_with("\"content\":[{\"1\":"), "{frame}");
        assert!(
            content.contains(",\"seq\":") && content.contains(",\"key\":\"/"),
            "{frame}"
        );
        assert!(content.find("\"6\":") < content.find("\"seq\""), "{frame}");
    }
    let all = items(&frames);
    let bars = of(&all, "CHART_FUTURES", "/ES");
    assert_eq!(
        bars.len(),
        5,
        "the bar before SUBS, then one per completed minute"
    );
    assert_eq!(
        bars[0].1,
        START + 100,
        "the latest completed bar comes right after SUBS"
    );
    assert_eq!(bars[0].2["1"], START - 60_000);
    let level_one = of(&all, "LEVELONE_FUTURES", "/ES");
    let volume_before = |t: i64| {
        level_one
            .iter()
            .rfind(|(_, ts, m)| *ts < t && m.contains_key("8"))
            .and_then(|(_, _, m)| m["8"].as_i64())
    };
    for (i, (_, ts, bar)) in bars.iter().enumerate() {
        let start = bar["1"].as_i64().unwrap_or_default();
        assert_eq!(bar["seq"], i);
        let (o, h, l, c) = (
            bar["2"].as_f64(),
            bar["3"].as_f64(),
            bar["4"].as_f64(),
            bar["5"].as_f64(),
        );
        assert!(l <= o && o <= h && l <= c && c <= h, "{bar:?}");
        if i == 0 {
            continue;
        }
        assert_eq!(*ts, start + 60_000, "sent at the end of its minute");
        if i > 1 {
            let traded = volume_before(start + 60_000)
                .zip(volume_before(start))
                .map(|(a, b)| a - b);
            assert_eq!(traded, bar["6"].as_i64(), "bar {i} volume vs field 8");
        }
    }
    assert_eq!(of(&all, "CHART_FUTURES", "/NQ").len(), 5);
}

fn check_book(book: &Map<String, Value>, ts: i64) -> (f64, f64) {
    assert_eq!(book["1"], ts);
    let snapshot_clock = ms_since_eastern_midnight(ts);
    let mut best = [0.0; 2];
    for (side, field) in ["2", "3"].into_iter().enumerate() {
        let levels = book[field].as_array().cloned().unwrap_or_default();
        assert!(
            levels.len() >= 10 && levels.len() <= 20,
            "{} levels",
            levels.len()
        );
        let prices: Vec<f64> = levels.iter().filter_map(|l| l["0"].as_f64()).collect();
        best[side] = prices[0];
        for w in prices.windows(2) {
            assert!(
                if side == 0 { w[0] > w[1] } else { w[0] < w[1] },
                "{prices:?}"
            );
        }
        for level in &levels {
            let makers = level["3"].as_array().cloned().unwrap_or_default();
            assert_eq!(level["2"].as_u64(), Some(makers.len() as u64));
            let total: i64 = makers.iter().filter_map(|m| m["1"].as_i64()).sum();
            assert_eq!(level["1"].as_i64(), Some(total));
            for m in makers {
                assert_eq!(m["0"].as_str().map(str::len), Some(4), "{m}");
                let quoted = m["2"].as_i64().unwrap_or(-1);
                assert!(
                    quoted < snapshot_clock && quoted > snapshot_clock - 10_000,
                    "{quoted} vs {snapshot_clock}"
                );
            }
        }
    }
    (best[0], best[1])
}

#[test]
fn books_are_whole_nested_and_sit_on_the_level_one_quote() {
    let mut s = sim(11);
    let option = "AAPL  251219C00230000";
    subscribe(&mut s, "LEVELONE_EQUITIES", "SUBS", &["AAPL"], 51);
    subscribe(&mut s, "NASDAQ_BOOK", "SUBS", &["AAPL"], 3);
    subscribe(&mut s, "NYSE_BOOK", "SUBS", &["F"], 3);
    subscribe(&mut s, "OPTIONS_BOOK", "SUBS", &[option], 3);
    let all = items(&s.advance_to(START + 30_000));
    let books = of(&all, "NASDAQ_BOOK", "AAPL");
    assert!(
        (29..=31).contains(&books.len()),
        "about one a second: {}",
        books.len()
    );
    let level_one = of(&all, "LEVELONE_EQUITIES", "AAPL");
    for (_, ts, book) in books {
        let (bid, ask) = check_book(book, *ts);
        let quote = |f: &str| {
            level_one
                .iter()
                .rfind(|(_, t, m)| t <= ts && m.contains_key(f))
                .and_then(|(_, _, m)| m[f].as_f64())
        };
        assert_eq!((Some(bid), Some(ask)), (quote("1"), quote("2")), "at {ts}");
        let shares = book["2"][0]["3"][0]["1"].as_i64().unwrap_or_default();
        assert_eq!(shares % 100, 0, "equity book sizes are shares");
    }
    assert!(of(&all, "NYSE_BOOK", "F").len() >= 29);
    let options = of(&all, "OPTIONS_BOOK", option);
    assert!(options.len() >= 29);
    let (_, _, first) = options[0];
    assert!(first["3"][0]["0"].as_f64() > first["2"][0]["0"].as_f64());
    let e = s.apply_command("OPTIONS_BOOK", "ADD", &["AAPL".to_string()], &[]);
    assert!(
        matches!(e, Err(SimError::InvalidOptionSymbol { .. })),
        "{e:?}"
    );
    // after hours the books go on, thinner
    let mut night = MarketSimulator::new(SimConfig::default(), NIGHT);
    subscribe(&mut night, "NASDAQ_BOOK", "SUBS", &["AAPL"], 3);
    let night_books = items(&night.advance_to(NIGHT + 10_000));
    assert!(night_books.len() >= 9);
    assert!(
        night_books
            .iter()
            .all(|(_, _, b)| b["2"].as_array().map(Vec::len) < Some(10))
    );
}

#[test]
fn screeners_send_named_rows_sorted_by_their_field() {
    let mut s = sim(2);
    subscribe(
        &mut s,
        "SCREENER_EQUITY",
        "SUBS",
        &["NASDAQ_VOLUME_5", "NYSE_PERCENT_CHANGE_UP_0"],
        4,
    );
    subscribe(
        &mut s,
        "SCREENER_OPTION",
        "SUBS",
        &["OPTION_CALL_VOLUME_5"],
        4,
    );
    let all = items(&s.advance_to(START + 30_000));
    let names = [
        "symbol",
        "description",
        "lastPrice",
        "netChange",
        "netPercentChange",
        "marketShare",
        "totalVolume",
        "volume",
        "trades",
    ];
    for (service, key, sort) in [
        ("SCREENER_EQUITY", "NASDAQ_VOLUME_5", "volume"),
        (
            "SCREENER_EQUITY",
            "NYSE_PERCENT_CHANGE_UP_0",
            "netPercentChange",
        ),
        ("SCREENER_OPTION", "OPTION_CALL_VOLUME_5", "volume"),
    ] {
        let lists = of(&all, service, key);
        assert!(
            (6..=7).contains(&lists.len()),
            "{key}: {} lists",
            lists.len()
        );
        for (_, ts, list) in lists {
            assert_eq!(list["1"], *ts);
            let rows = list["4"].as_array().cloned().unwrap_or_default();
            assert!((5..=10).contains(&rows.len()), "{key}: {} rows", rows.len());
            let values: Vec<f64> = rows.iter().filter_map(|r| r[sort].as_f64()).collect();
            assert!(
                values.windows(2).all(|w| w[0] >= w[1]),
                "{key} not sorted: {values:?}"
            );
            for row in &rows {
                let obj = row.as_object().cloned().unwrap_or_default();
                assert_eq!(obj.keys().len(), names.len());
                assert!(names.iter().all(|n| obj.contains_key(*n)), "{row}");
                assert!(row["volume"].as_i64() <= row["totalVolume"].as_i64());
                if service == "SCREENER_OPTION" {
                    assert_eq!(row["symbol"].as_str().map(str::len), Some(21), "{row}");
                    assert_eq!(row["symbol"].as_str().map(|s| &s[12..13]), Some("C"));
                }
            }
        }
    }
    assert_eq!(
        of(&all, "SCREENER_EQUITY", "NASDAQ_VOLUME_5")[0].2["2"],
        "VOLUME"
    );
    assert_eq!(of(&all, "SCREENER_EQUITY", "NASDAQ_VOLUME_5")[0].2["3"], 5);
    for bad in ["NASDAQ_VOLUME_7", "OPTION_CALL_VOLUME_5", "NASDAQ_PRICE_5"] {
        let e = s.apply_command("SCREENER_EQUITY", "ADD", &[bad.to_string()], &[]);
        assert!(
            matches!(e, Err(SimError::InvalidKey { .. })),
            "{bad}: {e:?}"
        );
    }
}

fn account_items(frames: &[String]) -> Vec<Map<String, Value>> {
    items(frames)
        .into_iter()
        .filter(|(s, _, _)| s == "ACCT_ACTIVITY")
        .map(|(_, _, m)| m)
        .collect()
}

#[test]
fn account_activity_streams_an_order_lifecycle_with_seq() {
    let mut s = sim(4);
    let key = ["Account Activity".to_string()];
    for command in ["ADD", "VIEW"] {
        let e = s.apply_command("ACCT_ACTIVITY", command, &key, &[0, 1, 2, 3]);
        assert!(
            matches!(e, Err(SimError::CommandNotSupported { .. })),
            "{command}: {e:?}"
        );
    }
    assert!(!s.queue_account_text_frame(), "nothing subscribed");
    subscribe(&mut s, "ACCT_ACTIVITY", "SUBS", &["Account Activity"], 3);
    let frames = s.advance_to(START + 10_000);
    let first = account_items(&frames);
    assert!(!first.is_empty(), "a first event within 10 s");
    let frames = [frames, s.advance_to(START + 60_000)].concat();
    let all = account_items(&frames);
    assert!(all.len() >= 10, "{} events in a minute", all.len());
    let types: Vec<&str> = all.iter().filter_map(|m| m["2"].as_str()).collect();
    assert_eq!(
        &types[..3],
        ["OrderCreated", "OrderAccepted", "ExecutionRequested"]
    );
    assert!(types.contains(&"OrderFillCompleted"));
    for (i, m) in all.iter().enumerate() {
        assert_eq!(m["seq"], i);
        assert_eq!(m["key"], "Account Activity");
        let account = m["1"].as_str().unwrap_or_default();
        assert!(account.len() == 8 && account.bytes().all(|b| b.is_ascii_digit()));
        let doc: Value =
            serde_json::from_str(m["3"].as_str().unwrap_or_default()).unwrap_or_default();
        assert_eq!(doc["BaseEvent"]["EventType"], m["2"]);
        let text = doc.to_string();
        assert!(
            text.contains("\"signScale\":12") && text.contains("\"lo\":\""),
            "{text}"
        );
    }
    let raw = frames
        .iter()
        .find(|f| f.contains("ACCT_ACTIVITY"))
        .cloned()
        .unwrap_or_default();
    assert!(
        raw.contains("\"content\":[{\"seq\":0,\"key\":\"Account Activity\",\"1\":"),
        "{raw}"
    );
    // during regular hours no text item came; the switch sends one now
    assert!(types.iter().all(|t| !t.is_empty()));
    assert!(s.queue_account_text_frame());
    let trap = account_items(&s.advance_to(START + 60_100));
    assert_eq!(trap.len(), 1);
    assert_eq!(
        (&trap[0]["2"], &trap[0]["3"]),
        (&Value::from(""), &Value::from("Feature not supported"))
    );
    assert_eq!(trap[0]["seq"], all.len());
}

#[test]
fn after_the_close_account_activity_first_says_feature_not_supported() {
    let mut s = MarketSimulator::new(SimConfig::default(), NIGHT);
    subscribe(&mut s, "ACCT_ACTIVITY", "SUBS", &["Account Activity"], 3);
    let all = account_items(&s.advance_to(NIGHT + 60_000));
    assert_eq!(all[0]["2"], "");
    assert_eq!(all[0]["3"], "Feature not supported");
    assert_eq!(all[0]["seq"], 0);
    assert!(all[1..].iter().all(|m| m["2"] != ""), "only once");
    assert!(all.len() >= 7, "orders go on at night: {}", all.len());
}

#[test]
fn the_symbol_limit_counts_keys_over_all_services() {
    let mut s = MarketSimulator::new(
        SimConfig {
            symbol_limit: Some(3),
            ..SimConfig::default()
        },
        START,
    );
    subscribe(&mut s, "LEVELONE_EQUITIES", "SUBS", &["AAPL", "MSFT"], 3);
    subscribe(&mut s, "LEVELONE_FUTURES", "ADD", &["/ES"], 3);
    let e = s.apply_command("CHART_FUTURES", "SUBS", &["/NQ".to_string()], &[0, 1]);
    assert_eq!(
        e,
        Err(SimError::SymbolLimit {
            limit: 3,
            requested: 4
        })
    );
    assert_eq!(s.subscribed_keys(), 3);
    subscribe(&mut s, "LEVELONE_EQUITIES", "SUBS", &["AAPL"], 3);
    subscribe(&mut s, "CHART_FUTURES", "SUBS", &["/NQ"], 6);
    s.set_symbol_limit(None);
    subscribe(
        &mut s,
        "LEVELONE_FOREX",
        "SUBS",
        &["EUR/USD", "USD/JPY"],
        29,
    );
    assert_eq!(s.subscribed_keys(), 5);
}

#[test]
fn every_new_service_is_deterministic() {
    let run = || {
        let mut s = sim(21);
        subscribe(&mut s, "LEVELONE_FUTURES", "SUBS", &["/ES", "/NQ"], 40);
        subscribe(
            &mut s,
            "LEVELONE_FUTURES_OPTIONS",
            "SUBS",
            &["./OZCZ27C565"],
            31,
        );
        subscribe(
            &mut s,
            "LEVELONE_FOREX",
            "SUBS",
            &["EUR/USD", "USD/JPY"],
            29,
        );
        subscribe(&mut s, "CHART_FUTURES", "SUBS", &["/ES", "/NQ"], 6);
        subscribe(&mut s, "NASDAQ_BOOK", "SUBS", &["AAPL"], 3);
        subscribe(&mut s, "SCREENER_EQUITY", "SUBS", &["NASDAQ_VOLUME_5"], 4);
        subscribe(
            &mut s,
            "SCREENER_OPTION",
            "SUBS",
            &["OPTION_CALL_VOLUME_5"],
            4,
        );
        subscribe(&mut s, "ACCT_ACTIVITY", "SUBS", &["Account Activity"], 3);
        s.advance_to(START + 90_000)
    };
    let frames = run();
    assert_eq!(frames, run());
    let services: std::collections::BTreeSet<String> =
        items(&frames).into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(services.len(), 8, "{services:?}");
}
