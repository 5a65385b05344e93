//! Indicator values against references computed here, plainly, from the formulas with TA-Lib's
//! conventions (SMA-seeded EMA; Wilder RSI seeded with simple averages; MACD with both EMAs
//! seeded on windows ending at bar `slow - 1` and an SMA-seeded signal; Bollinger Bands with
//! the population standard deviation; session VWAP of typical prices). Nothing here calls the
//! code under test to get an expected value.
//!
//! Tolerance: 1e-9 relative (for values below 1e-3 in size, e.g. a MACD histogram crossing
//! zero, 1e-12 absolute: the two sides round differently, TA-Lib uses fused multiply-adds).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use chrono_tz::America::New_York;

use super::bars::{Bar, BarAggregate, BarBuilder, session_of, session_start_ms};
use super::*;

const BAR_MS: i64 = 60_000;

/// One generated row: event time, seq, merged last price and cumulative day volume.
#[derive(Debug, Clone, Copy)]
struct Tick {
    ts: i64,
    seq: i32,
    price: Option<f64>,
    volume: Option<i64>,
}

fn ny_day(ms: i64) -> chrono::NaiveDate {
    Utc.timestamp_millis_opt(ms)
        .single()
        .expect("time")
        .with_timezone(&New_York)
        .date_naive()
}

/// 2025-03-10 20:00 New York (EDT, 00:00 UTC): the series crosses New York midnight.
fn series_start_ms() -> i64 {
    New_York
        .with_ymd_and_hms(2025, 3, 10, 20, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis()
}

/// A fixed random walk over `intervals` one-minute intervals: 1–4 rows per interval, about
/// one interval in 20 without any row, two price-less rows at the start (before the first
/// trade), cumulative volume that restarts at New York midnight and is sometimes missing.
fn series(seed: u64, intervals: usize) -> Vec<Tick> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let start = series_start_ms();
    let mut ticks = vec![
        Tick {
            ts: start,
            seq: 0,
            price: None,
            volume: Some(900_000),
        },
        Tick {
            ts: start + 5,
            seq: 0,
            price: None,
            volume: None,
        },
    ];
    let mut price = 100.0;
    let mut volume: i64 = 1_000_000;
    let mut day = ny_day(start);
    for i in 0..intervals {
        if rng.u32(0..20) == 0 {
            continue;
        }
        let bar_start = start + i as i64 * BAR_MS;
        let mut offsets: Vec<i64> = (0..rng.usize(1..=4)).map(|_| rng.i64(0..BAR_MS)).collect();
        offsets.sort_unstable();
        for (j, off) in offsets.iter().enumerate() {
            let ts = bar_start + off;
            if ny_day(ts) != day {
                day = ny_day(ts);
                volume = rng.i64(0..1000);
            }
            // Sometimes a flat price, so RSI and the bands see zero changes.
            if rng.u32(0..6) != 0 {
                price += (rng.f64() - 0.5) * 0.4;
            }
            volume += rng.i64(0..5000);
            let seq = if j > 0 && offsets[j - 1] == *off {
                ticks.last().map_or(0, |t| t.seq + 1)
            } else {
                0
            };
            ticks.push(Tick {
                ts,
                seq,
                price: Some(price),
                volume: (rng.u32(0..15) != 0).then_some(volume),
            });
        }
    }
    ticks
}

/// A bar of the reference, rebuilt from ticks with the documented rules.
#[derive(Debug, Clone, Copy)]
struct RefBar {
    bucket: i64,
    day: chrono::NaiveDate,
    high: f64,
    low: f64,
    close: f64,
    first_volume: Option<i64>,
    last_volume: Option<i64>,
}

