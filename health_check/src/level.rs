//! Check outcomes with monitoring-plugin exit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use serde::Serialize;

/// The outcome of one check, one symbol, or the whole run.
///
/// Severity (for "the worst of all checks"): OK < WARNING < UNKNOWN < CRITICAL, as Icinga
/// ranks states: a check that cannot tell must not hide another that saw data stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Level {
    /// The process exit code for this level.
    pub const fn exit_code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Critical => 2,
            Self::Unknown => 3,
        }
    }

    /// The level's name in reports (`OK`, `WARNING`, `CRITICAL`, `UNKNOWN`).
    pub const fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
            Self::Unknown => "UNKNOWN",
        }
    }

    const fn severity(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warning => 1,
            Self::Unknown => 2,
            Self::Critical => 3,
        }
    }

    /// The more severe of two levels.
    pub fn worst(self, other: Self) -> Self {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// The most severe level of `levels`, OK when there is none.
    pub fn worst_of(levels: impl IntoIterator<Item = Self>) -> Self {
        levels.into_iter().fold(Self::Ok, Self::worst)
    }
}

impl From<market_calendar::Freshness> for Level {
    fn from(f: market_calendar::Freshness) -> Self {
        use market_calendar::Freshness;
        match f {
            Freshness::Fresh => Self::Ok,
            Freshness::Warning => Self::Warning,
            Freshness::Critical => Self::Critical,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Level::*;
    use super::*;

    #[test]
    fn critical_outranks_unknown_which_outranks_warning() {
        assert_eq!(Level::worst_of([]), Ok);
        assert_eq!(Level::worst_of([Ok, Warning]), Warning);
        assert_eq!(Level::worst_of([Warning, Unknown, Ok]), Unknown);
        assert_eq!(Level::worst_of([Unknown, Critical, Warning]), Critical);
        assert_eq!(
            [Ok, Warning, Critical, Unknown].map(Level::exit_code),
            [0, 1, 2, 3]
        );
    }
}
