//! Indicator columns in both databases: every column holds what the engine computed for its
//! row (distinct periods, so a swapped column would show), and warm start end to end.
//!
//! Warm start: a recorded session is replayed in one go into one database, and in
//! two parts (stopped mid-bar, mid-session) into another, with the second part warm-started
//! from what the first one wrote. Every row after the restart must carry the indicators the
//! uninterrupted run computed. On SQLite with the default settings (the whole history fits in
//! `WARM_START_BARS`, so equality is bit for bit); on PostgreSQL with 30-second bars, short
//! periods and more history than `WARM_START_BARS`, across New York midnight, so the window
//! search, the truncated EMA history and the session VWAP reload are exercised too.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use market_streamer::app;
use market_streamer::counters::PipelineStats;
use market_streamer::indicators::{IndicatorEngine, IndicatorValues};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::rows::Row;
use market_streamer::settings::Config;
use testkit::{config_for, start_postgres};

/// A recorded LEVELONE_EQUITIES frame: its event time and JSON text.
struct Frame {
    ts: i64,
    text: String,
}

/// Frames every 1–6 seconds for `seconds`, each with one or both symbols; every item carries
/// the last price (3) and cumulative day volume (8), as Schwab's first update after a
/// subscription does; some also bid/ask. Volume restarts at New York midnight.
fn frames(seed: u64, start_ms: i64, seconds: i64) -> Vec<Frame> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let symbols = ["AAPL", "MSFT"];
    let mut price = [230.0_f64, 520.0];
    let mut volume = [40_000_000_i64, 18_000_000];
    let day = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .expect("time")
            .with_timezone(&New_York)
            .date_naive()
    };
    let mut current_day = day(start_ms);
    let mut out = Vec::new();
    let mut t = start_ms;
    while t < start_ms + seconds * 1000 {
        t += rng.i64(1000..6000) + rng.i64(0..1000);
        if day(t) != current_day {
            current_day = day(t);
            volume = [rng.i64(0..500), rng.i64(0..500)];
        }
        let mut items = Vec::new();
        for (i, sym) in symbols.iter().enumerate() {
            if rng.u32(0..3) == 0 {
                continue;
            }
            price[i] = ((price[i] + (rng.f64() - 0.5) * 0.3) * 100.0).round() / 100.0;
            volume[i] += rng.i64(0..3000);
            let quote = if rng.bool() {
                format!(r#","1":{},"2":{}"#, price[i] - 0.01, price[i] + 0.01)
            } else {
                String::new()
            };
            items.push(format!(
                r#"{{"key":"{sym}","3":{},"8":{}{quote}}}"#,
                price[i], volume[i]
            ));
        }
        if items.is_empty() {
            continue;
        }
        out.push(Frame {
            ts: t,
            text: format!(
                r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":{t},"command":"SUBS","content":[{}]}}]}}"#,
                items.join(",")
            ),
        });
    }
    out
}

fn write_jsonl(dir: &Path, name: &str, frames: &[Frame]) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).expect("create");
    for frame in frames {
        writeln!(f, "{}", frame.text).expect("write");
    }
    path
}

/// The split: the first frame at least 7 s after `at_ms`, so the restart falls mid-bar.
fn split_at(frames: &[Frame], at_ms: i64) -> usize {
    frames
        .iter()
        .position(|f| f.ts >= at_ms + 7_000)
        .expect("split inside the series")
}

/// Replays `frames` into `cfg`'s database: uninterrupted, or stopped before `split` and
/// started again (with warm start) for the rest.
async fn replay(cfg: &Config, dir: &Path, name: &str, frames: &[Frame], split: Option<usize>) {
    let parts: Vec<&[Frame]> = match split {
        None => vec![frames],
        Some(k) => vec![&frames[..k], &frames[k..]],
    };
    for (i, part) in parts.into_iter().enumerate() {
        let path = write_jsonl(dir, &format!("{name}-{i}.jsonl"), part);
        let summary = app::replay(cfg, &path).await.expect("replay");
        assert_eq!(summary.writer.rows_dropped, 0);
    }
}

/// An `equity_data` row's key and indicator columns.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    key: (String, i64, i32),
    values: [Option<f64>; 11],
}

fn columns() -> String {
    IndicatorValues::COLUMNS.join(", ")
}

