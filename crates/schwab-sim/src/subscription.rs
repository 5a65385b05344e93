//! Services, commands and subscription lists: parsing and validating what a client asks for.

use std::collections::BTreeSet;

use super::equity_fields::MAX_EQUITY_FIELD;
use super::error::SimError;
use super::field_value::FieldSet;
use super::forex_fields::MAX_FOREX_FIELD;
use super::futures_fields::MAX_FUTURES_FIELD;
use super::futures_option_fields::MAX_FUTURES_OPTION_FIELD;
use super::option_fields::MAX_OPTION_FIELD;

/// Highest CHART_EQUITY field number.
const MAX_CHART_FIELD: u32 = 8;
/// Longest equity symbol accepted.
const MAX_SYMBOL_LEN: usize = 32;

/// A streamed service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Service {
    /// `LEVELONE_EQUITIES`.
    LevelOneEquities,
    /// `LEVELONE_OPTIONS`.
    LevelOneOptions,
    /// `CHART_EQUITY`.
    ChartEquity,
    /// `LEVELONE_FUTURES`.
    LevelOneFutures,
    /// `LEVELONE_FUTURES_OPTIONS`.
    LevelOneFuturesOptions,
    /// `LEVELONE_FOREX`.
    LevelOneForex,
    /// `CHART_FUTURES`.
    ChartFutures,
    /// `NYSE_BOOK`.
    NyseBook,
    /// `NASDAQ_BOOK`.
    NasdaqBook,
    /// `OPTIONS_BOOK`.
    OptionsBook,
    /// `SCREENER_EQUITY`.
    ScreenerEquity,
    /// `SCREENER_OPTION`.
    ScreenerOption,
    /// `ACCT_ACTIVITY`.
    AcctActivity,
}

impl Service {
    /// Every service, in the order of [`Service::index`].
    pub(crate) const ALL: [Service; 13] = [
        Self::LevelOneEquities,
        Self::LevelOneOptions,
        Self::ChartEquity,
        Self::LevelOneFutures,
        Self::LevelOneFuturesOptions,
        Self::LevelOneForex,
        Self::ChartFutures,
        Self::NyseBook,
        Self::NasdaqBook,
        Self::OptionsBook,
        Self::ScreenerEquity,
        Self::ScreenerOption,
        Self::AcctActivity,
    ];

    /// Number of services.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// Position in [`Service::ALL`] (for per-service arrays).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Parses a wire service name.
    pub(crate) fn parse(name: &str) -> Result<Self, SimError> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| SimError::UnknownService(name.to_string()))
    }

    /// The wire name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::LevelOneEquities => "LEVELONE_EQUITIES",
            Self::LevelOneOptions => "LEVELONE_OPTIONS",
            Self::ChartEquity => "CHART_EQUITY",
            Self::LevelOneFutures => "LEVELONE_FUTURES",
            Self::LevelOneFuturesOptions => "LEVELONE_FUTURES_OPTIONS",
            Self::LevelOneForex => "LEVELONE_FOREX",
            Self::ChartFutures => "CHART_FUTURES",
            Self::NyseBook => "NYSE_BOOK",
            Self::NasdaqBook => "NASDAQ_BOOK",
            Self::OptionsBook => "OPTIONS_BOOK",
            Self::ScreenerEquity => "SCREENER_EQUITY",
            Self::ScreenerOption => "SCREENER_OPTION",
            Self::AcctActivity => "ACCT_ACTIVITY",
        }
    }

    /// Highest field number of the service.
    pub(crate) fn max_field(self) -> u32 {
        match self {
            Self::LevelOneEquities => MAX_EQUITY_FIELD,
            Self::LevelOneOptions => MAX_OPTION_FIELD,
            Self::ChartEquity => MAX_CHART_FIELD,
            Self::LevelOneFutures => MAX_FUTURES_FIELD,
            Self::LevelOneFuturesOptions => MAX_FUTURES_OPTION_FIELD,
            Self::LevelOneForex => MAX_FOREX_FIELD,
            Self::ChartFutures => 6,
            Self::NyseBook | Self::NasdaqBook | Self::OptionsBook | Self::AcctActivity => 3,
            Self::ScreenerEquity | Self::ScreenerOption => 4,
        }
    }

    /// True for the services that take only SUBS and UNSUBS.
    pub(crate) fn subs_and_unsubs_only(self) -> bool {
        self == Self::AcctActivity
    }

    /// Validates a field list (any order, duplicates allowed) into a set.
    pub(crate) fn field_set(self, fields: &[u32]) -> Result<FieldSet, SimError> {
        let max = self.max_field();
        match fields.iter().find(|&&f| f > max) {
            Some(&field) => Err(SimError::FieldOutOfRange {
                service: self.name(),
                field,
                max,
            }),
            None => Ok(FieldSet::from_fields(fields)),
        }
    }
}

/// A data-service command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Replace the key list and the field list.
    Subs,
    /// Add keys (fields, if given, replace the service's field list).
    Add,
    /// Remove keys.
    Unsubs,
    /// Replace the field list only.
    View,
}

