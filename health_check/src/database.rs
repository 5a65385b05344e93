//! `--database-url`: each symbol's newest row, read directly from PostgreSQL (Supabase) or
//! the service's SQLite file.
//!
//! The newest time comes from `latest_quotes` (one row per ticker, so one cheap query for
//! every symbol); a symbol missing there (or a database without that table) falls back to
//! `SELECT max("timestamp") FROM equity_data WHERE ticker = $1`, which the primary key
//! `(ticker, "timestamp", seq)` answers from the index in every daily partition.
//!
//! The check only reads: SQLite (sqlx) is opened read-only (never created), and PostgreSQL
//! (tokio-postgres, with the service's `sslmode` / `sslrootcert` rules from the `pg-connect`
//! crate) is asked with unnamed statements only (`query_typed`), so a pooler in transaction
//! mode works as well as a direct connection.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use market_calendar::FreshnessThresholds;
use pg_connect::PgTarget;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection, Row};
use streamer_config::{DatabaseTarget, redact_url_password};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use crate::freshness::{Newest, judge_symbols, summarize};
use crate::level::Level;
use crate::report::{CheckKind, CheckResult};

/// A failure that ends the check, with the level it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub level: Level,
    pub message: String,
}

impl Problem {
    fn critical(message: impl Into<String>) -> Self {
        Self {
            level: Level::Critical,
            message: message.into(),
        }
    }

    fn unknown(message: impl Into<String>) -> Self {
        Self {
            level: Level::Unknown,
            message: message.into(),
        }
    }
}

/// Where the rows are: `DATABASE_URL` read by the service's own rules ([`DatabaseTarget::parse`]),
/// so a URL the service refuses (e.g. Supabase's transaction pooler on port 6543) is refused
/// here too, with the same advice.
fn parse_target(url: &str) -> Result<DatabaseTarget, Problem> {
    DatabaseTarget::parse(url).map_err(|e| {
        Problem::unknown(format!(
            "--database-url (the service's DATABASE_URL) is not valid: {e}; allowed: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB"
        ))
    })
}

/// Runs the check.
pub async fn check(
    url: &str,
    symbols: Option<&[String]>,
    now: DateTime<Utc>,
    thresholds: &FreshnessThresholds,
) -> CheckResult {
    let shown = redact_url_password(url.trim());
    let outcome = match parse_target(url) {
        Err(p) => Err(p),
        Ok(DatabaseTarget::Postgres(url)) => match connect_postgres(&url).await {
            Ok((mut client, driver)) => {
                let found = newest_rows(&mut client, symbols).await;
                // Without its client the connection says goodbye to the server and ends.
                drop(client);
                let _ = tokio::time::timeout(Duration::from_secs(2), driver).await;
                found
            }
            Err(p) => Err(p),
        },
        Ok(DatabaseTarget::Sqlite(path)) => match open_sqlite(&path).await {
            Ok(mut conn) => {
                let found = newest_rows(&mut conn, symbols).await;
                let _ = conn.close().await;
                found
            }
            Err(p) => Err(p),
        },
    };
    match outcome {
        Err(p) => CheckResult::new(CheckKind::Database, shown, p.level, p.message),
        Ok(found) => {
            let judged = judge_symbols(found, now, thresholds);
            let (level, message) = summarize(&judged);
            let mut result = CheckResult::new(CheckKind::Database, shown, level, message);
            result.symbols = judged;
            result
        }
    }
}

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects and drives the connection on a task of its own (ends when the client is dropped).
async fn connect_postgres(
    url: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), Problem> {
    let PgTarget {
        mut config, tls, ..
    } = PgTarget::parse(url).map_err(|e| Problem::unknown(format!("--database-url: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("health_check");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let (client, connection) = config.connect(tls).await.map_err(|e| {
        Problem::critical(format!(
            "cannot connect ({}): is the database up and the URL (user, password, host, port, ?sslmode=require for Supabase) right?",
            crate::error_chain(&e)
        ))
    })?;
    let driver = tokio::spawn(async move {
        // A broken connection shows up as the next query's error.
        let _ = connection.await;
    });
    Ok((client, driver))
}

async fn open_sqlite(path: &Path) -> Result<SqliteConnection, Problem> {
    if !path.exists() {
        return Err(Problem::critical(format!(
            "no database file at {}: is --database-url the service's DATABASE_URL, relative to the service's working directory?",
            path.display()
        )));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .connect()
        .await
        .map_err(|e| {
            Problem::critical(format!(
                "cannot open {} ({})",
                path.display(),
                crate::error_chain(&e)
            ))
        })
}

/// Reads the newest event times. Both databases answer the same two questions.
trait NewestSource {
    /// Every `latest_quotes` row, or `None` when the table does not exist.
    async fn latest_quotes(&mut self) -> Result<Option<Vec<(String, DateTime<Utc>)>>, Problem>;
    /// The newest `equity_data` time of `symbol`.
    async fn newest_equity_row(&mut self, symbol: &str) -> Result<Option<DateTime<Utc>>, Problem>;
}

const LATEST_QUOTES: &str = r#"SELECT ticker, "timestamp" FROM latest_quotes"#;

fn query_failed(what: &str, e: &dyn std::error::Error) -> Problem {
    Problem::critical(format!("{what} failed ({})", crate::error_chain(e)))
}

fn missing_equity_data() -> Problem {
    Problem::critical(
        "the database has no equity_data table: is this the service's database, and has the service run its migrations (market-streamer migrate)?",
    )
}

impl NewestSource for tokio_postgres::Client {
    async fn latest_quotes(&mut self) -> Result<Option<Vec<(String, DateTime<Utc>)>>, Problem> {
        match self.query_typed(LATEST_QUOTES, &[]).await {
            Ok(rows) => rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map(Some)
                .map_err(|e| query_failed("reading latest_quotes", &e)),
            Err(e) if pg_undefined_table(&e) => Ok(None),
            Err(e) => Err(query_failed("reading latest_quotes", &e)),
        }
    }

    async fn newest_equity_row(&mut self, symbol: &str) -> Result<Option<DateTime<Utc>>, Problem> {
        let row = self
            .query_typed_one(
                r#"SELECT max("timestamp") FROM equity_data WHERE ticker = $1"#,
                &[(&symbol, Type::TEXT)],
            )
            .await;
        match row {
            Ok(r) => r
                .try_get::<_, Option<DateTime<Utc>>>(0)
                .map_err(|e| query_failed("reading equity_data", &e)),
            Err(e) if pg_undefined_table(&e) => Err(missing_equity_data()),
            Err(e) => Err(query_failed("reading equity_data", &e)),
        }
    }
}

/// PostgreSQL's `undefined_table` (42P01).
fn pg_undefined_table(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNDEFINED_TABLE)
}

fn sqlite_no_such_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.message().contains("no such table"))
}

