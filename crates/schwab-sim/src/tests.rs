//! Behaviour tests of [`MarketSimulator`] through its public API, checking the wire text.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::market_time::{chart_day, chart_sequence};
use super::{MarketSimulator, SimConfig, SimError};

/// 2025-12-09 14:00:00 EST, a minute boundary.
const START: i64 = 1_765_306_800_000;

fn config(seed: u64, rate: f64) -> SimConfig {
    SimConfig {
        seed,
        updates_per_symbol_per_sec: rate,
        ..SimConfig::default()
    }
}

fn keys(symbols: &[&str]) -> Vec<String> {
    symbols.iter().map(|s| s.to_string()).collect()
}

fn fields(max: u32) -> Vec<u32> {
    (0..=max).collect()
}

fn subscribe(
    sim: &mut MarketSimulator,
    service: &str,
    command: &str,
    symbols: &[&str],
    field_list: &[u32],
) {
    if let Err(e) = sim.apply_command(service, command, &keys(symbols), field_list) {
        panic!("{command} {service} {symbols:?} refused: {e}");
    }
}

fn parse(frame: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Object(map)) => map,
        other => panic!("frame is not a JSON object: {frame} ({other:?})"),
    }
}

/// One content item with its frame's service and timestamp.
#[derive(Debug, Clone)]
struct Item {
    service: String,
    timestamp: i64,
    fields: Map<String, Value>,
}

impl Item {
    fn key(&self) -> &str {
        self.fields
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    fn num(&self, field: &str) -> Option<f64> {
        self.fields.get(field).and_then(Value::as_f64)
    }
}

/// Items of all data frames, checking the envelope shape on the way.
fn items(frames: &[String]) -> Vec<Item> {
    let mut out = Vec::new();
    for frame in frames {
        let map = parse(frame);
        let Some(data) = map.get("data") else {
            continue;
        };
        assert_eq!(map.len(), 1, "{frame}");
        let Some([entry]) = data.as_array().map(Vec::as_slice) else {
            panic!("data is not a one-element array: {frame}");
        };
        let Some(entry) = entry.as_object() else {
            panic!("data entry is not an object: {frame}");
        };
        let mut names: Vec<&str> = entry.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["command", "content", "service", "timestamp"],
            "{frame}"
        );
        assert_eq!(entry.get("command"), Some(&Value::from("SUBS")));
        let service = entry
            .get("service")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(timestamp) = entry.get("timestamp").and_then(Value::as_i64) else {
            panic!("timestamp is not an integer: {frame}");
        };
        let Some(content) = entry.get("content").and_then(Value::as_array) else {
            panic!("content is not an array: {frame}");
        };
        assert!(!content.is_empty(), "empty content: {frame}");
        let mut seen = std::collections::BTreeSet::new();
        for item in content {
            let Some(fields) = item.as_object() else {
                panic!("content item is not an object: {frame}");
            };
            let item = Item {
                service: service.clone(),
                timestamp,
                fields: fields.clone(),
            };
            assert!(!item.key().is_empty(), "item without key: {frame}");
            assert!(
                seen.insert(item.key().to_string()),
                "symbol twice in one frame: {frame}"
            );
            out.push(item);
        }
    }
    out
}

fn of<'a>(all: &'a [Item], service: &str, key: &str) -> Vec<&'a Item> {
    all.iter()
        .filter(|i| i.service == service && i.key() == key)
        .collect()
}

const HEADER_KEYS: [&str; 4] = ["delayed", "assetMainType", "assetSubType", "cusip"];