impl Command {
    /// Parses a wire command name.
    pub(crate) fn parse(name: &str) -> Result<Self, SimError> {
        match name {
            "SUBS" => Ok(Self::Subs),
            "ADD" => Ok(Self::Add),
            "UNSUBS" => Ok(Self::Unsubs),
            "VIEW" => Ok(Self::View),
            other => Err(SimError::UnknownCommand(other.to_string())),
        }
    }

    /// The wire name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Subs => "SUBS",
            Self::Add => "ADD",
            Self::Unsubs => "UNSUBS",
            Self::View => "VIEW",
        }
    }
}

/// Checks an equity or chart key: 1–32 characters, no whitespace, commas or control characters.
pub(crate) fn validate_equity_symbol(service: Service, symbol: &str) -> Result<(), SimError> {
    let reason = if symbol.is_empty() {
        Some("it is empty")
    } else if symbol.chars().count() > MAX_SYMBOL_LEN {
        Some("it is too long")
    } else if symbol.chars().any(char::is_whitespace) {
        Some("it contains whitespace (option symbols go to LEVELONE_OPTIONS)")
    } else if symbol.contains(',') {
        Some("it contains a comma (keys are passed one per element)")
    } else if symbol.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SimError::InvalidSymbol {
            service: service.name(),
            symbol: symbol.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The keys and fields of one service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscription {
    /// Instrument indices subscribed, in a stable order.
    pub keys: BTreeSet<usize>,
    /// Field list.
    pub fields: FieldSet,
}

/// What a command does to a service's key list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyChanges {
    /// Keys to drop.
    pub removed: Vec<usize>,
    /// Keys to (re)start with a snapshot.
    pub started: Vec<usize>,
}

impl Subscription {
    /// Applies `command` with the (validated, resolved) `keys` and field set, returning the
    /// key changes for the caller to carry out on the instruments.
    pub(crate) fn apply(
        &mut self,
        command: Command,
        keys: &BTreeSet<usize>,
        fields: FieldSet,
    ) -> KeyChanges {
        let mut changes = KeyChanges::default();
        match command {
            Command::Subs => {
                changes.removed = self.keys.difference(keys).copied().collect();
                changes.started = keys.iter().copied().collect();
                self.keys = keys.clone();
                self.fields = fields;
            }
            Command::Add => {
                changes.started = keys.iter().copied().collect();
                self.keys.extend(keys.iter().copied());
                if !fields.is_empty() {
                    self.fields = fields;
                }
            }
            Command::Unsubs => {
                changes.removed = self.keys.intersection(keys).copied().collect();
                for key in &changes.removed {
                    self.keys.remove(key);
                }
            }
            Command::View => self.fields = fields,
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[usize]) -> BTreeSet<usize> {
        keys.iter().copied().collect()
    }

    #[test]
    fn command_semantics() {
        let mut sub = Subscription::default();
        let f1 = FieldSet::from_fields(&[0, 1]);
        let f2 = FieldSet::from_fields(&[0, 2]);
        let c = sub.apply(Command::Subs, &set(&[1, 2]), f1);
        assert_eq!((c.removed, c.started), (vec![], vec![1, 2]));
        let c = sub.apply(Command::Add, &set(&[3]), FieldSet::default());
        assert_eq!((c.removed, c.started, sub.fields), (vec![], vec![3], f1));
        let c = sub.apply(Command::Subs, &set(&[2, 4]), f2);
        assert_eq!((c.removed, c.started), (vec![1, 3], vec![2, 4]));
        let c = sub.apply(Command::Unsubs, &set(&[4, 9]), FieldSet::default());
        assert_eq!((c.removed, c.started), (vec![4], vec![]));
        let c = sub.apply(Command::View, &set(&[]), f1);
        assert_eq!((c, sub.fields), (KeyChanges::default(), f1));
        assert_eq!(sub.keys, set(&[2]));
    }

    #[test]
    fn parsing_and_validation() {
        assert_eq!(Service::parse("CHART_EQUITY"), Ok(Service::ChartEquity));
        assert_eq!(
            Service::parse("LEVELONE_FUTURES"),
            Ok(Service::LevelOneFutures)
        );
        for (i, s) in Service::ALL.into_iter().enumerate() {
            assert_eq!((s.index(), Service::parse(s.name())), (i, Ok(s)));
        }
        assert!(matches!(
            Service::parse("FOREX_BOOK"),
            Err(SimError::UnknownService(_))
        ));
        assert_eq!(Command::parse("VIEW"), Ok(Command::View));
        assert!(matches!(
            Command::parse("subs"),
            Err(SimError::UnknownCommand(_))
        ));
        assert!(Service::ChartEquity.field_set(&[0, 8]).is_ok());
        assert_eq!(
            Service::ChartEquity.field_set(&[9]),
            Err(SimError::FieldOutOfRange {
                service: "CHART_EQUITY",
                field: 9,
                max: 8
            })
        );
        for bad in [
            "",
            "AA PL",
            "A,B",
            "A\u{1}",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
        ] {
            assert!(
                validate_equity_symbol(Service::LevelOneEquities, bad).is_err(),
                "{bad:?}"
            );
        }
        for good in ["AAPL", "BRK.B", "$SPX", "/ES"] {
            assert!(
                validate_equity_symbol(Service::LevelOneEquities, good).is_ok(),
                "{good:?}"
            );
        }
    }
}