async fn sqlite_rows(url: &str, from_ms: i64) -> Vec<Stored> {
    sqlite_rows_of(url, "equity_data", "ticker", from_ms).await
}

/// The key and indicator columns of `table` (key column `key`) from `from_ms` on.
async fn sqlite_rows_of(url: &str, table: &str, key: &str, from_ms: i64) -> Vec<Stored> {
    let pool = sqlx::SqlitePool::connect(url).await.expect("open");
    let since = market_streamer::db::sqlite::sqlite_time(
        DateTime::from_timestamp_millis(from_ms).expect("time"),
    );
    let sql = format!(
        r#"SELECT {key}, "timestamp", seq, {} FROM {table} WHERE "timestamp" >= ? ORDER BY {key}, "timestamp", seq"#,
        columns()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(since)
        .fetch_all(&pool)
        .await
        .expect("rows");
    pool.close().await;
    rows.iter()
        .map(|r| {
            use sqlx::Row;
            let ts: String = r.get(1);
            Stored {
                key: (
                    r.get(0),
                    DateTime::parse_from_rfc3339(&ts)
                        .expect("time")
                        .timestamp_millis(),
                    r.get(2),
                ),
                values: std::array::from_fn(|i| r.get::<Option<f64>, _>(i + 3)),
            }
        })
        .collect()
}

async fn postgres_rows(url: &str, from_ms: i64) -> Vec<Stored> {
    postgres_rows_of(url, "equity_data", "ticker", from_ms).await
}

/// [`sqlite_rows_of`] on PostgreSQL.
async fn postgres_rows_of(url: &str, table: &str, key: &str, from_ms: i64) -> Vec<Stored> {
    let client = testkit::pg_client(url).await.expect("connect");
    let sql = format!(
        r#"SELECT {key}, "timestamp", seq, {} FROM {table} WHERE "timestamp" >= $1 ORDER BY {key}, "timestamp", seq"#,
        columns()
    );
    let since = DateTime::<Utc>::from_timestamp_millis(from_ms).expect("time");
    let rows = client.query(&sql, &[&since]).await.expect("rows");
    rows.iter()
        .map(|r| {
            let ts: DateTime<Utc> = r.get(1);
            Stored {
                key: (r.get(0), ts.timestamp_millis(), r.get(2)),
                values: std::array::from_fn(|i| r.get::<_, Option<f64>>(i + 3)),
            }
        })
        .collect()
}

/// Every row after the restart equals the uninterrupted run's, within `rel` (0 = bit for bit).
fn assert_same(restarted: &[Stored], uninterrupted: &[Stored], rel: f64) {
    assert_eq!(
        restarted.len(),
        uninterrupted.len(),
        "same rows after the restart"
    );
    assert!(!restarted.is_empty());
    for (r, u) in restarted.iter().zip(uninterrupted) {
        assert_eq!(r.key, u.key);
        for (c, (a, b)) in r.values.iter().zip(&u.values).enumerate() {
            let name = IndicatorValues::COLUMNS[c];
            match (a, b) {
                (Some(a), Some(b)) => assert!(
                    (a - b).abs() <= rel * a.abs().max(b.abs()),
                    "{:?} {name}: restarted {a} uninterrupted {b}",
                    r.key
                ),
                _ => assert_eq!(a, b, "{:?} {name}", r.key),
            }
        }
    }
}

/// The first row of each symbol after the restart, with every indicator present.
fn first_rows_have_every_value(rows: &[Stored]) {
    first_rows_of_have_every_value(rows, &["AAPL", "MSFT"]);
}

fn first_rows_of_have_every_value(rows: &[Stored], symbols: &[&str]) {
    for sym in symbols {
        let first = rows.iter().find(|r| r.key.0 == *sym).expect("a row");
        assert!(
            first.values.iter().all(Option::is_some),
            "{sym}: {:?}",
            first.values
        );
    }
}

#[tokio::test]
async fn restart_on_sqlite_continues_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 14:00–16:30 New York: 150 one-minute bars, fewer than WARM_START_BARS (1400).
    let start = New_York
        .with_ymd_and_hms(2025, 8, 13, 14, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    let frames = frames(21, start, 150 * 60);
    let split = split_at(&frames, start + 100 * 60_000);
    let split_ms = frames[split].ts;
    let vars = [
        ("SYMBOLS", "AAPL,MSFT"),
        ("BATCH_SIZE", "500"),
        ("BATCH_INTERVAL", "0.05"),
    ];
    let [whole, restarted, cold] = three_runs(dir.path(), &vars, &frames, split).await;
    let expected = sqlite_rows(&whole, split_ms).await;
    let got = sqlite_rows(&restarted, split_ms).await;
    first_rows_have_every_value(&got);
    assert_same(&got, &expected, 0.0);
    // Without warm start the first rows after a restart are NULL: the test can fail.
    let cold_rows = sqlite_rows(&cold, split_ms).await;
    assert!(cold_rows[0].values[0].is_none(), "{:?}", cold_rows[0]);
}

/// Replays `frames` into three SQLite files: uninterrupted, restarted before `split` with
/// warm start, and restarted there with `WARM_START_BARS=0`; their URLs in that order.
async fn three_runs(
    dir: &Path,
    vars: &[(&str, &str)],
    frames: &[Frame],
    split: usize,
) -> [String; 3] {
    let mut cold_vars = vars.to_vec();
    cold_vars.push(("WARM_START_BARS", "0"));
    let runs = [
        ("uninterrupted", None, vars),
        ("restarted", Some(split), vars),
        ("cold", Some(split), &cold_vars[..]),
    ];
    let mut urls = Vec::new();
    for (name, split, vars) in runs {
        let url = format!("sqlite://{}", dir.join(format!("{name}.db")).display());
        replay(&config_for(&url, vars), dir, name, frames, split).await;
        urls.push(url);
    }
    match <[String; 3]>::try_from(urls) {
        Ok(urls) => urls,
        Err(_) => unreachable!("three runs"),
    }
}

/// The same series as LEVELONE_FUTURES frames of `/ES` and `/NQ` (same field numbers for the
/// last price and the day volume).
fn futures_frames(seed: u64, start_ms: i64, seconds: i64) -> Vec<Frame> {
    frames(seed, start_ms, seconds)
        .into_iter()
        .map(|f| Frame {
            ts: f.ts,
            text: f
                .text
                .replace("LEVELONE_EQUITIES", "LEVELONE_FUTURES")
                .replace(r#""key":"AAPL""#, r#""key":"/ES""#)
                .replace(r#""key":"MSFT""#, r#""key":"/NQ""#),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_restart_continues_bit_for_bit_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Sunday 18:00 New York, the futures week's opening: 150 one-minute bars.
    let start = New_York
        .with_ymd_and_hms(2025, 8, 17, 18, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    let frames = futures_frames(55, start, 150 * 60);
    let split = split_at(&frames, start + 100 * 60_000);
    let split_ms = frames[split].ts;
    let vars = [
        ("FUTURES_SYMBOLS", "/ES,/NQ"),
        ("BATCH_SIZE", "500"),
        ("BATCH_INTERVAL", "0.05"),
    ];
    let rows = async |url: &str| sqlite_rows_of(url, "futures_data", "symbol", split_ms).await;
    let [whole, restarted, cold] = three_runs(dir.path(), &vars, &frames, split).await;
    let expected = rows(&whole).await;
    let got = rows(&restarted).await;
    first_rows_of_have_every_value(&got, &["/ES", "/NQ"]);
    assert_same(&got, &expected, 0.0);
    // Without warm start the first futures rows after a restart are NULL: the test can fail.
    assert!(rows(&cold).await[0].values[0].is_none());

    // PostgreSQL's queries (the same rules, its own SQL) continue the same way.
    let pg = start_postgres();
    let pg_url = pg.create_database("futures_warm").expect("db");
    replay(
        &config_for(&pg_url, &vars),
        dir.path(),
        "pg",
        &frames,
        Some(split),
    )
    .await;
    let on_pg = postgres_rows_of(&pg_url, "futures_data", "symbol", split_ms).await;
    first_rows_of_have_every_value(&on_pg, &["/ES", "/NQ"]);
    assert_same(&on_pg, &expected, 1e-12);

    // The live run's list: the configured futures keys are loaded, equities untouched.
    use market_streamer::db::warm_start;
    use market_streamer::indicators::warm_start::WarmSymbols;
    let cfg = config_for(&restarted, &vars);
    let db = app::open_database(&cfg).await.expect("open");
    let settings = market_streamer::settings::indicators(&cfg);
    let only = vec!["/ES".to_string()];
    let warm = warm_start::load(
        &db,
        &settings,
        WarmSymbols::These {
            equities: &[],
            futures: &only,
        },
    )
    .await
    .expect("load");
    assert!(warm.symbols.is_empty());
    assert_eq!(warm.futures.len(), 1);
    assert_eq!(warm.futures[0].0, "/ES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_postgres_after_midnight_with_truncated_history() {
    let pg = start_postgres();
    let dir = tempfile::tempdir().expect("tempdir");
    // 22:00–05:00 New York on 30-second bars: 840 bars, midnight at bar 240; the restart at
    // 04:00 has 480 bars in its session, more than the 361 that WARM_START_BARS asks for.
    let start = New_York
        .with_ymd_and_hms(2025, 8, 13, 22, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    let frames = frames(34, start, 7 * 3600);
    let split = split_at(&frames, start + 6 * 3_600_000);
    let split_ms = frames[split].ts;
    let vars = [
        ("SYMBOLS", "AAPL,MSFT"),
        ("BATCH_SIZE", "2000"),
        ("BATCH_INTERVAL", "0.05"),
        ("BAR_SECONDS", "30"),
        ("SMA_PERIOD", "5"),
        ("EMA_FAST_PERIOD", "3"),
        ("EMA_SLOW_PERIOD", "8"),
        ("RSI_PERIOD", "6"),
        ("MACD_FAST", "3"),
        ("MACD_SLOW", "6"),
        ("MACD_SIGNAL", "3"),
        ("BB_PERIOD", "5"),
    ];
    let whole = pg.create_database("whole").expect("db");
    let cfg = config_for(&whole, &vars);
    assert_eq!(
        market_streamer::settings::indicators(&cfg).warm_start_bars,
        360,
        "40 x (6 + 3)"
    );
    replay(&cfg, dir.path(), "whole", &frames, None).await;
    let restarted = pg.create_database("restarted").expect("db");
    replay(
        &config_for(&restarted, &vars),
        dir.path(),
        "parts",
        &frames,
        Some(split),
    )
    .await;

    let expected = postgres_rows(&whole, split_ms).await;
    let got = postgres_rows(&restarted, split_ms).await;
    first_rows_have_every_value(&got);
    // EMA, RSI and MACD remember all history with geometrically shrinking weights; 360 bars
    // leave less than 1e-12 of it, and sums are accumulated over other spans.
    assert_same(&got, &expected, 1e-12);
}

/// Periods that make every column different from the others.
const DISTINCT_PERIODS: [(&str, &str); 12] = [
    ("SYMBOLS", "AAPL,MSFT"),
    ("BATCH_SIZE", "500"),
    ("BATCH_INTERVAL", "0.05"),
    ("SMA_PERIOD", "4"),
    ("EMA_FAST_PERIOD", "3"),
    ("EMA_SLOW_PERIOD", "6"),
    ("RSI_PERIOD", "5"),
    ("MACD_FAST", "3"),
    ("MACD_SLOW", "7"),
    ("MACD_SIGNAL", "2"),
    ("BB_PERIOD", "6"),
    ("BB_STDDEV", "1.5"),
];

/// What the engine computes for `frames`, in process, by row key.
fn computed(cfg: &Config, frames: &[Frame]) -> Vec<Stored> {
    let engine = IndicatorEngine::new(market_streamer::settings::indicators(cfg)).expect("valid");
    let mut processor = FrameProcessor::new(std::sync::Arc::new(PipelineStats::default()), engine);
    let mut rows = Vec::new();
    for f in frames {
        processor.process_text(&f.text, f.ts, &mut rows);
    }
    let mut out: Vec<Stored> = rows
        .into_iter()
        .filter_map(|r| match r {
            Row::Equity(e) => Some(Stored {
                key: (e.ticker.to_string(), e.timestamp.timestamp_millis(), e.seq),
                values: e.indicators.to_array(),
            }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn sixty_minutes() -> Vec<Frame> {
    let start = New_York
        .with_ymd_and_hms(2025, 8, 13, 10, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    frames(5, start, 60 * 60)
}

#[tokio::test]
async fn sqlite_columns_hold_the_computed_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("cols.db").display());
    let cfg = config_for(&url, &DISTINCT_PERIODS);
    let frames = sixty_minutes();
    replay(&cfg, dir.path(), "cols", &frames, None).await;
    let stored = sqlite_rows(&url, 0).await;
    assert_eq!(stored, computed(&cfg, &frames));
    assert!(
        stored
            .last()
            .expect("rows")
            .values
            .iter()
            .all(Option::is_some)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_columns_hold_the_computed_values() {
    let pg = start_postgres();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = pg.create_database("cols").expect("db");
    let cfg = config_for(&url, &DISTINCT_PERIODS);
    let frames = sixty_minutes();
    replay(&cfg, dir.path(), "cols", &frames, None).await;
    let stored = postgres_rows(&url, 0).await;
    assert_eq!(stored, computed(&cfg, &frames));
    assert!(
        stored
            .last()
            .expect("rows")
            .values
            .iter()
            .all(Option::is_some)
    );
}

#[tokio::test]
async fn warm_start_loads_the_asked_symbols_and_the_whole_latest_session() {
    use market_streamer::db::warm_start;
    use market_streamer::indicators::warm_start::WarmSymbols;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("warm.db").display());
    let cfg = config_for(&url, &DISTINCT_PERIODS);
    let frames = sixty_minutes();
    replay(&cfg, dir.path(), "warm", &frames, None).await;
    // The bars the data holds, per symbol: one per minute with a priced row.
    let minutes = |sym: &str| {
        let mut buckets: Vec<i64> = computed(&cfg, &frames)
            .iter()
            .filter(|r| r.key.0 == sym)
            .map(|r| r.key.1.div_euclid(60_000))
            .collect();
        buckets.dedup();
        buckets.len()
    };

    let db = app::open_database(&cfg).await.expect("open");
    let all = warm_start::load(
        &db,
        &market_streamer::settings::indicators(&cfg),
        WarmSymbols::AllInDatabase,
    )
    .await
    .expect("load");
    let names: Vec<&str> = all.symbols.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["AAPL", "MSFT"]);
    assert_eq!(
        all.symbols[0].1.len(),
        minutes("AAPL"),
        "fewer bars than WARM_START_BARS: all"
    );

    let only = ["MSFT".to_string(), "NVDA".to_string()];
    let some = warm_start::load(
        &db,
        &market_streamer::settings::indicators(&cfg),
        WarmSymbols::equities(&only),
    )
    .await
    .expect("load");
    assert_eq!(some.symbols.len(), 1, "NVDA has no rows");
    assert_eq!(some.symbols[0].0, "MSFT");

    // Ten bars asked, but the whole (one-hour) New York session is loaded for the VWAP.
    let mut few = market_streamer::settings::indicators(&cfg);
    few.warm_start_bars = 10;
    let session = warm_start::load(&db, &few, WarmSymbols::equities(&only))
        .await
        .expect("load");
    assert_eq!(session.symbols[0].1.len(), minutes("MSFT"));
    let none = warm_start::load(
        &db,
        &{
            let mut s = few;
            s.warm_start_bars = 0;
            s
        },
        WarmSymbols::AllInDatabase,
    )
    .await
    .expect("load");
    assert!(none.symbols.is_empty(), "WARM_START_BARS=0 loads nothing");
    db.close().await;
}

#[tokio::test]
async fn warm_start_reaches_back_over_an_overnight_gap() {
    use market_streamer::db::warm_start;
    use market_streamer::indicators::warm_start::WarmSymbols;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("gap.db").display());
    let mut vars = DISTINCT_PERIODS.to_vec();
    vars.push(("WARM_START_BARS", "30"));
    let cfg = config_for(&url, &vars);
    let at = |d: u32, h: u32| {
        New_York
            .with_ymd_and_hms(2025, 8, d, h, 0, 0)
            .single()
            .expect("time")
            .timestamp_millis()
    };
    // An hour on the 13th, then ten minutes on the 14th: the 14th's session alone holds too
    // few bars, so the look-back window doubles until it reaches the 13th.
    let mut frames = frames(8, at(13, 10), 3600);
    frames.extend(self::frames(9, at(14, 10), 600));
    replay(&cfg, dir.path(), "gap", &frames, None).await;

    let mut buckets: Vec<i64> = computed(&cfg, &frames)
        .iter()
        .filter(|r| r.key.0 == "AAPL")
        .map(|r| r.key.1.div_euclid(60_000))
        .collect();
    buckets.dedup();
    let db = app::open_database(&cfg).await.expect("open");
    let only = ["AAPL".to_string()];
    let warm = warm_start::load(
        &db,
        &market_streamer::settings::indicators(&cfg),
        WarmSymbols::equities(&only),
    )
    .await
    .expect("load");
    db.close().await;
    let loaded: Vec<i64> = warm.symbols[0].1.iter().map(|b| b.bucket).collect();
    assert_eq!(
        loaded,
        buckets[buckets.len() - 31..],
        "the latest 30 closed bars + the open one"
    );
    assert!(loaded[0] < at(14, 0) / 60_000, "reached back into the 13th");
}

/// Warm start takes the bars a gap cost from the candles the backfill refilled
/// (`equity_bars.backfilled`): high, low and close per missing bar, no volume; bars the quotes
/// give win, and streamed (not refilled) candles are not used.
#[tokio::test]
async fn warm_start_fills_a_gap_with_refilled_candles() {
    use market_streamer::db::warm_start;
    use market_streamer::indicators::warm_start::WarmSymbols;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("refill.db").display());
    let mut vars = DISTINCT_PERIODS.to_vec();
    vars.push(("WARM_START_BARS", "30"));
    let cfg = config_for(&url, &vars);
    let start = New_York
        .with_ymd_and_hms(2025, 8, 13, 10, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    // Quotes for minutes 0–19 and 30–39; minutes 20–29 are a gap.
    let mut frames = frames(11, start, 20 * 60);
    frames.extend(self::frames(12, start + 30 * 60_000, 10 * 60));
    replay(&cfg, dir.path(), "refill", &frames, None).await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let minute = |m: i64| {
        chrono::DateTime::<Utc>::from_timestamp_millis(start + m * 60_000)
            .expect("time")
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    };
    // Refilled candles for the gap (and one for a quoted minute, which must lose), plus a
    // streamed candle in the gap (not refilled: not used).
    for (m, close, backfilled) in [
        (21, 300.0, 1),
        (22, 301.0, 1),
        (25, 302.0, 1),
        (5, 999.0, 1),
        (23, 777.0, 0),
    ] {
        sqlx::query(
            "INSERT INTO equity_bars (ticker, bar_start, open, high, low, close, volume, backfilled) \
             VALUES ('AAPL', ?1, ?2, ?2 + 1, ?2 - 1, ?2, 100, ?3) \
             ON CONFLICT (ticker, bar_start) DO UPDATE SET close = excluded.close, high = excluded.high, low = excluded.low, backfilled = excluded.backfilled",
        )
        .bind(minute(m))
        .bind(close)
        .bind(backfilled)
        .execute(&pool)
        .await
        .expect("insert a candle");
    }
    pool.close().await;
    let db = app::open_database(&cfg).await.expect("open");
    let only = ["AAPL".to_string()];
    let warm = warm_start::load(
        &db,
        &market_streamer::settings::indicators(&cfg),
        WarmSymbols::equities(&only),
    )
    .await
    .expect("load");
    db.close().await;
    let bars = &warm.symbols[0].1;
    let bucket = |m: i64| (start + m * 60_000) / 60_000;
    let at = |m: i64| bars.iter().find(|b| b.bucket == bucket(m));
    for (m, close) in [(21, 300.0), (22, 301.0), (25, 302.0)] {
        let b = at(m).unwrap_or_else(|| panic!("minute {m} refilled: {bars:?}"));
        assert_eq!((b.close, b.high, b.low), (close, close + 1.0, close - 1.0));
        assert_eq!(b.last_volume, None, "no volume from a candle");
    }
    assert!(at(23).is_none(), "a streamed candle is not a refill");
    assert!(at(24).is_none(), "no candle, no bar");
    assert_ne!(at(5).map(|b| b.close), Some(999.0), "the quotes' bar wins");
    assert!(
        bars.windows(2).all(|w| w[0].bucket < w[1].bucket),
        "ordered by bucket"
    );
}
