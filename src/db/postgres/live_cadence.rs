//! The live cadence: Supabase Realtime at `REALTIME_INTERVAL`, whatever the write cadence.
//!
//! One task owns the pending map `ticker -> newest committed row`. The PostgreSQL sink hands
//! it each committed batch's newest row per ticker right after `COMMIT`
//! ([`LiveCadence::committed`]); at most once per `REALTIME_INTERVAL`, when anything is
//! pending, the task sends one transaction on a connection of its own:
//!
//! - with postgres_changes (`REALTIME_MODE=postgres_changes|both`), the `latest_quotes`
//!   upsert of those tickers (the flush then leaves `latest_quotes` to this task, so its
//!   change feed follows the cadence and lags the writes by at most one interval);
//! - with Broadcast (`broadcast|both`, where `realtime.send` exists), one
//!   `realtime.send(payload, 'quotes', REALTIME_TOPIC, false)` with the newest quote and
//!   indicators of every pending ticker, split into several calls when the payload would pass
//!   the plan's limit ([`crate::db::broadcast::quotes_payloads`]).
//!
//! Only committed rows are ever sent. A row never replaces a newer one of its ticker (by event
//! time and sequence), pending or already sent, so a batch retried or replayed from the spool
//! after a newer one cannot move the live view back in time. A failed send keeps its rows
//! pending (newest wins) and is tried again at the next tick. Nothing is sent while nothing
//! changed. A send starts at least one interval after the previous one ended, so messages
//! reach Realtime at least `REALTIME_INTERVAL` apart. The send runs beside the receive loop, so the channel is drained even while the
//! database is slow.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::conn::ConnectSettings;
use super::insert::{LATEST_QUOTES_SQL, check_params, column_arrays};
use crate::counters::PipelineStats;
use crate::db::SinkError;
use crate::db::broadcast::{QUOTES_EVENT, quotes_payloads};
use crate::db::columns::LATEST_QUOTES;
use crate::db::error::DbError;
use crate::rows::EquityRow;

/// The Broadcast call; `realtime.send` turns its own errors into warnings.
pub const REALTIME_SEND_SQL: &str = "SELECT realtime.send($1, $2, $3, false)";

/// Committed batches waiting for the task. Full: the sink waits for room. The task only
/// merges rows into its map while receiving (its database work runs beside the receive loop,
/// never in it), so a wait lasts a few in-memory merges, never a database round trip.
const CHANNEL_CAPACITY: usize = 256;

/// What the task does.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// `REALTIME_INTERVAL`.
    pub interval: Duration,
    /// Send `realtime.send` (Broadcast is configured and the function exists).
    pub broadcast: bool,
    /// Upsert `latest_quotes` (postgres_changes is configured).
    pub latest_quotes: bool,
    /// `REALTIME_TOPIC`.
    pub topic: String,
    /// The largest payload of one `realtime.send` (the plan's limit less some room).
    pub max_payload_bytes: usize,
}

enum Command {
    /// The newest committed row of each ticker of one batch.
    Rows(Vec<EquityRow>),
    /// Send what is pending (at the cadence), then answer and close the connection.
    Flush(oneshot::Sender<()>),
}

/// The handle the sink keeps: cheap to clone; the task ends (after sending what is pending)
/// when the last handle is gone.
#[derive(Debug, Clone)]
pub struct LiveCadence {
    tx: mpsc::Sender<Command>,
    latest_quotes: bool,
}

impl LiveCadence {
    /// Starts the task; it connects with `connect` when it first has something to send.
    pub fn spawn(
        connect: ConnectSettings,
        settings: LiveSettings,
        stats: Arc<PipelineStats>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let latest_quotes = settings.latest_quotes;
        tokio::spawn(run(rx, connect, settings, stats));
        Self { tx, latest_quotes }
    }

    /// True when this task, not the flush, keeps `latest_quotes` (postgres_changes).
    pub fn owns_latest_quotes(&self) -> bool {
        self.latest_quotes
    }

