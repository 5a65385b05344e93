//! One REST `pricehistory` call (schwab-services.md §8): one-minute candles of one symbol between
//! two instants, extended hours included, parsed into `equity_bars` rows. `datetime` is taken as
//! the candle's start minute, like CHART_EQUITY field 7 (the spec marks this unsure; the
//! simulator does the same).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::rows::{BarRow, time_from_ms};
use crate::schwab::Secret;
use crate::schwab::rest::{RestError, SchwabRest};

/// Why a call gave no candles.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    /// Network, timeout, or 429 past the client's retries: worth another try later.
    #[error("{0}")]
    Rest(#[from] RestError),
    /// 401: the access token was refused (a newer one may work).
    #[error("pricehistory {symbol}: 401 Unauthorized ({detail})")]
    Unauthorized { symbol: String, detail: String },
    /// 5xx: Schwab's side; worth another try later.
    #[error("pricehistory {symbol}: HTTP {status} ({detail})")]
    Server {
        symbol: String,
        status: u16,
        detail: String,
    },
    /// 4xx but 401/429, or an unreadable answer: another try would get the same.
    #[error("pricehistory {symbol}: {detail}")]
    Refused { symbol: String, detail: String },
}

impl FetchError {
    /// True when trying again later may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Rest(_) | Self::Server { .. } | Self::Unauthorized { .. }
        )
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    candles: Vec<WireCandle>,
}

#[derive(Deserialize)]
struct WireCandle {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    datetime: i64,
}

/// Parses a `pricehistory` body into rows of `symbol` (candles with a non-finite price or an
/// impossible time are left out).
pub fn parse(symbol: &str, body: &str) -> Result<Vec<BarRow>, String> {
    let answer: Answer =
        serde_json::from_str(body).map_err(|e| format!("unreadable answer: {e}"))?;
    let ticker: Arc<str> = Arc::from(symbol);
    Ok(answer
        .candles
        .into_iter()
        .filter(|c| {
            [c.open, c.high, c.low, c.close, c.volume]
                .iter()
                .all(|x| x.is_finite())
        })
        .filter_map(|c| {
            Some(BarRow {
                ticker: ticker.clone(),
                bar_start: time_from_ms(c.datetime)?,
                open: c.open,
                high: c.high,
                low: c.low,
                close: c.close,
                volume: c.volume.round() as i64,
                sequence: None,
                chart_day: None,
            })
        })
        .collect())
}

/// Fetches the one-minute candles of `symbol` whose start is in `[from, to]`.
pub async fn fetch(
    rest: &SchwabRest,
    token: &Secret,
    symbol: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<BarRow>, FetchError> {
    let url = rest.api_url("/marketdata/v1/pricehistory");
    let query = [
        ("symbol", symbol.to_string()),
        ("periodType", "day".into()),
        ("frequencyType", "minute".into()),
        ("frequency", "1".into()),
        ("startDate", from.timestamp_millis().to_string()),
        ("endDate", to.timestamp_millis().to_string()),
        ("needExtendedHoursData", "true".into()),
        ("needPreviousClose", "false".into()),
    ];
    let response = rest
        .send("GET /marketdata/v1/pricehistory", |http| {
            http.get(&url).query(&query).bearer_auth(token.expose())
        })
        .await?;
    let detail = || crate::schwab::secret::scrub(&response.excerpt(), &[token]);
    match response.status {
        200..=299 => parse(symbol, &response.body).map_err(|detail| FetchError::Refused {
            symbol: symbol.to_string(),
            detail,
        }),
        401 => Err(FetchError::Unauthorized {
            symbol: symbol.to_string(),
            detail: detail(),
        }),
        // An unknown symbol: nothing to refill.
        404 => Ok(Vec::new()),
        500..=599 => Err(FetchError::Server {
            symbol: symbol.to_string(),
            status: response.status,
            detail: detail(),
        }),
        status => Err(FetchError::Refused {
            symbol: symbol.to_string(),
            detail: format!("HTTP {status} ({})", detail()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candles_parse_as_start_minutes() {
        let body = r#"{"symbol":"AAPL","empty":false,"candles":[
            {"open":1.5,"high":2.0,"low":1.0,"close":1.75,"volume":1200,"datetime":1765300020000},
            {"open":1.5,"high":2.0,"low":1.0,"close":1.75,"volume":3.0,"datetime":1765300080000}]}"#;
        let rows = parse("AAPL", body).expect("parse");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].bar_start.timestamp_millis(), 1_765_300_020_000);
        assert_eq!((rows[0].close, rows[0].volume), (1.75, 1200));
        assert_eq!(rows[1].volume, 3);
        assert!(
            parse("AAPL", r#"{"symbol":"X","empty":true}"#)
                .expect("empty")
                .is_empty()
        );
        assert!(parse("AAPL", "<html>").is_err());
    }
}
