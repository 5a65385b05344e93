//! Errors returned by [`MarketSimulator::apply_command`](super::MarketSimulator::apply_command).

use thiserror::Error;

/// Why a subscription command was refused. Each message says what was wrong and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    /// The service name is not one the simulator streams.
    #[error(
        "unknown service \"{0}\": the simulator supports LEVELONE_EQUITIES, LEVELONE_OPTIONS, LEVELONE_FUTURES, LEVELONE_FUTURES_OPTIONS, LEVELONE_FOREX, CHART_EQUITY, CHART_FUTURES, NYSE_BOOK, NASDAQ_BOOK, OPTIONS_BOOK, SCREENER_EQUITY, SCREENER_OPTION and ACCT_ACTIVITY"
    )]
    UnknownService(String),
    /// The command is not a data-service command.
    #[error("unknown command \"{0}\": allowed commands are SUBS, ADD, UNSUBS and VIEW")]
    UnknownCommand(String),
    /// A field number is outside the service's field table.
    #[error("field {field} does not exist for {service}: allowed fields are 0..={max}")]
    FieldOutOfRange {
        /// Service the command was for.
        service: &'static str,
        /// The offending field number.
        field: u32,
        /// Highest field number of the service.
        max: u32,
    },
    /// SUBS or VIEW (or the first ADD) came without a field list.
    #[error(
        "{command} on {service} needs a field list (e.g. 0,1,2,3); ADD may omit it only once the service has one"
    )]
    MissingFields {
        /// Service the command was for.
        service: &'static str,
        /// The command that lacked fields.
        command: &'static str,
    },
    /// ADD or UNSUBS came without any key.
    #[error("{command} on {service} needs at least one key")]
    MissingKeys {
        /// Service the command was for.
        service: &'static str,
        /// The command that lacked keys.
        command: &'static str,
    },
    /// An equity or chart key is not a usable symbol.
    #[error(
        "invalid symbol \"{symbol}\" for {service}: {reason}; expected 1 to 32 characters without spaces, commas or control characters, e.g. \"AAPL\" or \"$SPX\""
    )]
    InvalidSymbol {
        /// Service the command was for.
        service: &'static str,
        /// The offending key.
        symbol: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An option key is not in the 21-character OCC form.
    #[error(
        "malformed option symbol \"{symbol}\": {reason}; expected 21 characters: root (6, left-justified, space-padded) + YYMMDD + C|P + strike x 1000 (8 digits), e.g. \"AAPL  251219C00230000\""
    )]
    InvalidOptionSymbol {
        /// The offending key.
        symbol: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key of a futures, futures-option, forex, screener or account-activity service is
    /// not in the service's format.
    #[error("invalid key \"{key}\" for {service}: {reason}; expected {expected}")]
    InvalidKey {
        /// Service the command was for.
        service: &'static str,
        /// The offending key.
        key: String,
        /// What is wrong with it.
        reason: String,
        /// The accepted format, with an example.
        expected: &'static str,
    },
    /// The service does not take this command (ACCT_ACTIVITY: SUBS and UNSUBS only).
    #[error("{command} is not supported by {service}: it takes SUBS and UNSUBS only")]
    CommandNotSupported {
        /// Service the command was for.
        service: &'static str,
        /// The refused command.
        command: &'static str,
    },
    /// SUBS or ADD would subscribe more keys (over all services) than the symbol limit.
    #[error(
        "Reached symbol limit: {requested} keys would be subscribed over all services, the limit is {limit}"
    )]
    SymbolLimit {
        /// The configured limit.
        limit: usize,
        /// Keys subscribed had the command been carried out.
        requested: usize,
    },
}