/// SQLite stores times as ISO-8601 UTC text (`2025-01-08T14:59:30.123Z`); SQLite's own
/// `datetime()` form (`2025-01-08 14:59:30`) is read too.
fn parse_sqlite_time(text: &str) -> Result<DateTime<Utc>, Problem> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map_err(|_| Problem::unknown(format!("unreadable time {text:?} in the SQLite file")))
}

impl NewestSource for SqliteConnection {
    async fn latest_quotes(&mut self) -> Result<Option<Vec<(String, DateTime<Utc>)>>, Problem> {
        match sqlx::query(LATEST_QUOTES).fetch_all(&mut *self).await {
            Ok(rows) => {
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let ticker: String = r
                        .try_get(0)
                        .map_err(|e| query_failed("reading latest_quotes", &e))?;
                    let time: String = r
                        .try_get(1)
                        .map_err(|e| query_failed("reading latest_quotes", &e))?;
                    out.push((ticker, parse_sqlite_time(&time)?));
                }
                Ok(Some(out))
            }
            Err(e) if sqlite_no_such_table(&e) => Ok(None),
            Err(e) => Err(query_failed("reading latest_quotes", &e)),
        }
    }

    async fn newest_equity_row(&mut self, symbol: &str) -> Result<Option<DateTime<Utc>>, Problem> {
        let row = sqlx::query(r#"SELECT max("timestamp") FROM equity_data WHERE ticker = ?"#)
            .bind(symbol)
            .fetch_one(&mut *self)
            .await;
        match row {
            Ok(r) => {
                let text: Option<String> = r
                    .try_get(0)
                    .map_err(|e| query_failed("reading equity_data", &e))?;
                text.as_deref().map(parse_sqlite_time).transpose()
            }
            Err(e) if sqlite_no_such_table(&e) => Err(missing_equity_data()),
            Err(e) => Err(query_failed("reading equity_data", &e)),
        }
    }
}

/// The newest row of each symbol (`symbols`, or every ticker of `latest_quotes`).
async fn newest_rows(
    db: &mut impl NewestSource,
    symbols: Option<&[String]>,
) -> Result<Vec<(String, Option<Newest>)>, Problem> {
    let latest = db.latest_quotes().await?;
    let latest_map: BTreeMap<String, DateTime<Utc>> = latest.iter().flatten().cloned().collect();
    let wanted: Vec<String> = match (symbols, &latest) {
        (Some(list), _) => list.to_vec(),
        (None, Some(_)) if latest_map.is_empty() => {
            return Err(Problem::critical(
                "latest_quotes is empty: the service has written no quote yet (or pass --symbols to look in equity_data)",
            ));
        }
        (None, Some(_)) => latest_map.keys().cloned().collect(),
        (None, None) => {
            return Err(Problem::unknown(
                "the database has no latest_quotes table, so the symbols are unknown: pass --symbols (or set SYMBOLS)",
            ));
        }
    };
    let mut out = Vec::with_capacity(wanted.len());
    for symbol in wanted {
        let newest = match latest_map.get(&symbol) {
            Some(at) => Some(Newest {
                at: *at,
                source: "latest_quotes",
            }),
            None => db.newest_equity_row(&symbol).await?.map(|at| Newest {
                at,
                source: "equity_data",
            }),
        };
        out.push((symbol, newest));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn targets_and_sqlite_times() {
        assert_eq!(
            parse_target("sqlite://data/market.db?mode=ro"),
            Ok(DatabaseTarget::Sqlite(PathBuf::from("data/market.db")))
        );
        assert!(matches!(
            parse_target("postgresql://u:p@h:5432/db"),
            Ok(DatabaseTarget::Postgres(_))
        ));
        // The service refuses the transaction pooler; so does the check, saying what to use.
        let pooler = parse_target("postgresql://u:p@h:6543/db").expect_err("port 6543");
        assert_eq!(pooler.level, Level::Unknown);
        assert!(
            pooler.message.contains("session pooler"),
            "{}",
            pooler.message
        );
        assert!(!pooler.message.contains(":p@"), "{}", pooler.message);
        assert_eq!(
            parse_target("mysql://h/db").map_err(|p| p.level),
            Err(Level::Unknown)
        );
        assert_eq!(
            parse_sqlite_time("2025-01-08T14:59:30.123Z").map(|t| t.timestamp_millis()),
            Ok(1_736_348_370_123)
        );
        assert_eq!(
            parse_sqlite_time("2025-01-08 14:59:30").map(|t| t.timestamp()),
            Ok(1_736_348_370)
        );
        assert!(parse_sqlite_time("yesterday").is_err());
    }
}
