//! `GET /marketdata/v1/pricehistory` (schwab-services.md §8): the candles of an equity the
//! simulated market traded, the same values CHART_EQUITY streamed (or would have streamed while
//! no client was connected: the market keeps trading the last session's symbols). Bearer token
//! as for `userPreference`; 400 with a message for a bad parameter; an unknown symbol (never
//! traded, an option, a futures key) answers `"empty": true` with no candles, as Schwab does for
//! symbols without history. `datetime` is the candle's start (ms), as CHART_EQUITY field 7.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveTime};
use serde_json::json;

use super::auth::{refuse_unless_bearer, throttled};
use super::stream::now_ms;
use super::{Shared, lock};
use crate::market_time::{DAY_MS, eastern_date, eastern_instant_ms, is_regular_hours};

/// One candle: start ms, open, high, low, close, volume.
type Candle = crate::HistoryCandle;

/// The aggregation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frequency {
    /// N candles of `candle_ms` (N one-minute candles on Schwab).
    Minutes(i64),
    Daily,
    Weekly,
    Monthly,
}

/// What a valid request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    symbol: String,
    from_ms: i64,
    to_ms: i64,
    frequency: Frequency,
    extended_hours: bool,
    previous_close: bool,
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

/// Schwab's market-data error body with `status`.
fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(json!({"errors": [{
            "status": status.as_u16(),
            "title": status.canonical_reason().unwrap_or("Error"),
            "detail": message
        }]})),
    )
        .into_response()
}

/// `GET /marketdata/v1/pricehistory?symbol=…&frequencyType=minute&frequency=1&startDate=…`.
pub(super) async fn price_history(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (throttle, fail) = {
        let mut s = lock(&shared.switches);
        s.pricehistory_calls += 1;
        let take = s.throttle_pricehistory > 0;
        s.throttle_pricehistory = s.throttle_pricehistory.saturating_sub(1);
        let fail = !take && s.fail_pricehistory > 0;
        if fail {
            s.fail_pricehistory -= 1;
        }
        (take, fail)
    };
    if throttle || shared.take_throttle() {
        return throttled();
    }
    if fail {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error".into(),
        );
    }
    if let Some(refused) = refuse_unless_bearer(&shared, &headers) {
        return refused;
    }
    let now = now_ms();
    let request = match parse(&q, now) {
        Ok(r) => r,
        Err(message) => return bad_request(message),
    };
    let (candles, previous) = {
        let logged_in = lock(&shared.conns).logged_in.is_some();
        let mut market = lock(&shared.market);
        if !logged_in {
            // Nobody streams: the market is brought up to now here (its frames have no reader).
            market.advance_to(now);
        }
        let candle_ms = market.candle_ms();
        let all = market.candle_history(&request.symbol, i64::MIN, i64::MAX);
        (
            all.as_deref()
                .map(|all| select(all, &request, candle_ms))
                .unwrap_or_default(),
            all.as_deref().and_then(|all| {
                all.iter()
                    .rev()
                    .find(|c| c.0 < request.from_ms)
                    .map(|c| (c.0, c.4))
            }),
        )
    };
    let mut body = json!({
        "symbol": request.symbol,
        "empty": candles.is_empty(),
        "candles": candles
            .iter()
            .map(|&(datetime, open, high, low, close, volume)| json!({
                "open": open, "high": high, "low": low, "close": close,
                "volume": volume, "datetime": datetime
            }))
            .collect::<Vec<_>>(),
    });
    if request.previous_close
        && let Some((at, close)) = previous
    {
        body["previousClose"] = json!(close);
        body["previousCloseDate"] = json!(at);
    }
    axum::Json(body).into_response()
}

/// The candles of the window, filtered and aggregated.
fn select(all: &[Candle], r: &Request, candle_ms: i64) -> Vec<Candle> {
    let in_window = all
        .iter()
        .copied()
        .filter(|c| (r.from_ms..=r.to_ms).contains(&c.0))
        .filter(|c| r.extended_hours || is_regular_hours(c.0));
    let bucket = |start: i64| -> i64 {
        match r.frequency {
            Frequency::Minutes(n) => start.div_euclid(n * candle_ms) * n * candle_ms,
            Frequency::Daily => day_start(start),
            Frequency::Weekly => {
                let date = eastern_date(start);
                let monday =
                    date - chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
                eastern_instant_ms(monday, NaiveTime::MIN)
            }
            Frequency::Monthly => {
                let date = eastern_date(start);
                eastern_instant_ms(date.with_day(1).unwrap_or(date), NaiveTime::MIN)
            }
        }
    };
    let mut out: BTreeMap<i64, Candle> = BTreeMap::new();
    for c in in_window {
        let key = bucket(c.0);
        out.entry(key)
            .and_modify(|b| {
                b.2 = b.2.max(c.2);
                b.3 = b.3.min(c.3);
                b.4 = c.4;
                b.5 += c.5;
            })
            .or_insert((key, c.1, c.2, c.3, c.4, c.5));
    }
    out.into_values().collect()
}

/// Midnight New York time of the day of `ms`.
fn day_start(ms: i64) -> i64 {
    eastern_instant_ms(eastern_date(ms), NaiveTime::MIN)
}

fn int(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, String> {
    q.get(name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("{name} must be an integer, got {v:?}"))
        })
        .transpose()
}

fn flag(q: &HashMap<String, String>, name: &str, default: bool) -> Result<bool, String> {
    match q.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(format!("{name} must be true or false, got {v:?}")),
    }
}