    /// Hands over the newest committed row of each ticker of a batch (see
    /// [`CHANNEL_CAPACITY`] for a full channel).
    pub async fn committed(&self, rows: Vec<EquityRow>) {
        if rows.is_empty() {
            return;
        }
        if self.tx.send(Command::Rows(rows)).await.is_err() {
            tracing::debug!("the live cadence task has ended; rows not sent to Realtime");
        }
    }

    /// Waits (at most `wait`) until what is pending now was sent or given up, e.g. before
    /// the service stops.
    pub async fn flush(&self, wait: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Flush(tx)).await.is_err() {
            return;
        }
        if tokio::time::timeout(wait, rx).await.is_err() {
            tracing::warn!(
                ?wait,
                "the last Realtime update was not sent in time before the stop (see the log for the database error)"
            );
        }
    }
}

/// Event time and sequence: which of two rows of a ticker is newer.
type Key = (DateTime<Utc>, i32);

fn key(row: &EquityRow) -> Key {
    (row.timestamp, row.seq)
}

/// The task's state: what waits, and what was sent.
#[derive(Default)]
struct Pending {
    rows: HashMap<Arc<str>, EquityRow>,
    /// The newest row sent of each ticker.
    sent: HashMap<Arc<str>, Key>,
}

impl Pending {
    /// Keeps `row` unless a newer (or the same) row of its ticker is pending or was sent.
    fn merge(&mut self, row: EquityRow) {
        let k = key(&row);
        if self.sent.get(&row.ticker).is_some_and(|s| *s >= k) {
            return;
        }
        match self.rows.get(&row.ticker) {
            Some(p) if key(p) > k => {}
            _ => {
                self.rows.insert(row.ticker.clone(), row);
            }
        }
    }

    /// Takes everything pending, in ticker order (stable messages for the front end).
    fn take(&mut self) -> Vec<EquityRow> {
        let mut rows: Vec<EquityRow> = self.rows.drain().map(|(_, r)| r).collect();
        rows.sort_by(|a, b| a.ticker.cmp(&b.ticker));
        rows
    }

    fn mark_sent(&mut self, rows: &[EquityRow]) {
        for r in rows {
            let k = key(r);
            let e = self.sent.entry(r.ticker.clone()).or_insert(k);
            *e = (*e).max(k);
        }
    }
}

/// The task's connection and its statements.
struct LiveConn {
    client: Client,
    driver: tokio::task::AbortHandle,
    begin: Statement,
    commit: Statement,
    latest_quotes: Statement,
    send: Option<Statement>,
}

impl Drop for LiveConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl LiveConn {
    async fn open(connect: &ConnectSettings, broadcast: bool) -> Result<Self, SinkError> {
        let (client, driver) = connect.connect().await?;
        let sql = LATEST_QUOTES_SQL.clone();
        let prepare = |what: &'static str, sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|e| SinkError::new(format!("prepare the {what} statement"), e))
            }
        };
        let (begin, commit, latest_quotes) = futures::try_join!(
            prepare("BEGIN", "BEGIN".into()),
            prepare("COMMIT", "COMMIT".into()),
            prepare("latest_quotes", sql),
        )?;
        check_params(&latest_quotes, &LATEST_QUOTES)?;
        let send = if broadcast {
            Some(
                client
                    .prepare_typed(REALTIME_SEND_SQL, &[Type::JSONB, Type::TEXT, Type::TEXT])
                    .await
                    .map_err(|e| SinkError::new("prepare realtime.send", e))?,
            )
        } else {
            None
        };
        Ok(Self {
            client,
            driver,
            begin,
            commit,
            latest_quotes,
            send,
        })
    }
}

/// What one send did.
struct Sent {
    messages: u64,
}

/// One send's outcome, with its connection and rows handed back.
type Attempt = (Option<LiveConn>, Vec<EquityRow>, Result<Sent, SinkError>);