/// Reference bar volume: latest cumulative volume minus the previous bar's latest of the same
/// day (the bar's own first one for a day's first bar); never negative.
fn ref_volume(bar: &RefBar, previous_of_day: Option<i64>) -> f64 {
    match (bar.last_volume, previous_of_day.or(bar.first_volume)) {
        (Some(last), Some(from)) => (last - from).max(0) as f64,
        _ => 0.0,
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn ref_sma(x: &[f64], n: usize) -> Option<f64> {
    (x.len() >= n).then(|| mean(&x[x.len() - n..]))
}

/// EMA seeded with the mean of the first `n` values, at index `n - 1`.
fn ref_ema_series(x: &[f64], n: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; x.len()];
    if x.len() < n {
        return out;
    }
    let k = 2.0 / (n as f64 + 1.0);
    let mut e = mean(&x[..n]);
    out[n - 1] = Some(e);
    for i in n..x.len() {
        e = k * x[i] + (1.0 - k) * e;
        out[i] = Some(e);
    }
    out
}

fn ref_ema(x: &[f64], n: usize) -> Option<f64> {
    ref_ema_series(x, n).last().copied().flatten()
}

/// Wilder: averages of the first `n` gains/losses, then `avg = (avg × (n − 1) + new) / n`;
/// RSI = 100 − 100 / (1 + gain/loss), 50 when nothing moved.
fn ref_rsi(x: &[f64], n: usize) -> Option<f64> {
    if x.len() < n + 1 {
        return None;
    }
    let (mut gain, mut loss) = (0.0, 0.0);
    for i in 1..=n {
        let d = x[i] - x[i - 1];
        gain += d.max(0.0);
        loss += (-d).max(0.0);
    }
    gain /= n as f64;
    loss /= n as f64;
    for i in n + 1..x.len() {
        let d = x[i] - x[i - 1];
        gain = (gain * (n as f64 - 1.0) + d.max(0.0)) / n as f64;
        loss = (loss * (n as f64 - 1.0) + (-d).max(0.0)) / n as f64;
    }
    Some(if loss == 0.0 {
        if gain == 0.0 { 50.0 } else { 100.0 }
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    })
}

/// TA-Lib MACD: slow EMA seeded on bars `0..slow`, fast EMA seeded on bars `slow-fast..slow`
/// (both at bar `slow - 1`), line = fast − slow from there, signal = EMA of the line seeded
/// with the mean of its first `signal` values.
fn ref_macd(x: &[f64], fast: usize, slow: usize, signal: usize) -> Option<(f64, f64, f64)> {
    if x.len() < slow + signal - 1 {
        return None;
    }
    let slow_ema = ref_ema_series(x, slow);
    let kf = 2.0 / (fast as f64 + 1.0);
    let mut fast_ema = mean(&x[slow - fast..slow]);
    let mut line = vec![fast_ema - slow_ema[slow - 1]?];
    for i in slow..x.len() {
        fast_ema = kf * x[i] + (1.0 - kf) * fast_ema;
        line.push(fast_ema - slow_ema[i]?);
    }
    let sig = ref_ema(&line, signal)?;
    let m = *line.last()?;
    Some((m, sig, m - sig))
}

/// SMA middle band ± k × population standard deviation of the last `n` closes.
fn ref_bbands(x: &[f64], n: usize, k: f64) -> Option<(f64, f64, f64)> {
    if x.len() < n {
        return None;
    }
    let w = &x[x.len() - n..];
    let m = mean(w);
    let sd = (w.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt();
    Some((m + k * sd, m, m - k * sd))
}

/// Σ(typical price × volume) / Σ volume over (high, low, close, volume) bars.
fn ref_vwap(bars: &[(f64, f64, f64, f64)]) -> Option<f64> {
    let volume: f64 = bars.iter().map(|b| b.3).sum();
    (volume > 0.0).then(|| {
        bars.iter()
            .map(|(h, l, c, v)| (h + l + c) / 3.0 * v)
            .sum::<f64>()
            / volume
    })
}

/// Expected values at every tick: bars rebuilt from the ticks in order, and each tick's
/// values computed as if its bar closed at that tick.
fn reference(ticks: &[Tick], s: &IndicatorSettings) -> Vec<IndicatorValues> {
    let mut closed: Vec<RefBar> = Vec::new();
    let mut open: Option<RefBar> = None;
    let mut out = Vec::with_capacity(ticks.len());
    let mut last = IndicatorValues::default();
    for t in ticks {
        let Some(price) = t.price else {
            out.push(last);
            continue;
        };
        let bucket = t.ts.div_euclid(BAR_MS);
        match &mut open {
            Some(b) if b.bucket == bucket => {
                b.high = b.high.max(price);
                b.low = b.low.min(price);
                b.close = price;
                if t.volume.is_some() {
                    b.first_volume = b.first_volume.or(t.volume);
                    b.last_volume = t.volume;
                }
            }
            _ => {
                closed.extend(open.take());
                open = Some(RefBar {
                    bucket,
                    day: ny_day(bucket * BAR_MS),
                    high: price,
                    low: price,
                    close: price,
                    first_volume: t.volume,
                    last_volume: t.volume,
                });
            }
        }
        let bar = open.expect("open");
        let mut closes: Vec<f64> = closed.iter().map(|b| b.close).collect();
        closes.push(bar.close);
        // VWAP: this bar's day, with volumes measured bar to bar within the day.
        let mut day_bars = Vec::new();
        let mut previous: Option<i64> = None;
        for b in closed.iter().chain(std::iter::once(&bar)) {
            if b.day != bar.day {
                continue;
            }
            day_bars.push((b.high, b.low, b.close, ref_volume(b, previous)));
            previous = b.last_volume.or(previous);
        }
        let n = |p: u32| p as usize;
        let macd = ref_macd(&closes, n(s.macd_fast), n(s.macd_slow), n(s.macd_signal));
        let bb = ref_bbands(&closes, n(s.bb_period), s.bb_stddev);
        last = IndicatorValues {
            sma: ref_sma(&closes, n(s.sma_period)),
            ema_fast: ref_ema(&closes, n(s.ema_fast_period)),
            ema_slow: ref_ema(&closes, n(s.ema_slow_period)),
            rsi: ref_rsi(&closes, n(s.rsi_period)),
            macd: macd.map(|m| m.0),
            macd_signal: macd.map(|m| m.1),
            macd_hist: macd.map(|m| m.2),
            bb_upper: bb.map(|b| b.0),
            bb_middle: bb.map(|b| b.1),
            bb_lower: bb.map(|b| b.2),
            vwap: ref_vwap(&day_bars),
        };
        out.push(last);
    }
    out
}

fn run_engine(ticks: &[Tick], s: &IndicatorSettings) -> Vec<IndicatorValues> {
    let mut engine = IndicatorEngine::new(*s).expect("valid periods");
    let sym: Arc<str> = Arc::from("TEST");
    ticks
        .iter()
        .map(|t| engine.on_tick(&sym, (t.ts, t.seq), t.price, t.volume))
        .collect()
}

/// Asserts `ours` and `expected` agree column by column: both NULL, or within tolerance.
fn assert_matches(ours: &[IndicatorValues], expected: &[IndicatorValues]) -> [usize; 11] {
    assert_eq!(ours.len(), expected.len());
    let mut valued = [0usize; 11];
    for (i, (o, e)) in ours.iter().zip(expected).enumerate() {
        for (c, (a, b)) in o.to_array().into_iter().zip(e.to_array()).enumerate() {
            let name = IndicatorValues::COLUMNS[c];
            match (a, b) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    let tol = 1e-9 * a.abs().max(b.abs()).max(1e-3);
                    assert!(
                        (a - b).abs() <= tol,
                        "row {i} {name}: ours {a} reference {b} (diff {:e})",
                        (a - b).abs()
                    );
                    valued[c] += 1;
                }
                _ => panic!("row {i} {name}: ours {a:?} reference {b:?} (NULL mismatch)"),
            }
        }
    }
    valued
}

