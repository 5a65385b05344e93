//! A watchlist row's key checked by its service's format: the same parsers as the settings
//! (`SYMBOLS`, `OPTION_SYMBOLS`, `FUTURES_SYMBOLS`, …), so a key the front end adds is held
//! to exactly the rules of `.env`.

use crate::schwab::wire::Service;
use streamer_config as symbols;

/// The key as the service subscribes it (upper-cased where the format says so), or why it
/// is not a key of `service` (shown to the front end in `watchlist.reason`).
pub fn key(service: Service, raw: &str) -> Result<String, String> {
    let parse: fn(&str) -> Result<Vec<String>, String> = match service {
        Service::LevelOneEquities
        | Service::ChartEquity
        | Service::NyseBook
        | Service::NasdaqBook => symbols::parse_symbols,
        Service::LevelOneOptions | Service::OptionsBook => symbols::parse_option_symbols,
        Service::LevelOneFutures | Service::ChartFutures => symbols::parse_futures_symbols,
        Service::LevelOneFuturesOptions => symbols::parse_futures_option_symbols,
        Service::LevelOneForex => symbols::parse_forex_symbols,
        Service::ScreenerEquity => symbols::parse_screener_equity_keys,
        Service::ScreenerOption => symbols::parse_screener_option_keys,
        Service::AcctActivity => {
            return Err(
                "ACCT_ACTIVITY is not a watchlist service (set ACCOUNT_ACTIVITY in .env)".into(),
            );
        }
    };
    if raw.contains(',') {
        return Err("one key per row (no commas)".into());
    }
    match parse(raw) {
        Ok(mut keys) if keys.len() == 1 => Ok(keys.remove(0)),
        Ok(_) => Err("empty".into()),
        Err(e) => Err(format!("{raw:?} {}", e.trim_start())),
    }
}

/// The watchlist service of a `service` column value (a wire name, any case).
pub fn service(raw: &str) -> Result<Service, String> {
    let upper = raw.trim().to_ascii_uppercase();
    match Service::from_wire(&upper) {
        Some(Service::AcctActivity) | None => Err(format!(
            "unknown service {raw:?}; allowed: {}",
            Service::ALL
                .iter()
                .filter(|s| **s != Service::AcctActivity)
                .map(|s| s.wire_name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(s) => Ok(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_their_service_format() {
        assert_eq!(key(Service::LevelOneEquities, "aapl"), Ok("AAPL".into()));
        assert_eq!(key(Service::LevelOneFutures, "/esz26"), Ok("/ESZ26".into()));
        assert_eq!(key(Service::LevelOneForex, "EUR/USD"), Ok("EUR/USD".into()));
        assert!(key(Service::LevelOneForex, "EURUSD").is_err());
        assert!(key(Service::LevelOneOptions, "AAPL").is_err());
        assert!(key(Service::LevelOneEquities, "AAPL,MSFT").is_err());
        assert!(key(Service::LevelOneEquities, "").is_err());
        assert!(key(Service::AcctActivity, "x").is_err());
        assert_eq!(service("levelone_equities"), Ok(Service::LevelOneEquities));
        assert!(service("FOREX_BOOK").is_err());
    }
}