/// One transaction: `BEGIN`, the `latest_quotes` upsert, each `realtime.send`, `COMMIT`,
/// pipelined (one round trip).
async fn send(
    conn: &mut Option<LiveConn>,
    connect: &ConnectSettings,
    settings: &LiveSettings,
    rows: &[EquityRow],
) -> Result<Sent, SinkError> {
    if conn.as_ref().is_some_and(|c| c.client.is_closed()) {
        *conn = None;
    }
    let c = match conn {
        Some(c) => c,
        None => conn.insert(LiveConn::open(connect, settings.broadcast).await?),
    };
    let refs: Vec<&EquityRow> = rows.iter().collect();
    let payloads = match &c.send {
        Some(_) => quotes_payloads(&refs, settings.max_payload_bytes),
        None => Vec::new(),
    };
    let latest_params = settings
        .latest_quotes
        .then(|| column_arrays(&LATEST_QUOTES, refs.iter().copied()));
    let topic = settings.topic.as_str();
    type Pending<'a> =
        Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a>>;
    let client = &c.client;
    let mut steps: Vec<(&'static str, Pending<'_>)> = vec![(
        "begin the Realtime transaction",
        Box::pin(client.execute(&c.begin, &[])),
    )];
    if let Some(params) = &latest_params {
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let statement = &c.latest_quotes;
        steps.push((
            "upsert into latest_quotes",
            Box::pin(async move { client.execute(statement, &params).await }),
        ));
    }
    if let Some(statement) = &c.send {
        for payload in &payloads {
            steps.push((
                "broadcast with realtime.send",
                Box::pin(async move {
                    client
                        .execute(
                            statement,
                            &[payload as &(dyn ToSql + Sync), &QUOTES_EVENT, &topic],
                        )
                        .await
                }),
            ));
        }
    }
    steps.push((
        "commit the Realtime transaction",
        Box::pin(client.execute(&c.commit, &[])),
    ));
    let (actions, futures): (Vec<_>, Vec<_>) = steps.into_iter().unzip();
    let results = futures::future::join_all(futures).await;
    for (action, result) in actions.into_iter().zip(results) {
        // The first failure is the one to act on (later ones say "transaction is aborted");
        // COMMIT after a failure rolled the transaction back.
        result.map_err(|e| SinkError::new(action, e))?;
    }
    Ok(Sent {
        messages: payloads.len() as u64,
    })
}

/// How long one send may take before its connection is given up.
fn deadline(connect: &ConnectSettings) -> Duration {
    let t = connect.statement_timeout();
    t + t.min(Duration::from_secs(5))
}