#[test]
fn every_row_matches_the_reference_formulas_with_default_periods() {
    let ticks = series(7, 420);
    let s = IndicatorSettings::default();
    let bars = {
        let mut b: Vec<i64> = ticks
            .iter()
            .filter(|t| t.price.is_some())
            .map(|t| t.ts.div_euclid(BAR_MS))
            .collect();
        b.dedup();
        b.len()
    };
    assert!(bars >= 300, "the series has {bars} bars");
    let ours = run_engine(&ticks, &s);
    let expected = reference(&ticks, &s);
    let valued = assert_matches(&ours, &expected);
    // Every column was compared on most rows (not a test that passes on NULLs).
    for (c, n) in valued.iter().enumerate() {
        assert!(
            *n > ticks.len() * 3 / 4,
            "{} had a value on only {n} of {} rows",
            IndicatorValues::COLUMNS[c],
            ticks.len()
        );
    }
}

#[test]
fn every_row_matches_the_reference_formulas_with_other_periods() {
    let ticks = series(11, 330);
    let s = IndicatorSettings {
        sma_period: 5,
        ema_fast_period: 3,
        ema_slow_period: 50,
        rsi_period: 2,
        macd_fast: 5,
        macd_slow: 13,
        macd_signal: 1,
        bb_period: 7,
        bb_stddev: 1.5,
        ..IndicatorSettings::default()
    };
    assert_matches(&run_engine(&ticks, &s), &reference(&ticks, &s));
}