#[test]
fn level_one_equities_start_with_a_snapshot_then_send_only_changes() {
    let mut sim = MarketSimulator::new(config(7, 1.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL", "SPY"],
        &fields(51),
    );
    let all = items(&sim.advance_to(START + 120_000));
    for (symbol, main, sub, cusip) in [
        ("AAPL", "EQUITY", "COE", "037833100"),
        ("SPY", "ETF", "ETF", "78462F103"),
    ] {
        let list = of(&all, "LEVELONE_EQUITIES", symbol);
        assert!(list.len() > 60, "{symbol}: only {} items", list.len());
        let first = list[0];
        assert_eq!(
            first.timestamp,
            START + 100,
            "snapshot comes in the first slot"
        );
        assert_eq!(first.fields.get("delayed"), Some(&Value::Bool(false)));
        assert_eq!(first.fields.get("assetMainType"), Some(&Value::from(main)));
        assert_eq!(first.fields.get("assetSubType"), Some(&Value::from(sub)));
        assert_eq!(first.fields.get("cusip"), Some(&Value::from(cusip)));
        for f in 1..=51 {
            assert!(
                first.fields.contains_key(&f.to_string()),
                "{symbol} snapshot lacks field {f}"
            );
        }
        assert!(!first.fields.contains_key("0"));
        assert!(first.num("1") < first.num("2"), "bid < ask");
        assert_eq!(first.fields.get("32"), Some(&Value::from("Normal")));

        let mut merged = first.fields.clone();
        for item in &list[1..] {
            for (name, value) in &item.fields {
                if name == "key" {
                    continue;
                }
                assert!(!HEADER_KEYS.contains(&name.as_str()), "{name} in a delta");
                let field: u32 = name
                    .parse()
                    .unwrap_or_else(|_| panic!("non-numeric key {name}"));
                assert!((1..=51).contains(&field));
                assert!(!value.is_null(), "null in a delta");
                let before = merged.get(name).and_then(Value::as_f64);
                if let (Some(a), Some(b)) = (before, value.as_f64()) {
                    assert_ne!(a, b, "field {name} sent unchanged");
                } else {
                    assert_ne!(merged.get(name), Some(value), "field {name} sent unchanged");
                }
                merged.insert(name.clone(), value.clone());
            }
            for static_field in ["12", "13", "14", "15", "17", "21", "22", "23", "25", "32"] {
                assert!(
                    !item.fields.contains_key(static_field),
                    "static field {static_field} in a delta"
                );
            }
            let (bid, ask) = (
                merged.get("1").and_then(Value::as_f64),
                merged.get("2").and_then(Value::as_f64),
            );
            assert!(bid < ask);
        }
    }
}

#[test]
fn unsubscribed_fields_never_appear() {
    let mut sim = MarketSimulator::new(config(3, 2.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["MSFT", "NVDA", "ZZTOP"],
        &[8, 3, 0, 2, 1],
    );
    let all = items(&sim.advance_to(START + 60_000));
    assert!(all.len() > 300);
    let allowed = [
        "key",
        "delayed",
        "assetMainType",
        "assetSubType",
        "cusip",
        "1",
        "2",
        "3",
        "8",
    ];
    for item in &all {
        for name in item.fields.keys() {
            assert!(allowed.contains(&name.as_str()), "unexpected field {name}");
        }
    }
}

#[test]
fn all_frames_have_the_wire_shape_and_come_in_time_order() {
    let mut sim = MarketSimulator::new(config(11, 3.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL", "QQQ", "$SPX"],
        &fields(51),
    );
    subscribe(
        &mut sim,
        "LEVELONE_OPTIONS",
        "SUBS",
        &["AAPL  251219C00230000", "SPXW  251219P06500000"],
        &fields(55),
    );
    subscribe(&mut sim, "CHART_EQUITY", "SUBS", &["AAPL"], &fields(8));
    let frames = sim.advance_to(START + 180_000);
    let mut last = START;
    let mut heartbeats = 0;
    for frame in &frames {
        let map = parse(frame);
        let timestamp = if let Some(notify) = map.get("notify") {
            assert_eq!(map.len(), 1);
            let beat = notify
                .get(0)
                .and_then(|n| n.get("heartbeat"))
                .and_then(Value::as_str);
            let Some(ms) = beat.and_then(|b| b.parse::<i64>().ok()) else {
                panic!("heartbeat value is not a string of digits: {frame}");
            };
            heartbeats += 1;
            ms
        } else {
            items(std::slice::from_ref(frame))[0].timestamp
        };
        assert!(timestamp >= last && timestamp <= START + 180_000, "{frame}");
        last = timestamp;
    }
    assert_eq!(heartbeats, 18);
    let all = items(&frames);
    for service in ["LEVELONE_EQUITIES", "LEVELONE_OPTIONS", "CHART_EQUITY"] {
        let count = all.iter().filter(|i| i.service == service).count() as u64;
        assert!(count > 0, "{service}");
        assert_eq!(sim.items_emitted(service), count, "{service}");
    }
    assert_eq!(sim.items_emitted("NASDAQ_BOOK"), 0);
}

/// Trades seen through LEVELONE deltas: (timestamp, price, size).
fn trades_from_level_one(list: &[&Item]) -> Vec<(i64, f64, i64)> {
    let mut merged = Map::new();
    let mut trades = Vec::new();
    for (n, item) in list.iter().enumerate() {
        let before = merged.get("8").and_then(Value::as_f64);
        merged.extend(item.fields.clone());
        let after = merged.get("8").and_then(Value::as_f64);
        if n > 0
            && let (Some(b), Some(a), Some(price)) =
                (before, after, merged.get("3").and_then(Value::as_f64))
            && a > b
        {
            trades.push((item.timestamp, price, (a - b) as i64));
        }
    }
    trades
}

#[test]
fn chart_candles_agree_with_the_trades_of_their_minute_in_the_real_field_order() {
    let mut sim = MarketSimulator::new(config(5, 2.0), START);
    subscribe(&mut sim, "CHART_EQUITY", "SUBS", &["MSFT"], &fields(8));
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["MSFT"],
        &fields(51),
    );
    let frames = sim.advance_to(START + 10 * 60_000 + 1);
    let all = items(&frames);
    let trades = trades_from_level_one(&of(&all, "LEVELONE_EQUITIES", "MSFT"));
    let mut by_minute: BTreeMap<i64, Vec<(f64, i64)>> = BTreeMap::new();
    for (t, price, size) in trades {
        by_minute
            .entry(t.div_euclid(60_000) * 60_000)
            .or_default()
            .push((price, size));
    }
    let candles = of(&all, "CHART_EQUITY", "MSFT");
    assert_eq!(candles.len(), 10);
    assert_eq!(candles.len(), by_minute.len());
    for (n, candle) in candles.iter().enumerate() {
        let start = candle.num("7").unwrap_or_default() as i64;
        assert_eq!(
            candle.timestamp,
            start + 60_000,
            "sent when the minute completes"
        );
        assert_eq!(
            candle.fields.get("seq").and_then(Value::as_u64),
            Some(n as u64)
        );
        let minute = &by_minute[&start];
        let volume: i64 = minute.iter().map(|(_, size)| size).sum();
        let high = minute.iter().map(|(p, _)| *p).fold(f64::MIN, f64::max);
        let low = minute.iter().map(|(p, _)| *p).fold(f64::MAX, f64::min);
        assert_eq!(candle.num("2"), Some(minute[0].0), "open");
        assert_eq!(candle.num("3"), Some(high), "high");
        assert_eq!(candle.num("4"), Some(low), "low");
        assert_eq!(candle.num("5"), Some(minute[minute.len() - 1].0), "close");
        assert_eq!(candle.num("6"), Some(volume as f64), "volume");
        assert_eq!(candle.num("1"), Some(chart_sequence(start) as f64));
        assert_eq!(candle.num("8"), Some(chart_day(start) as f64));
    }
    assert_eq!(candles[0].num("1"), Some(420.0), "14:00 EST is minute 420");
    assert_eq!(candles[0].num("8"), Some(20_431.0), "2025-12-09");
    let mut float_volumes = 0;
    for frame in frames.iter().filter(|f| f.contains("CHART_EQUITY")) {
        let body = &frame[frame.find("\"content\":[").unwrap_or(0)..];
        let order: Vec<usize> = [
            "\"seq\":", "\"key\":", "\"1\":", "\"2\":", "\"3\":", "\"4\":", "\"5\":", "\"6\":",
            "\"7\":", "\"8\":",
        ]
        .iter()
        .map(|k| {
            body.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {frame}"))
        })
        .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "wrong key order: {frame}"
        );
        let volume = &body[order[7]..order[8]];
        float_volumes += usize::from(volume.contains('.'));
    }
    assert!(
        float_volumes > 0 && float_volumes < 10,
        "volume should be a float sometimes: {float_volumes}"
    );
}

#[test]
fn a_chart_subscription_first_sends_the_latest_completed_candle() {
    let mut sim = MarketSimulator::new(config(2, 1.0), START);
    subscribe(&mut sim, "LEVELONE_EQUITIES", "SUBS", &["AAPL"], &[0, 3, 8]);
    let before = sim.advance_to(START + 150_000);
    assert!(
        items(&before)
            .iter()
            .all(|i| i.service == "LEVELONE_EQUITIES")
    );
    subscribe(&mut sim, "CHART_EQUITY", "ADD", &["AAPL"], &fields(8));
    let first = items(&sim.advance_to(START + 150_100));
    let charts: Vec<_> = first
        .iter()
        .filter(|i| i.service == "CHART_EQUITY")
        .collect();
    assert_eq!(charts.len(), 1);
    assert_eq!(charts[0].timestamp, START + 150_100);
    assert_eq!(charts[0].num("7"), Some((START + 60_000) as f64));
    let next = items(&sim.advance_to(START + 180_000));
    let charts: Vec<_> = next
        .iter()
        .filter(|i| i.service == "CHART_EQUITY")
        .collect();
    assert_eq!(charts.len(), 1);
    assert_eq!(charts[0].num("7"), Some((START + 120_000) as f64));
    assert_eq!(charts[0].fields.get("seq").and_then(Value::as_u64), Some(1));
}

#[test]
fn chart_minute_index_and_day_match_the_spec_in_edt_and_est() {
    for (candle_start, sequence, day) in [
        (1_715_903_940_000, 779, 19_859),
        (1_765_307_100_000, 425, 20_431),
    ] {
        let mut sim = MarketSimulator::new(config(1, 1.0), candle_start - 1);
        subscribe(&mut sim, "CHART_EQUITY", "SUBS", &["MSFT"], &fields(8));
        let all = items(&sim.advance_to(candle_start + 60_000));
        let candle = all.iter().find(|i| i.num("7") == Some(candle_start as f64));
        let Some(candle) = candle else {
            panic!("no candle for {candle_start}: {all:?}");
        };
        assert_eq!(candle.num("1"), Some(f64::from(sequence)));
        assert_eq!(candle.num("8"), Some(f64::from(day)));
    }
}

#[test]
fn heartbeats_follow_the_configured_interval() {
    let mut sim = MarketSimulator::new(SimConfig::default(), START);
    let frames = sim.advance_to(START + 35_000);
    let expected: Vec<String> = [10_000, 20_000, 30_000]
        .iter()
        .map(|d| MarketSimulator::heartbeat_frame(START + d))
        .collect();
    assert_eq!(frames, expected);
    assert_eq!(
        expected[0],
        format!("{{\"notify\":[{{\"heartbeat\":\"{}\"}}]}}", START + 10_000)
    );
    let mut later = Vec::new();
    for step in 1..=50 {
        later.extend(sim.advance_to(START + 35_000 + step * 1_000));
    }
    assert_eq!(later.len(), 5);
    assert!(
        sim.advance_to(START).is_empty(),
        "going back in time emits nothing"
    );
    let mut silent = MarketSimulator::new(
        SimConfig {
            heartbeat_interval_ms: 0,
            ..SimConfig::default()
        },
        START,
    );
    assert!(silent.advance_to(START + 100_000).is_empty());
    assert_eq!(silent.next_due_ms(), None);
}

fn scenario(seed: u64, steps: &[i64]) -> Vec<String> {
    let mut sim = MarketSimulator::new(config(seed, 4.0), START);
    let mut frames = Vec::new();
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL", "MSFT", "XYZW"],
        &fields(51),
    );
    subscribe(&mut sim, "CHART_EQUITY", "SUBS", &["AAPL"], &fields(8));
    for (n, &t) in steps.iter().enumerate() {
        frames.extend(sim.advance_to(t));
        match n {
            3 => subscribe(
                &mut sim,
                "LEVELONE_OPTIONS",
                "ADD",
                &["TSLA  260116P00300000"],
                &fields(55),
            ),
            5 => subscribe(&mut sim, "LEVELONE_EQUITIES", "VIEW", &[], &[0, 1, 2, 3, 8]),
            7 => subscribe(&mut sim, "LEVELONE_EQUITIES", "UNSUBS", &["MSFT"], &[]),
            _ => {}
        }
    }
    frames
}

