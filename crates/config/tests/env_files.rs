//! `env.template` and README's configuration table against the table of variables: every
//! variable listed, with its real default. (Moved here from the deployment checks: it needs no
//! tool beyond Rust, so it runs in every `cargo test`.)

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use streamer_config::{
    Config, HEALTH_CHECK_ALSO_READS, HEALTH_CHECK_VARIABLES, SERVICE_VARIABLES, Variable,
    all_variables, variable,
};

/// The repository root (this crate lives in `crates/config`).
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The service's variable called `name`.
fn service_variable(name: &str) -> Option<&'static Variable> {
    SERVICE_VARIABLES.iter().find(|v| v.name == name)
}

#[test]
fn readme_lists_every_variable_with_its_real_default() {
    let readme = read(repo().join("README.md"));
    let missing: Vec<String> = SERVICE_VARIABLES
        .iter()
        .chain(HEALTH_CHECK_VARIABLES)
        .map(Variable::readme_row)
        .filter(|row| !readme.lines().any(|line| line == row))
        .collect();
    assert!(
        missing.is_empty(),
        "README's configuration table lacks these rows (or has them with another default or \
         meaning); paste them in from the table in crates/config/src/settings.rs:\n{}",
        missing.join("\n")
    );
    // And has no row for a variable that nothing reads.
    let start = readme
        .find("## Configuration")
        .expect("a Configuration section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    for line in section.lines() {
        if let Some(name) = line.strip_prefix("| `").and_then(|l| l.split('`').next()) {
            assert!(
                variable(name).is_some(),
                "README documents {name}, which is not in the table of variables"
            );
        }
    }
}

/// Variables the container setup pins (docker-compose.yml `environment:` and the Dockerfile's
/// `ENV`); env.template explains them instead of offering them.
const CONTAINER_PINNED: &[&str] = &["HEALTH_ADDR"];

/// Template variables that must stay blank: they hold secrets.
const SECRETS: &[&str] = &[
    "SCHWAB_CLIENT_ID",
    "SCHWAB_CLIENT_SECRET",
    "DATABASE_URL",
    "SUPABASE_KEY",
    "SUPABASE_ANON_KEY",
    "SUPABASE_PUBLISHABLE_KEY",
];

struct TemplateEntry {
    name: String,
    value: String,
    commented: bool,
}

fn is_variable_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `NAME=value` lines, and `# NAME=value` lines (a documented default).
fn template_entries() -> Vec<TemplateEntry> {
    let mut out = Vec::new();
    for line in read(repo().join("env.template")).lines() {
        let (commented, rest) = match line.strip_prefix("# ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((name, _)) = rest.split_once('=') else {
            assert!(
                commented || line.trim().is_empty() || line.starts_with('#'),
                "odd line: {line}"
            );
            continue;
        };
        if !is_variable_name(name) {
            assert!(commented || line.starts_with('#'), "odd line: {line}");
            continue;
        }
        // The value as dotenv (and docker compose) reads it: quotes removed.
        let parsed: Vec<(String, String)> = dotenvy::from_read_iter(rest.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{line:?} is not valid .env syntax: {e}"));
        let value = parsed
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default();
        out.push(TemplateEntry {
            name: name.to_string(),
            value,
            commented,
        });
    }
    out
}

/// The variables `health_check` reads: those its `--help` lists under "Environment", and
/// every upper-case name with an underscore in its non-test source.
fn health_check_variables() -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    let cli = read(repo().join("health_check/src/cli.rs"));
    let start = cli
        .find("Environment (and .env) defaults:")
        .expect("health_check's help lists its environment");
    let paragraph = &cli[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").expect("paragraph end")];
    vars.extend(
        paragraph
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.len() > 2 && is_variable_name(w))
            .map(String::from),
    );
    assert!(
        vars.contains("HEALTH_URL") && vars.contains("SYMBOLS"),
        "{vars:?}"
    );
    for entry in fs::read_dir(repo().join("health_check/src")).expect("src") {
        let text = read(entry.expect("entry").path());
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, literal) in code.split('"').enumerate() {
            if i % 2 == 1
                && literal.contains('_')
                && is_variable_name(literal)
                && !literal.starts_with("CARGO_")
            {
                vars.insert(literal.to_string());
            }
        }
    }
    vars
}

#[test]
fn env_template_lists_every_setting_with_its_real_default() {
    let entries = template_entries();
    let mut seen = BTreeSet::new();
    for e in &entries {
        assert!(seen.insert(e.name.clone()), "{} appears twice", e.name);
    }
    let documented: BTreeSet<String> = seen;
    let health_check = health_check_variables();
    for name in &health_check {
        assert!(
            variable(name).is_some() || HEALTH_CHECK_ALSO_READS.contains(&name.as_str()),
            "health_check reads {name}: add it to streamer-config's HEALTH_CHECK_VARIABLES \
             (or HEALTH_CHECK_ALSO_READS), so the service does not warn about it in .env"
        );
    }
    let expected: BTreeSet<String> = all_variables()
        .map(|v| v.name.to_string())
        .chain(HEALTH_CHECK_ALSO_READS.iter().map(|v| v.to_string()))
        .chain(health_check.iter().cloned())
        .collect();
    let pinned: BTreeSet<String> = CONTAINER_PINNED.iter().map(|v| v.to_string()).collect();

    let missing: Vec<_> = expected
        .difference(&documented)
        .filter(|v| !pinned.contains(*v))
        .collect();
    assert!(missing.is_empty(), "env.template lacks {missing:?}");
    let unknown: Vec<_> = documented.difference(&expected).collect();
    assert!(
        unknown.is_empty(),
        "env.template has variables nothing reads: {unknown:?}"
    );
    for name in &pinned {
        assert!(
            !documented.contains(name),
            "{name} is set by docker-compose.yml, not .env"
        );
        assert!(
            read(repo().join("env.template")).contains(name.as_str()),
            "{name} is explained"
        );
    }

    // Secrets are blank.
    for e in &entries {
        if SECRETS.contains(&e.name.as_str()) {
            assert!(
                e.value.is_empty(),
                "{} must be blank in the template",
                e.name
            );
        }
    }

    // The commented values are the table's defaults (empty where the default follows other
    // settings)...
    for e in entries.iter().filter(|e| e.commented) {
        if let Some(v) = service_variable(&e.name) {
            assert_eq!(
                e.value,
                v.default.value.unwrap_or_default(),
                "`# {}=` in env.template is not the table's default",
                e.name
            );
        }
    }
    // ...and the real defaults: applying all of them changes nothing.
    let defaults: Vec<(String, String)> = entries
        .iter()
        .filter(|e| e.commented && service_variable(&e.name).is_some())
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let lookup = |vars: &[(String, String)]| {
        let vars = vars.to_vec();
        Config::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    };
    let with_defaults = lookup(&defaults).expect("the documented defaults are valid");
    let plain = lookup(&[]).expect("no settings");
    assert_eq!(
        format!("{with_defaults:?}"),
        format!("{plain:?}"),
        "a `# NAME=value` line in env.template is not the real default"
    );

    // Filled in, the template is a valid live configuration.
    let mut active: Vec<(String, String)> = entries
        .iter()
        .filter(|e| !e.commented)
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    for (name, value) in &mut active {
        match name.as_str() {
            "SCHWAB_CLIENT_ID" => *value = "app-key".into(),
            "SCHWAB_CLIENT_SECRET" => *value = "app-secret".into(),
            _ => {}
        }
    }
    let cfg = lookup(&active).expect("env.template with the Schwab secrets filled in is valid");
    assert_eq!(format!("{:?}", cfg.schwab.mode), "Live");
}