#[test]
fn values_are_null_exactly_until_each_warm_up_and_provisional_on_the_first_value_bar() {
    let s = IndicatorSettings::default();
    let warm = s.warm_up_bars();
    let mut engine = IndicatorEngine::new(s).expect("valid");
    let sym: Arc<str> = Arc::from("W");
    let start = series_start_ms();
    for bar in 1..=warm.longest() + 1 {
        // Two rows per bar: the first value appears on the warm-up bar's first row already.
        for k in 0..2 {
            let ts = start + (bar as i64 - 1) * BAR_MS + k * 1000;
            let v = engine.on_tick(
                &sym,
                (ts, 0),
                Some(100.0 + (bar % 7) as f64),
                Some(bar as i64 * 10 + k),
            );
            let has = |n: usize| bar >= n;
            assert_eq!(v.sma.is_some(), has(warm.sma), "sma on bar {bar}");
            assert_eq!(
                v.ema_fast.is_some(),
                has(warm.ema_fast),
                "ema_fast on bar {bar}"
            );
            assert_eq!(
                v.ema_slow.is_some(),
                has(warm.ema_slow),
                "ema_slow on bar {bar}"
            );
            assert_eq!(v.rsi.is_some(), has(warm.rsi), "rsi on bar {bar}");
            assert_eq!(v.macd.is_some(), has(warm.macd), "macd on bar {bar}");
            assert_eq!(
                v.macd_signal.is_some(),
                has(warm.macd),
                "macd_signal on bar {bar}"
            );
            assert_eq!(v.bb_upper.is_some(), has(warm.bbands), "bb on bar {bar}");
            // The first bar's volume is measured from its own first row, so the first
            // row of the session has no volume yet; the second has.
            assert_eq!(
                v.vwap.is_some(),
                bar > 1 || k > 0,
                "vwap on bar {bar} row {k}"
            );
        }
    }
    assert_eq!(
        (
            warm.sma,
            warm.ema_fast,
            warm.ema_slow,
            warm.rsi,
            warm.macd,
            warm.bbands
        ),
        (20, 9, 21, 15, 34, 20)
    );
}

#[test]
fn warm_up_lengths_are_talib_lookbacks_plus_one() {
    for s in [
        IndicatorSettings::default(),
        IndicatorSettings {
            sma_period: 3,
            ema_fast_period: 2,
            ema_slow_period: 100,
            rsi_period: 30,
            macd_fast: 3,
            macd_slow: 40,
            macd_signal: 1,
            bb_period: 2,
            ..IndicatorSettings::default()
        },
    ] {
        let set = IndicatorSet::new(&s).expect("valid");
        let w = s.warm_up_bars();
        let lookbacks = set.lookbacks().map(|l| l + 1);
        assert_eq!(
            lookbacks,
            [w.sma, w.ema_fast, w.ema_slow, w.rsi, w.macd, w.bbands]
        );
    }
}

/// The closed bars of a series, as the engine would build them.
fn bars_of(ticks: &[Tick]) -> Vec<Bar> {
    let mut builder = BarBuilder::new(BAR_MS);
    let mut bars: Vec<Bar> = ticks
        .iter()
        .filter_map(|t| builder.on_tick((t.ts, t.seq), t.price, t.volume))
        .collect();
    bars.extend(builder.open_bar());
    bars
}

#[test]
fn provisional_values_leave_the_committed_state_alone() {
    let s = IndicatorSettings::default();
    let bars = bars_of(&series(3, 200));
    let mut quiet = IndicatorSet::new(&s).expect("valid");
    let mut busy = IndicatorSet::new(&s).expect("valid");
    let mut rng = fastrand::Rng::with_seed(5);
    for bar in &bars {
        for _ in 0..3 {
            let noise = Bar {
                close: bar.close + rng.f64() - 0.5,
                high: bar.high + rng.f64(),
                volume: bar.volume * rng.f64(),
                ..*bar
            };
            busy.values(&noise);
        }
        let (a, b) = (quiet.values(bar), busy.values(bar));
        let bits = |v: IndicatorValues| v.to_array().map(|x| x.map(f64::to_bits));
        assert_eq!(bits(a), bits(b), "bar at {}", bar.start_ms);
        quiet.commit(bar);
        busy.commit(bar);
    }
    assert_eq!(quiet.closed_bars(), bars.len() as u64);
}

