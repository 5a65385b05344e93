//! `health_check`: is market-streamer's data flowing? One run checks the service's `/health`
//! endpoint, the database directly, and/or Supabase's REST API, prints a short report (or
//! `--json`) and exits 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN, so it drops into cron, an
//! uptime monitor or a container `HEALTHCHECK`.
//!
//! Modules: [`cli`] (flags and environment defaults), [`service`], [`database`],
//! [`supabase`] (the three checks), [`freshness`] (per-symbol judgement with the market
//! calendar), [`report`] (text and JSON), [`level`] (exit codes).

mod cli;
mod database;
mod freshness;
mod level;
mod report;
mod service;
mod supabase;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Args, ColourChoice, NOTHING_TO_CHECK, Settings};
use crate::level::Level;
use crate::report::{CheckKind, CheckResult, Report, human};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // Usage errors are UNKNOWN (3), not clap's usual 2, which would read as CRITICAL.
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => Level::Unknown.exit_code(),
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = args.json;
    let colour_choice = args.color;
    let now = Utc::now();
    let defaults = market_calendar::FreshnessThresholds {
        warn_after: Duration::from_secs(120),
        critical_after: Duration::from_secs(600),
    };
    let report = match streamer_config::load_dotenv() {
        Err(e) => Report::unknown(e.to_string(), now, &defaults),
        Ok(_) => match Settings::resolve(args, |name| std::env::var(name).ok(), now) {
            Err(e) => Report::unknown(format!("bad arguments: {e}"), now, &defaults),
            Ok(settings) if !settings.has_checks() => {
                Report::unknown(NOTHING_TO_CHECK.into(), settings.now, &settings.thresholds)
            }
            Ok(settings) => match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run(&settings)),
                Err(e) => Report::unknown(
                    format!("cannot start the async runtime: {e}"),
                    now,
                    &settings.thresholds,
                ),
            },
        },
    };
    let colour = match colour_choice {
        ColourChoice::Always => true,
        ColourChoice::Never => false,
        ColourChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let text = if json {
        format!("{}\n", report.to_json())
    } else {
        report.render_text(colour)
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    ExitCode::from(report.exit_code)
}

/// Runs every selected check concurrently, each within the timeout.
async fn run(s: &Settings) -> Report {
    let client = reqwest::Client::builder()
        .timeout(s.timeout)
        .connect_timeout(s.timeout)
        .user_agent(concat!("health_check/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            return Report::unknown(
                format!("cannot build the HTTP client: {}", error_chain(&e)),
                s.now,
                &s.thresholds,
            );
        }
    };
    let symbols = s.symbols.as_deref();
    let service = async {
        match &s.service_url {
            Some(url) => Some(
                timed(
                    CheckKind::Service,
                    url,
                    s.timeout,
                    service::check(&client, url, s.timeout),
                )
                .await,
            ),
            None => None,
        }
    };
    let database = async {
        match &s.database_url {
            Some(url) => Some(
                timed(
                    CheckKind::Database,
                    url,
                    s.timeout,
                    database::check(url, symbols, s.now, &s.thresholds),
                )
                .await,
            ),
            None => None,
        }
    };
    let rest = async {
        match &s.supabase {
            Some(target) => Some(
                timed(
                    CheckKind::Supabase,
                    &target.url,
                    s.timeout,
                    supabase::check(&client, target, symbols, s.now, &s.thresholds),
                )
                .await,
            ),
            None => None,
        }
    };
    let (a, b, c) = tokio::join!(service, database, rest);
    let checks = [a, b, c].into_iter().flatten().collect();
    Report::new(checks, s.now, &s.thresholds)
}

/// Runs one check within `timeout` (CRITICAL when it takes longer) and records its duration.
async fn timed(
    kind: CheckKind,
    target: &str,
    timeout: Duration,
    check: impl Future<Output = CheckResult>,
) -> CheckResult {
    let started = Instant::now();
    let mut result = match tokio::time::timeout(timeout, check).await {
        Ok(r) => r,
        Err(_) => CheckResult::new(
            kind,
            streamer_config::redact_url_password(target.trim()),
            Level::Critical,
            format!(
                "no answer within {} (--timeout): is the target up and reachable from here?",
                human(timeout)
            ),
        ),
    };
    result.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// The innermost cause of an error (`Connection refused (os error 111)`), which says more
/// than the wrappers around it.
pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e;
    while let Some(s) = last.source() {
        last = s;
    }
    last.to_string()
}

/// An error and its sources on one line (`error sending request: … : Connection refused`).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}