async fn run(
    mut rx: mpsc::Receiver<Command>,
    connect: ConnectSettings,
    settings: LiveSettings,
    stats: Arc<PipelineStats>,
) {
    let settings = Arc::new(settings);
    let mut pending = Pending::default();
    let mut conn: Option<LiveConn> = None;
    let mut inflight: Option<Pin<Box<dyn Future<Output = Attempt> + Send>>> = None;
    let mut next_send = Instant::now();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    let mut open = true;
    let mut failing = false;
    loop {
        if inflight.is_none() {
            if pending.rows.is_empty() {
                // Nothing to send: flush requests are answered, and the connection closed
                // after one (the service is stopping; it is made again when needed).
                if !waiters.is_empty() {
                    waiters.drain(..).for_each(|w| {
                        let _ = w.send(());
                    });
                    conn = None;
                }
                if !open {
                    return;
                }
            } else if Instant::now() >= next_send {
                next_send = Instant::now() + settings.interval;
                let rows = pending.take();
                let mut c = conn.take();
                let (connect, settings) = (connect.clone(), settings.clone());
                let limit = deadline(&connect);
                inflight = Some(Box::pin(async move {
                    let result =
                        match tokio::time::timeout(limit, send(&mut c, &connect, &settings, &rows))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => {
                                c = None;
                                Err(SinkError::new(
                                    "send the Realtime update",
                                    DbError::Timeout(limit),
                                ))
                            }
                        };
                    (c, rows, result)
                }));
            }
        }
        let due = inflight.is_none() && !pending.rows.is_empty();
        tokio::select! {
            command = rx.recv(), if open => match command {
                Some(Command::Rows(rows)) => rows.into_iter().for_each(|r| pending.merge(r)),
                Some(Command::Flush(w)) => waiters.push(w),
                None => open = false,
            },
            _ = tokio::time::sleep_until(next_send), if due => {}
            Some((c, rows, result)) = futures::future::OptionFuture::from(inflight.as_mut()), if inflight.is_some() => {
                inflight = None;
                // The next send starts one interval after this one ended, so Realtime sees
                // messages at least REALTIME_INTERVAL apart even when a send was slow.
                next_send = next_send.max(Instant::now() + settings.interval);
                match result {
                    Ok(sent) => {
                        if failing {
                            tracing::info!("Realtime updates are sent again");
                            failing = false;
                        }
                        pending.mark_sent(&rows);
                        stats.realtime_sends.fetch_add(1, Relaxed);
                        stats.realtime_messages.fetch_add(sent.messages, Relaxed);
                        stats.realtime_quotes.fetch_add(rows.len() as u64, Relaxed);
                        stats.realtime_last_send_unix_ms.store(Utc::now().timestamp_millis(), Relaxed);
                        conn = c;
                    }
                    Err(e) => {
                        stats.realtime_failures.fetch_add(1, Relaxed);
                        if !failing {
                            tracing::warn!(error = %e, tickers = rows.len(), "sending the Realtime update failed (Broadcast / latest_quotes); the newest rows are kept and sent again at the next tick: check that the database is reachable");
                            failing = true;
                        } else {
                            tracing::debug!(error = %e, "sending the Realtime update failed again");
                        }
                        // A server error leaves the connection usable; anything else drops it.
                        let keep = matches!(&e.source, DbError::Postgres(pg) if pg.as_db_error().is_some());
                        conn = c.filter(|_| keep);
                        rows.into_iter().for_each(|r| pending.merge(r));
                        if !open {
                            tracing::warn!("the service is stopping: the last Realtime update is given up");
                            waiters.drain(..).for_each(|w| {
                                let _ = w.send(());
                            });
                            return;
                        }
                        if !waiters.is_empty() {
                            // A stop is waiting: give up rather than retry until its deadline.
                            tracing::warn!("the service is stopping: the last Realtime update is given up");
                            pending.rows.clear();
                        }
                    }
                }
                stats.realtime_pending.store(pending.rows.len() as u64, Relaxed);
            },
            // Cannot happen (the receive branch is on while open, and once closed the task
            // returns when nothing is pending or in flight).
            else => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ticker: &str, ms: i64, seq: i32, price: f64) -> EquityRow {
        EquityRow {
            ticker: Arc::from(ticker),
            timestamp: DateTime::from_timestamp_millis(ms).expect("time"),
            seq,
            quote: crate::schwab::wire::EquityFields {
                last: Some(price),
                ..Default::default()
            },
            indicators: Default::default(),
        }
    }

    #[test]
    fn the_newest_row_wins_pending_or_sent() {
        let mut p = Pending::default();
        p.merge(row("A", 2_000, 0, 2.0));
        p.merge(row("A", 1_000, 0, 1.0));
        p.merge(row("B", 1_000, 0, 1.0));
        p.merge(row("B", 1_000, 1, 1.5));
        let taken = p.take();
        let prices: Vec<_> = taken
            .iter()
            .map(|r| (r.ticker.to_string(), r.quote.last))
            .collect();
        assert_eq!(
            prices,
            [("A".to_string(), Some(2.0)), ("B".to_string(), Some(1.5))],
            "ticker order, newest of each"
        );
        p.mark_sent(&taken);
        // A replayed older (or the same) row is not sent again; a newer one is.
        p.merge(row("A", 2_000, 0, 2.0));
        p.merge(row("B", 500, 0, 0.5));
        assert!(p.rows.is_empty());
        p.merge(row("A", 3_000, 0, 3.0));
        assert_eq!(p.take().len(), 1);
    }
}