/// Aggregates of the ticks' bars, built the way the database query builds them.
fn aggregates_of(ticks: &[Tick]) -> Vec<BarAggregate> {
    let mut out: Vec<BarAggregate> = Vec::new();
    for t in ticks {
        let Some(p) = t.price else { continue };
        let bucket = t.ts.div_euclid(BAR_MS);
        match out.last_mut() {
            Some(a) if a.bucket == bucket => a.add_tick((t.ts, t.seq), p, t.volume),
            _ => out.push(BarAggregate::from_tick(bucket, (t.ts, t.seq), p, t.volume)),
        }
    }
    out
}

#[test]
fn restored_bars_continue_exactly_like_an_uninterrupted_engine() {
    let ticks = series(13, 300);
    let s = IndicatorSettings::default();
    let uninterrupted = run_engine(&ticks, &s);
    let sym: Arc<str> = Arc::from("TEST");
    // Stop mid-bar (next row in the same bar) and at a bar boundary.
    for split in [ticks.len() / 2, ticks.len() / 2 + 1, ticks.len() - 40] {
        let mut restarted = IndicatorEngine::new(s).expect("valid");
        restarted.restore("TEST", &aggregates_of(&ticks[..split]));
        for (i, t) in ticks.iter().enumerate().skip(split) {
            let v = restarted.on_tick(&sym, (t.ts, t.seq), t.price, t.volume);
            assert_eq!(
                v.to_array().map(|x| x.map(f64::to_bits)),
                uninterrupted[i].to_array().map(|x| x.map(f64::to_bits)),
                "row {i} after a restart at {split}"
            );
        }
    }
}

fn tick(ts: i64, price: f64, volume: i64) -> (TickKeyT, Option<f64>, Option<i64>) {
    ((ts, 0), Some(price), Some(volume))
}

type TickKeyT = super::bars::TickKey;

#[test]
fn bars_align_to_bar_seconds_and_close_on_the_first_row_of_a_later_bar() {
    let mut b = BarBuilder::new(BAR_MS);
    let t0 = 1_741_651_200_000; // 2025-03-11 00:00:00 UTC, a minute boundary
    let (k, p, v) = tick(t0 + 59_999, 10.0, 100);
    assert_eq!(b.on_tick(k, p, v), None);
    let open = b.open_bar().expect("open");
    assert_eq!(open.start_ms, t0);
    let (k, p, v) = tick(t0 + 60_000, 11.0, 150);
    let closed = b.on_tick(k, p, v).expect("closed");
    assert_eq!((closed.start_ms, closed.close), (t0, 10.0));
    assert_eq!(b.open_bar().expect("open").start_ms, t0 + 60_000);
    // An empty interval makes no bar: the next bar simply starts later.
    let (k, p, v) = tick(t0 + 185_000, 12.0, 170);
    let closed = b.on_tick(k, p, v).expect("closed");
    assert_eq!(closed.start_ms, t0 + 60_000);
    assert_eq!(b.open_bar().expect("open").start_ms, t0 + 180_000);
}

