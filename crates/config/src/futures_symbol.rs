//! Futures keys of LEVELONE_FUTURES and CHART_FUTURES: `/` + root (1 to 4 upper-case letters
//! or digits) for the front month (`/ES`), optionally followed by a contract: month code
//! (`F G H J K M N Q U V X Z`) + 2-digit year (`/ESZ25` = December 2025). The month codes are
//! shared with futures options ([`crate::futures_option_symbol`]).

use std::fmt;

/// The futures month codes, January (`F`) to December (`Z`).
pub const MONTH_CODES: [char; 12] = ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];

/// The month (1–12) of a futures month code (`Z` → 12).
pub fn month_from_code(code: char) -> Option<u32> {
    MONTH_CODES
        .iter()
        .position(|&c| c == code)
        .map(|i| i as u32 + 1)
}

/// The futures month code of a month (12 → `Z`).
pub fn month_code(month: u32) -> Option<char> {
    MONTH_CODES.get(month.checked_sub(1)? as usize).copied()
}

/// True for a futures root without its `/`: 1 to 4 upper-case ASCII letters or digits.
pub(crate) fn is_root(s: &str) -> bool {
    (1..=4).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A contract's delivery month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContractMonth {
    /// 2000 + the 2-digit year.
    pub year: i32,
    /// 1–12.
    pub month: u32,
}

/// What a futures key says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FuturesSymbol {
    /// The root with its slash, e.g. `/ES`.
    pub root: String,
    /// The contract's month; `None` for the front month (`/ES`).
    pub contract: Option<ContractMonth>,
}

/// Why a string is not a futures key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuturesSymbolError {
    #[error("must start with /, e.g. /ES")]
    Slash,
    #[error("the contract's year must have 2 digits, e.g. /ESZ25")]
    Year,
    #[error(
        "after the / must come a root of 1 to 4 upper-case letters or digits, optionally followed by a month code and a 2-digit year"
    )]
    Root,
}

impl FuturesSymbol {
    /// Parses `/ES` or `/ESZ25` (upper case, no spaces).
    pub fn parse(symbol: &str) -> Result<Self, FuturesSymbolError> {
        let body = symbol.strip_prefix('/').ok_or(FuturesSymbolError::Slash)?;
        if !body.is_ascii() {
            return Err(FuturesSymbolError::Root);
        }
        let b = body.as_bytes();
        let n = b.len();
        let month_at = |i: usize| month_from_code(char::from(b[i]));
        if n >= 3
            && b[n - 2..].iter().all(u8::is_ascii_digit)
            && let Some(month) = month_at(n - 3)
        {
            let root = &body[..n - 3];
            if !is_root(root) {
                return Err(FuturesSymbolError::Root);
            }
            let yy: i32 = body[n - 2..]
                .parse()
                .map_err(|_| FuturesSymbolError::Year)?;
            return Ok(Self {
                root: format!("/{root}"),
                contract: Some(ContractMonth {
                    year: 2000 + yy,
                    month,
                }),
            });
        }
        // A root + month code + one digit is a contract with its year cut short (`/ESZ2`),
        // not a 4-character root.
        if n >= 3
            && b[n - 1].is_ascii_digit()
            && month_at(n - 2).is_some()
            && is_root(&body[..n - 2])
        {
            return Err(FuturesSymbolError::Year);
        }
        if !is_root(body) {
            return Err(FuturesSymbolError::Root);
        }
        Ok(Self {
            root: symbol.to_string(),
            contract: None,
        })
    }
}

impl fmt::Display for FuturesSymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.root)?;
        if let Some(c) = self.contract {
            let code = month_code(c.month).unwrap_or('?');
            write!(f, "{code}{:02}", c.year - 2000)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_codes_map_to_months() {
        assert_eq!(month_from_code('F'), Some(1));
        assert_eq!(month_from_code('Z'), Some(12));
        assert_eq!(month_from_code('A'), None);
        assert_eq!(month_code(3), Some('H'));
        assert_eq!(month_code(0), None);
        assert_eq!(month_code(13), None);
    }

    #[test]
    fn parses_front_months_and_contracts() {
        for s in ["/ES", "/NQ", "/6E", "/MES", "/M2K", "/CL", "/10Y", "/ABCD"] {
            let f = FuturesSymbol::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(f.root, s);
            assert_eq!(f.contract, None);
            assert_eq!(f.to_string(), s);
        }
        let f = FuturesSymbol::parse("/ESZ25").expect("valid");
        assert_eq!(f.root, "/ES");
        assert_eq!(
            f.contract,
            Some(ContractMonth {
                year: 2025,
                month: 12
            })
        );
        assert_eq!(f.to_string(), "/ESZ25");
        let f = FuturesSymbol::parse("/M2KH26").expect("valid");
        assert_eq!(
            (f.root.as_str(), f.contract.map(|c| (c.year, c.month))),
            ("/M2K", Some((2026, 3)))
        );
        assert_eq!(
            FuturesSymbol::parse("/6EM24").expect("valid").root,
            "/6E",
            "a digit root with a contract"
        );
    }

    #[test]
    fn rejects_malformed_keys() {
        use FuturesSymbolError::*;
        for (s, e) in [
            ("/", Root),
            ("ES", Slash),
            ("ESZ25", Slash),
            ("/ESZ2", Year),
            ("/ES Z25", Root),
            ("/es", Root),
            ("/ABCDE", Root),
            ("/ABCDEZ25", Root),
            ("/Z25", Root),
            ("/ESZ255", Root),
            ("/É", Root),
            ("./OZCZ23C565", Slash),
        ] {
            assert_eq!(FuturesSymbol::parse(s), Err(e), "{s}");
        }
    }
}
