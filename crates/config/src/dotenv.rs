//! `.env` loading, and the warning about variables in it that look like settings but are not.

use std::fmt;
use std::path::{Path, PathBuf};

/// A `.env` file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read {path}: {source}; fix or remove the file")]
pub struct DotenvError {
    /// The file.
    pub path: String,
    /// What went wrong (names the line for a syntax error).
    #[source]
    pub source: dotenvy::Error,
}

/// Merges `.env` from the working directory into the process environment; variables that are
/// already set win. A missing file is fine; a malformed one is an error naming the line.
pub fn load_dotenv() -> Result<Option<PathBuf>, DotenvError> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(Some(path)),
        Err(e) if e.not_found() => Ok(None),
        Err(source) => Err(DotenvError {
            path: ".env".into(),
            source,
        }),
    }
}

/// A variable set in `.env` that no part of market-streamer reads, but that looks like one
/// of its settings (a likely typo, or a setting from another version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// The name as written in the file.
    pub name: String,
    /// The closest known variable, if one is close.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not a market-streamer setting and is ignored; ",
            self.name
        )?;
        match self.suggestion {
            Some(s) => write!(f, "did you mean {s}? Rename it, or remove it"),
            None => {
                f.write_str("check its name against README's configuration table, or remove it")
            }
        }
    }
}

/// The variables of the `.env` file at `path` that are not in the table but look like ours:
/// close to a known name (a typo), or with the first word of one (`SCHWAB_`, `TOKEN_`, ...).
pub fn unknown_dotenv_variables(path: &Path) -> Result<Vec<UnknownVariable>, DotenvError> {
    let err = |source| DotenvError {
        path: path.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for item in dotenvy::from_path_iter(path).map_err(err)? {
        let (name, _) = item.map_err(err)?;
        if let Some(unknown) = check_name(&name) {
            out.push(unknown);
        }
    }
    Ok(out)
}

/// `Some` when `name` is unknown but looks like one of ours.
fn check_name(name: &str) -> Option<UnknownVariable> {
    let known = || {
        crate::all_variables()
            .map(|v| v.name)
            .chain(crate::HEALTH_CHECK_ALSO_READS.iter().copied())
    };
    if known().any(|k| k == name) {
        return None;
    }
    let upper = name.to_ascii_uppercase();
    let (distance, closest) = known()
        .map(|k| (edit_distance(&upper, k), k))
        .min()
        .expect("the table is not empty");
    let first_word = |s: &str| s.split('_').next().unwrap_or_default().to_string();
    let shares_word = known().any(|k| k.contains('_') && first_word(k) == first_word(&upper));
    let close = distance <= 2 || upper == closest;
    (close || shares_word).then(|| UnknownVariable {
        name: name.to_string(),
        suggestion: (distance <= 3).then_some(closest),
    })
}

/// Levenshtein distance (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_lookalikes_are_flagged_with_a_suggestion() {
        let typo = check_name("BATCH_SIZ").expect("typo");
        assert_eq!(typo.suggestion, Some("BATCH_SIZE"));
        assert!(
            typo.to_string().contains("did you mean BATCH_SIZE?"),
            "{typo}"
        );
        let lower = check_name("batch_size").expect("lower case is not read");
        assert_eq!(lower.suggestion, Some("BATCH_SIZE"));
        let family = check_name("SCHWAB_APP_KEY").expect("a SCHWAB_ name");
        assert!(family.to_string().contains("README"), "{family}");
        assert_eq!(check_name("BATCH_SIZE"), None);
        assert_eq!(check_name("HEALTH_URL"), None, "health_check's own");
        assert_eq!(check_name("NO_COLOR"), None);
        assert_eq!(check_name("COMPOSE_PROJECT_NAME"), None, "not ours");
    }

    #[test]
    fn the_dotenv_file_is_read_for_names() {
        let dir = std::env::temp_dir().join(format!("streamer-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(".env");
        std::fs::write(&path, "BATCH_SIZE=5\nSYMBOL=AAPL\nPGHOST=x\n").expect("write");
        let unknown = unknown_dotenv_variables(&path).expect("readable");
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(unknown[0].suggestion, Some("SYMBOLS"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