#[test]
fn late_rows_price_less_rows_and_out_of_order_rows() {
    let mut b = BarBuilder::new(BAR_MS);
    let t0 = 1_741_651_200_000;
    assert_eq!(b.on_tick((t0, 0), None, Some(5)), None);
    assert!(b.open_bar().is_none(), "no bar before the first price");
    b.on_tick((t0 + 10_000, 0), Some(10.0), Some(100));
    b.on_tick((t0 + 30_000, 0), Some(12.0), Some(130));
    // Earlier within the bar: counts for high/low, but the close stays the latest row's.
    b.on_tick((t0 + 20_000, 0), Some(9.0), Some(90));
    let open = b.open_bar().expect("open");
    assert_eq!((open.high, open.low, open.close), (12.0, 9.0, 12.0));
    assert_eq!(open.volume, 30.0, "130 (latest row) - 100 (earliest row)");
    b.on_tick((t0 + 61_000, 0), Some(13.0), Some(140));
    // A row of the closed bar changes nothing.
    assert_eq!(b.on_tick((t0 + 50_000, 0), Some(1.0), Some(999)), None);
    let open = b.open_bar().expect("open");
    assert_eq!((open.low, open.close, open.volume), (13.0, 13.0, 10.0));
    // A non-finite price is no price.
    assert_eq!(b.on_tick((t0 + 62_000, 0), Some(f64::NAN), Some(150)), None);
    assert_eq!(b.open_bar().expect("open").volume, 10.0);
}

#[test]
fn volume_restarts_at_new_york_midnight_and_a_drop_counts_as_zero() {
    let mut b = BarBuilder::new(BAR_MS);
    // 2025-03-09 is the DST change day: midnight of 03-10 is 04:00 UTC (EDT).
    let midnight = New_York
        .with_ymd_and_hms(2025, 3, 10, 0, 0, 0)
        .single()
        .expect("time")
        .timestamp_millis();
    b.on_tick((midnight - 120_000, 0), Some(10.0), Some(5_000_000));
    b.on_tick((midnight - 60_000, 0), Some(10.0), Some(5_000_300));
    assert_eq!(b.open_bar().expect("open").volume, 300.0);
    b.on_tick((midnight + 1_000, 0), Some(10.0), Some(40));
    let open = b.open_bar().expect("open");
    assert_eq!(
        open.volume, 0.0,
        "a new day's first bar measures from its first row"
    );
    assert_eq!(open.session, session_of(midnight));
    assert_eq!(open.session, session_of(midnight - 1) + 1);
    b.on_tick((midnight + 2_000, 0), Some(10.0), Some(70));
    assert_eq!(b.open_bar().expect("open").volume, 30.0);
    b.on_tick((midnight + 61_000, 0), Some(10.0), Some(50));
    assert_eq!(
        b.open_bar().expect("open").volume,
        0.0,
        "a drop is 0, not negative"
    );
    assert_eq!(session_start_ms(session_of(midnight + 61_000)), midnight);
    assert_eq!(
        session_start_ms(session_of(midnight - 1)),
        midnight - 23 * 3_600_000,
        "2025-03-09, the day clocks moved forward, had 23 hours"
    );
}

#[test]
fn vwap_is_null_until_volume_and_restarts_each_session() {
    let s = IndicatorSettings::default();
    let mut set = IndicatorSet::new(&s).expect("valid");
    let bar = |session: i32, close: f64, volume: f64| Bar {
        start_ms: 0,
        session,
        high: close + 1.0,
        low: close - 1.0,
        close,
        volume,
    };
    assert_eq!(set.values(&bar(1, 10.0, 0.0)).vwap, None);
    set.commit(&bar(1, 10.0, 0.0));
    assert_eq!(set.values(&bar(1, 20.0, 100.0)).vwap, Some(20.0));
    set.commit(&bar(1, 20.0, 100.0));
    assert_eq!(set.values(&bar(1, 40.0, 100.0)).vwap, Some(30.0));
    set.commit(&bar(1, 40.0, 100.0));
    assert_eq!(set.values(&bar(2, 7.0, 0.0)).vwap, None, "new session");
    assert_eq!(set.values(&bar(2, 7.0, 10.0)).vwap, Some(7.0));
}

#[test]
fn a_flat_series_gives_rsi_50_and_zero_width_bands() {
    let s = IndicatorSettings::default();
    let mut set = IndicatorSet::new(&s).expect("valid");
    let bar = Bar {
        start_ms: 0,
        session: 1,
        high: 5.0,
        low: 5.0,
        close: 5.0,
        volume: 1.0,
    };
    for _ in 0..50 {
        set.commit(&bar);
    }
    let v = set.values(&bar);
    assert_eq!(v.rsi, Some(50.0));
    assert_eq!(
        (v.bb_upper, v.bb_middle, v.bb_lower),
        (Some(5.0), Some(5.0), Some(5.0))
    );
    assert_eq!((v.macd, v.macd_hist), (Some(0.0), Some(0.0)));
}