#[test]
fn the_same_seed_gives_the_same_frames() {
    let steps: Vec<i64> = (1..=12).map(|n| START + n * 17_321).collect();
    let a = scenario(42, &steps);
    assert!(a.len() > 500);
    assert_eq!(a, scenario(42, &steps));
    assert_ne!(a, scenario(43, &steps));
    // how time is cut into advance_to calls does not matter
    let mut coarse = MarketSimulator::new(config(9, 5.0), START);
    let mut fine = MarketSimulator::new(config(9, 5.0), START);
    for sim in [&mut coarse, &mut fine] {
        subscribe(
            sim,
            "LEVELONE_EQUITIES",
            "SUBS",
            &["NVDA", "AMD"],
            &fields(51),
        );
        subscribe(sim, "CHART_EQUITY", "SUBS", &["NVDA"], &fields(8));
    }
    let whole = coarse.advance_to(START + 200_000);
    let pieces: Vec<String> = (1..=2000)
        .flat_map(|n| fine.advance_to(START + n * 100))
        .collect();
    assert_eq!(whole, pieces);
}

#[test]
fn option_symbols_are_validated_and_a_refused_command_changes_nothing() {
    let mut sim = MarketSimulator::new(config(1, 1.0), START);
    for bad in [
        "AAPL 251219C00230000",
        "AAPL  251219X00230000",
        "AAPL  251340C00230000",
        "aapl  251219C00230000",
        "AAPL",
    ] {
        let result = sim.apply_command(
            "LEVELONE_OPTIONS",
            "SUBS",
            &keys(&["MSFT  251219C00400000", bad]),
            &[0, 1],
        );
        match result {
            Err(e @ SimError::InvalidOptionSymbol { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(bad) && message.contains("21 characters"),
                    "{message}"
                );
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
    assert!(sim.advance_to(START + 5_000).is_empty());
    assert_eq!(sim.last_price("MSFT"), None, "no instrument was created");
    assert!(
        sim.apply_command(
            "LEVELONE_OPTIONS",
            "SUBS",
            &keys(&["SPY   250421P00512000"]),
            &[0, 1]
        )
        .is_ok()
    );
}

#[test]
fn the_mean_update_rate_follows_the_configuration() {
    for (rate, symbols, seconds) in [(1.0, 20, 1_000), (20.0, 10, 100)] {
        let names: Vec<String> = (0..symbols).map(|n| format!("S{n:03}")).collect();
        let mut sim = MarketSimulator::new(config(8, rate), START);
        if let Err(e) = sim.apply_command("LEVELONE_EQUITIES", "SUBS", &names, &fields(51)) {
            panic!("{e}");
        }
        sim.advance_to(START + seconds * 1_000);
        let updates = sim.items_emitted("LEVELONE_EQUITIES") - symbols as u64;
        let expected = rate * (symbols * seconds) as f64;
        let ratio = updates as f64 / expected;
        assert!(
            (0.97..1.03).contains(&ratio),
            "rate {rate}: {updates} updates, expected {expected}"
        );
    }
}

#[test]
fn total_volume_never_decreases_and_sometimes_prints_as_a_float() {
    let mut sim = MarketSimulator::new(config(4, 5.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL", "TSLA", "SPY", "QWER"],
        &[0, 8, 9],
    );
    let frames = sim.advance_to(START + 300_000);
    let all = items(&frames);
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    for item in &all {
        if let Some(volume) = item.num("8") {
            assert_eq!(volume, volume.trunc());
            let previous = last.insert(item.key().to_string(), volume).unwrap_or(0.0);
            assert!(
                volume > previous,
                "{} volume went from {previous} to {volume}",
                item.key()
            );
        }
    }
    let floats = frames
        .iter()
        .filter(|f| f.contains(".0,") || f.contains(".0}"))
        .count();
    assert!(floats > 10, "only {floats} frames with a float volume");
}

#[test]
fn options_snapshot_then_track_their_underlying() {
    let mut sim = MarketSimulator::new(config(6, 2.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL"],
        &fields(51),
    );
    let contracts = [
        "AAPL  251219C00230000",
        "MSFT  260116P00400000",
        "SPXW  251212C06800000",
    ];
    subscribe(
        &mut sim,
        "LEVELONE_OPTIONS",
        "SUBS",
        &contracts,
        &fields(55),
    );
    let msft_start = sim.last_price("MSFT");
    assert!(
        msft_start.is_some(),
        "the root of an option gets its own walk"
    );
    let all = items(&sim.advance_to(START + 120_000));

    let call = of(&all, "LEVELONE_OPTIONS", contracts[0]);
    assert!(call.len() > 100);
    let first = call[0];
    assert_eq!(first.fields.get("delayed"), Some(&Value::Bool(false)));
    assert_eq!(
        first.fields.get("assetMainType"),
        Some(&Value::from("OPTION"))
    );
    assert_eq!(first.fields.get("cusip"), Some(&Value::from("")));
    assert!(!first.fields.contains_key("assetSubType"));
    for f in 1..=55 {
        assert!(
            first.fields.contains_key(&f.to_string()),
            "option snapshot lacks field {f}"
        );
    }
    let text = |f: &str| {
        first
            .fields
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(text("1"), "AAPL 12/19/2025 230.00 C");
    assert_eq!(
        (text("21"), text("22"), text("24"), text("49")),
        ("C".into(), "AAPL".into(), "100 AAPL".into(), "AAPL".into())
    );
    let nums: Vec<Option<f64>> = ["12", "23", "26", "27", "13", "20"]
        .iter()
        .map(|f| first.num(f))
        .collect();
    assert_eq!(nums, [2025.0, 12.0, 19.0, 10.0, 100.0, 230.0].map(Some));
    let delta = first.num("28").unwrap_or_default();
    assert!((0.3..0.75).contains(&delta), "delta {delta}");
    let iv = first.num("10").unwrap_or_default();
    assert!((10.0..80.0).contains(&iv), "volatility {iv} (percent)");
    assert!(first.num("30").unwrap_or_default() < 0.0, "theta");

    // field 35 follows the AAPL walk: it equals AAPL's mark as sent at that instant
    let mut aapl_mark = None;
    let mut checked = 0;
    for item in &all {
        if item.service == "LEVELONE_EQUITIES" && item.key() == "AAPL" {
            aapl_mark = item.num("33").or(aapl_mark);
        } else if item.key() == contracts[0] && !item.fields.contains_key("delayed") {
            assert!(!HEADER_KEYS.iter().any(|k| item.fields.contains_key(*k)));
            if let Some(underlying) = item.num("35") {
                assert_eq!(Some(underlying), aapl_mark);
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "{checked}");

    let put = of(&all, "LEVELONE_OPTIONS", contracts[1]);
    let underlying: Vec<f64> = put.iter().filter_map(|i| i.num("35")).collect();
    assert!(
        underlying.windows(2).any(|w| w[0] != w[1]),
        "MSFT walk moves"
    );
    assert_ne!(sim.last_price("MSFT"), msft_start);
    let index = of(&all, "LEVELONE_OPTIONS", contracts[2]);
    assert_eq!(index[0].fields.get("22"), Some(&Value::from("$SPX")));
    assert_eq!(index[0].fields.get("55"), Some(&Value::from("E")));
    let spx = index[0].num("35").unwrap_or_default();
    assert!((5_500.0..8_000.0).contains(&spx), "$SPX at {spx}");
}

#[test]
fn commands_are_checked_and_errors_say_what_is_allowed() {
    let mut sim = MarketSimulator::new(SimConfig::default(), START);
    let aapl = keys(&["AAPL"]);
    let cases: Vec<(Result<(), SimError>, &str)> = vec![
        (
            sim.apply_command("FOREX_BOOK", "SUBS", &aapl, &[0]),
            "LEVELONE_EQUITIES, LEVELONE_OPTIONS, LEVELONE_FUTURES",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "LOGIN", &aapl, &[0]),
            "SUBS, ADD, UNSUBS and VIEW",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "SUBS", &aapl, &[0, 52]),
            "0..=51",
        ),
        (
            sim.apply_command("CHART_EQUITY", "SUBS", &aapl, &[9]),
            "0..=8",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "SUBS", &aapl, &[]),
            "needs a field list",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "ADD", &aapl, &[]),
            "needs a field list",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "VIEW", &[], &[]),
            "needs a field list",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "ADD", &[], &[0]),
            "needs at least one key",
        ),
        (
            sim.apply_command("LEVELONE_EQUITIES", "SUBS", &keys(&["AA PL"]), &[0]),
            "whitespace",
        ),
        (
            sim.apply_command("CHART_EQUITY", "SUBS", &keys(&[""]), &[0]),
            "empty",
        ),
    ];
    for (result, expected) in cases {
        match result {
            Err(e) => assert!(
                e.to_string().contains(expected),
                "{e} should mention {expected}"
            ),
            Ok(()) => panic!("accepted; expected an error mentioning {expected}"),
        }
    }
    assert!(
        sim.apply_command("LEVELONE_EQUITIES", "SUBS", &[], &[])
            .is_ok(),
        "SUBS with nothing clears"
    );
    assert!(
        sim.apply_command("LEVELONE_EQUITIES", "UNSUBS", &keys(&["NEVER"]), &[])
            .is_ok()
    );
    assert_eq!(sim.last_price("NEVER"), None);
}

#[test]
fn unsubs_view_subs_and_add_change_what_is_sent() {
    let mut sim = MarketSimulator::new(config(12, 2.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL", "MSFT"],
        &[0, 1, 2, 3],
    );
    sim.advance_to(START + 10_000);
    subscribe(&mut sim, "LEVELONE_EQUITIES", "UNSUBS", &["MSFT"], &[]);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "VIEW",
        &[],
        &[0, 1, 2, 3, 8, 15],
    );
    let after_view = items(&sim.advance_to(START + 20_000));
    assert!(of(&after_view, "LEVELONE_EQUITIES", "MSFT").is_empty());
    let aapl = of(&after_view, "LEVELONE_EQUITIES", "AAPL");
    assert!(
        !aapl[0].fields.contains_key("delayed"),
        "VIEW does not resend a snapshot"
    );
    assert!(
        aapl[0].fields.contains_key("8") && aapl[0].fields.contains_key("15"),
        "new fields are sent: {:?}",
        aapl[0]
    );
    assert!(aapl[1..].iter().all(|i| !i.fields.contains_key("15")));

    subscribe(&mut sim, "LEVELONE_EQUITIES", "SUBS", &["MSFT"], &[0, 3]);
    let after_subs = items(&sim.advance_to(START + 30_000));
    assert!(of(&after_subs, "LEVELONE_EQUITIES", "AAPL").is_empty());
    let msft = of(&after_subs, "LEVELONE_EQUITIES", "MSFT");
    assert_eq!(
        msft[0].fields.get("assetMainType"),
        Some(&Value::from("EQUITY"))
    );
    assert!(msft[1..].iter().all(|i| !i.fields.contains_key("delayed")));

    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "ADD",
        &["AAPL", "MSFT"],
        &[0, 3],
    );
    let after_add = items(&sim.advance_to(START + 30_100));
    assert_eq!(after_add.len(), 2);
    assert!(
        after_add
            .iter()
            .all(|i| i.fields.contains_key("cusip") && i.fields.contains_key("3"))
    );
}

#[test]
fn with_updates_disabled_only_snapshots_and_heartbeats_are_sent() {
    let mut sim = MarketSimulator::new(config(1, 0.0), START);
    subscribe(
        &mut sim,
        "LEVELONE_EQUITIES",
        "SUBS",
        &["AAPL"],
        &fields(51),
    );
    let frames = sim.advance_to(START + 60_000);
    assert_eq!(items(&frames).len(), 1);
    assert_eq!(frames.len(), 1 + 6);
}

#[test]
fn the_simulator_can_move_between_threads() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<MarketSimulator>();
}
