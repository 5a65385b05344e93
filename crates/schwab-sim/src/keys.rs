//! Key formats per service: each key of a SUBS / ADD / UNSUBS is validated (and parsed) before
//! anything changes, so a refused command changes nothing.

use super::error::SimError;
use super::forex_fields::{FOREX_KEY_FORMAT, validate_forex_key};
use super::futures_reference::{
    FUTURE_KEY_FORMAT, FUTURE_OPTION_KEY_FORMAT, FutureKey, FutureOptionKey, parse_future_key,
    parse_future_option_key,
};
use super::option_symbol::{OptionSymbol, parse_option_symbol};
use super::screeners::{SCREENER_KEY_FORMAT, ScreenerKey, parse_screener_key};
use super::subscription::{Service, validate_equity_symbol};

/// Longest ACCT_ACTIVITY key accepted.
const MAX_ACCOUNT_KEY_LEN: usize = 128;

/// A validated key, with what parsing it gave.
#[derive(Debug, Clone)]
pub(crate) enum ParsedKey {
    /// An equity, ETF or index symbol.
    Equity,
    /// A 21-character option symbol.
    Option(OptionSymbol),
    /// `/ES`, `/ESZ26`.
    Future(FutureKey),
    /// `./OZCZ27C565`.
    FutureOption(FutureOptionKey),
    /// `EUR/USD`.
    Forex,
    /// `NASDAQ_VOLUME_5`.
    Screener(ScreenerKey),
    /// Any client string (ACCT_ACTIVITY).
    Account,
}

impl ParsedKey {
    /// Validates `key` for `service`.
    pub(crate) fn parse(service: Service, key: &str) -> Result<Self, SimError> {
        let invalid = |reason: String, expected: &'static str| SimError::InvalidKey {
            service: service.name(),
            key: key.to_string(),
            reason,
            expected,
        };
        match service {
            Service::LevelOneEquities
            | Service::ChartEquity
            | Service::NyseBook
            | Service::NasdaqBook => validate_equity_symbol(service, key).map(|()| Self::Equity),
            Service::LevelOneOptions | Service::OptionsBook => parse_option_symbol(key)
                .map(Self::Option)
                .map_err(|reason| SimError::InvalidOptionSymbol {
                    symbol: key.to_string(),
                    reason,
                }),
            Service::LevelOneFutures | Service::ChartFutures => parse_future_key(key)
                .map(Self::Future)
                .map_err(|r| invalid(r, FUTURE_KEY_FORMAT)),
            Service::LevelOneFuturesOptions => parse_future_option_key(key)
                .map(Self::FutureOption)
                .map_err(|r| invalid(r, FUTURE_OPTION_KEY_FORMAT)),
            Service::LevelOneForex => validate_forex_key(key)
                .map(|()| Self::Forex)
                .map_err(|r| invalid(r, FOREX_KEY_FORMAT)),
            Service::ScreenerEquity | Service::ScreenerOption => {
                parse_screener_key(service == Service::ScreenerOption, key)
                    .map(Self::Screener)
                    .map_err(|r| invalid(r, SCREENER_KEY_FORMAT))
            }
            Service::AcctActivity => {
                if key.is_empty()
                    || key.len() > MAX_ACCOUNT_KEY_LEN
                    || key.chars().any(char::is_control)
                {
                    Err(invalid(
                        "it is empty, too long or has control characters".into(),
                        "any text of 1 to 128 characters, e.g. \"Account Activity\"",
                    ))
                } else {
                    Ok(Self::Account)
                }
            }
        }
    }
}