/// Checks the parameters as Schwab does (§8) and works out the window.
fn parse(q: &HashMap<String, String>, now: i64) -> Result<Request, String> {
    let symbol = q
        .get("symbol")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or("symbol is required")?;
    let period_type = q.get("periodType").map(String::as_str).unwrap_or("day");
    let (periods, default_period, frequency_types): (&[i64], i64, &[&str]) = match period_type {
        "day" => (&[1, 2, 3, 4, 5, 10], 10, &["minute"]),
        "month" => (&[1, 2, 3, 6], 1, &["daily", "weekly"]),
        "year" => (
            &[1, 2, 3, 5, 10, 15, 20],
            1,
            &["daily", "weekly", "monthly"],
        ),
        "ytd" => (&[1], 1, &["daily", "weekly", "monthly"]),
        other => {
            return Err(format!(
                "periodType must be day, month, year or ytd, got {other:?}"
            ));
        }
    };
    let period = int(q, "period")?.unwrap_or(default_period);
    if !periods.contains(&period) {
        return Err(format!(
            "period {period} is not valid with periodType {period_type} (valid: {periods:?})"
        ));
    }
    let frequency_type = q
        .get("frequencyType")
        .map(String::as_str)
        .unwrap_or(frequency_types[0]);
    if !frequency_types.contains(&frequency_type) {
        return Err(format!(
            "frequencyType {frequency_type:?} is not valid with periodType {period_type} (valid: {frequency_types:?})"
        ));
    }
    let frequency = int(q, "frequency")?.unwrap_or(1);
    let frequency = match frequency_type {
        "minute" if [1, 5, 10, 15, 30].contains(&frequency) => Frequency::Minutes(frequency),
        "minute" => {
            return Err(format!(
                "frequency {frequency} is not valid with frequencyType minute (valid: 1, 5, 10, 15, 30)"
            ));
        }
        _ if frequency != 1 => {
            return Err(format!(
                "frequency {frequency} is not valid with frequencyType {frequency_type} (valid: 1)"
            ));
        }
        "daily" => Frequency::Daily,
        "weekly" => Frequency::Weekly,
        _ => Frequency::Monthly,
    };
    let end = int(q, "endDate")?;
    let start = int(q, "startDate")?;
    if end.is_some_and(|e| e < 0) || start.is_some_and(|s| s < 0) {
        return Err("startDate and endDate are milliseconds since the epoch".into());
    }
    let to_ms = end.unwrap_or(now);
    let from_ms = match start {
        Some(s) => s,
        None => {
            let days = match period_type {
                "day" => period,
                "month" => period * 31,
                "ytd" => i64::from(eastern_date(to_ms).ordinal()),
                _ => period * 366,
            };
            to_ms - days * DAY_MS
        }
    };
    if from_ms > to_ms {
        return Err(format!("startDate ({from_ms}) is after endDate ({to_ms})"));
    }
    Ok(Request {
        symbol,
        from_ms,
        to_ms,
        frequency,
        extended_hours: flag(q, "needExtendedHoursData", true)?,
        previous_close: flag(q, "needPreviousClose", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parameters_are_checked_like_schwab() {
        let ok = parse(
            &q(&[
                ("symbol", "AAPL"),
                ("frequencyType", "minute"),
                ("frequency", "1"),
                ("startDate", "1000"),
                ("endDate", "5000"),
            ]),
            10_000,
        )
        .expect("valid");
        assert_eq!((ok.from_ms, ok.to_ms), (1000, 5000));
        assert_eq!(ok.frequency, Frequency::Minutes(1));
        assert!(ok.extended_hours);
        let day = parse(&q(&[("symbol", "AAPL"), ("period", "2")]), 3 * DAY_MS).expect("valid");
        assert_eq!((day.from_ms, day.to_ms), (DAY_MS, 3 * DAY_MS));
        for bad in [
            q(&[]),
            q(&[("symbol", "AAPL"), ("periodType", "week")]),
            q(&[("symbol", "AAPL"), ("period", "7")]),
            q(&[("symbol", "AAPL"), ("frequency", "2")]),
            q(&[("symbol", "AAPL"), ("frequencyType", "daily")]),
            q(&[("symbol", "AAPL"), ("startDate", "x")]),
            q(&[("symbol", "AAPL"), ("startDate", "9"), ("endDate", "8")]),
            q(&[("symbol", "AAPL"), ("needExtendedHoursData", "yes")]),
        ] {
            assert!(parse(&bad, 10_000).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn candles_are_filtered_and_aggregated() {
        let all: Vec<Candle> = (0..10)
            .map(|i| {
                (
                    i * 60_000,
                    10.0 + i as f64,
                    20.0,
                    5.0 - i as f64,
                    11.0 + i as f64,
                    1,
                )
            })
            .collect();
        let r = Request {
            symbol: "AAPL".into(),
            from_ms: 60_000,
            to_ms: 360_000,
            frequency: Frequency::Minutes(1),
            extended_hours: true,
            previous_close: false,
        };
        assert_eq!(select(&all, &r, 60_000), all[1..=6].to_vec());
        let five = Request {
            frequency: Frequency::Minutes(5),
            ..r
        };
        let got = select(&all, &five, 60_000);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], (0, 11.0, 20.0, 1.0, 15.0, 4));
        assert_eq!(got[1], (300_000, 15.0, 20.0, -1.0, 17.0, 2));
    }
}
