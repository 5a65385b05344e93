//! [`Secret`]: a string (token, client secret) that never shows up in logs, errors or `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` prints `***`; there is no `Display`. Read it with
/// [`expose`](Secret::expose) only where it goes on the wire or into the token store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Replaces every occurrence of each non-empty secret in `text` with `***` (used on error
/// bodies from Schwab, which might echo what was sent).
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if s.0.len() >= 4 {
            out = out.replace(&s.0, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("I0.super-secret-token");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "I0.super-secret-token");
    }

    #[test]
    fn scrub_removes_secrets_from_text() {
        let s = Secret::new("R0.abcdef");
        assert_eq!(
            scrub("bad token R0.abcdef given", &[&s]),
            "bad token *** given"
        );
    }
}
