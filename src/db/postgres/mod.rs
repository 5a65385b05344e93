//! PostgreSQL sink (Supabase or any PostgreSQL 13+).
//!
//! One transaction per batch: quote inserts (`UNNEST` of column arrays, one statement per
//! table whatever the batch size), candle upserts and the `latest_quotes` upsert (left to the
//! live cadence with postgres_changes), all pipelined on one tokio-postgres connection so a
//! flush costs one round trip ([`insert::flush`], [`conn`]). Daily partitions the batch needs
//! are created first. After the commit, the batch's newest rows go to the live cadence
//! ([`live_cadence`]), which feeds Supabase Realtime every `REALTIME_INTERVAL` on a
//! connection of its own.
//!
//! Everything else is on other tokio-postgres connections made with the same settings: one
//! shared connection for short statements (partitions, stream gaps, Realtime setup, token
//! reads; tokio-postgres pipelines concurrent queries on it), made again after it failed, and
//! a connection of their own for migrations, retention, the warm start and the token refresh
//! lock ([`PostgresSink::session`]), closed when they are done.

pub mod conn;
pub mod copy;
pub mod insert;
pub mod live_cadence;
pub mod partitions;
pub mod realtime;
pub mod size_guard;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{Days, NaiveDate};
use tokio_postgres::types::Type;

use super::error::DbError;
use super::migrate::{self, MigrationReport};
use super::{
    DbSettings, GUARD_STEPS, GuardReport, RealtimeMode, RetentionDays, SinkError, WriteReport,
};
use crate::counters::PipelineStats;
use crate::db::{ACCOUNT_ACTIVITY_RETENTION, CANDLE_TABLES};
use crate::rows::{Batch, EquityRow};
use live_cadence::{LiveCadence, LiveSettings};
use partitions::{PartitionCache, TICK_TABLES};

/// `statement_timeout` of the shared connection (short statements; creating a partition may
/// move rows out of the DEFAULT partition).
pub const SHARED_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes batches into PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresSink {
    shared: Arc<Shared>,
}

/// A tokio-postgres connection and its driver task (derefs to the client).
pub struct PgConn {
    client: tokio_postgres::Client,
    driver: tokio::task::AbortHandle,
}

impl std::ops::Deref for PgConn {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl std::ops::DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

impl PgConn {
    async fn open(settings: &conn::ConnectSettings) -> Result<Self, SinkError> {
        let (client, driver) = settings.connect().await?;
        Ok(Self { client, driver })
    }

    /// Closes the connection: the driver says goodbye to the server once the client is gone;
    /// a peer that does not answer within a second is cut off. (Dropped without `close`, the
    /// driver still ends, at the latest when keepalive gives the peer up.)
    pub async fn close(self) {
        let Self { client, driver } = self;
        drop(client);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while !driver.is_finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        driver.abort();
    }
}

struct Shared {
    /// How the writer connection is made.
    connect: conn::ConnectSettings,
    /// How the shared connection is made.
    other: conn::ConnectSettings,
    /// How a session of its own is made (the server's statement timeout).
    session: conn::ConnectSettings,
    /// The shared connection; `None` before first use and after it closed.
    aux: tokio::sync::Mutex<Option<Arc<PgConn>>>,
    /// The writer connection and its prepared statements; `None` after it failed.
    writer: tokio::sync::Mutex<Option<WriterConn>>,
    realtime_mode: RealtimeMode,
    realtime_topic: String,
    realtime_interval: Duration,
    realtime_max_payload_bytes: usize,
    /// Set by [`PostgresSink::prepare_realtime`] when `realtime.send` exists.
    broadcast: AtomicBool,
    /// The live cadence, started by [`PostgresSink::prepare_realtime`] when Realtime has
    /// anything to do; `None` before (the flush then keeps `latest_quotes` itself).
    live: std::sync::Mutex<Option<LiveCadence>>,
    partitions: PartitionCache,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("connect", &self.connect)
            .field("realtime_mode", &self.realtime_mode)
            .field("realtime_topic", &self.realtime_topic)
            .field("broadcast", &self.broadcast)
            .finish_non_exhaustive()
    }
}

/// One tokio-postgres connection with the flush's statements prepared on it (at its first
/// flush: the service connects before it migrates).
struct WriterConn {
    client: tokio_postgres::Client,
    prepared: Option<insert::Prepared>,
    driver: tokio::task::AbortHandle,
}

impl WriterConn {
    async fn open(settings: &conn::ConnectSettings) -> Result<Self, SinkError> {
        let (client, driver) = settings.connect().await?;
        Ok(Self {
            client,
            prepared: None,
            driver,
        })
    }
}

impl Drop for WriterConn {
    /// Closes the socket even when the peer stopped answering.
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How long a flush may wait for the server's answers before the connection is given up:
/// the statement timeout plus as much again (at most 5 s) for the network.
fn flush_deadline(statement_timeout: Duration) -> Duration {
    statement_timeout + statement_timeout.min(Duration::from_secs(5))
}

/// How long a stop waits for the live cadence's last send (besides one interval).
fn live_cadence_deadline(statement_timeout: Duration) -> Duration {
    flush_deadline(statement_timeout)
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Maintenance {
    pub partitions_created: u32,
    pub partitions_dropped: u32,
    pub bars_deleted: u64,
    /// `batch_ledger` entries (and quarantined `rejected_rows`) older than the tick retention.
    pub ledger_deleted: u64,
    pub database_bytes: u64,
}

impl PostgresSink {
    /// Connects to `url` (the PostgreSQL `settings.target`): the writer connection (the
    /// others are made when first needed).
    pub async fn connect(url: &str, settings: &DbSettings) -> Result<Self, SinkError> {
        Self::connect_with(url, settings, conn::ConnectSettings::from_url(url)?).await
    }

    /// [`connect`](Self::connect) with explicit writer-connection settings (timeouts); the
    /// other connections use `url` with their own statement timeouts.
    pub async fn connect_with(
        url: &str,
        settings: &DbSettings,
        writer_settings: conn::ConnectSettings,
    ) -> Result<Self, SinkError> {
        let mut other = conn::ConnectSettings::from_url(url)?;
        other.set_statement_timeout(SHARED_STATEMENT_TIMEOUT);
        let mut session = other.clone();
        session.set_statement_timeout(Duration::ZERO);
        let writer = WriterConn::open(&writer_settings).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                connect: writer_settings,
                other,
                session,
                aux: tokio::sync::Mutex::new(None),
                writer: tokio::sync::Mutex::new(Some(writer)),
                realtime_mode: settings.realtime_mode,
                realtime_topic: settings.realtime_topic.clone(),
                realtime_interval: settings.realtime_interval,
                realtime_max_payload_bytes: settings.realtime_max_payload_bytes,
                broadcast: AtomicBool::new(false),
                live: std::sync::Mutex::new(None),
                partitions: PartitionCache::default(),
            }),
        })
    }

    /// The shared connection for short statements, made again if it closed.
    pub async fn shared_conn(&self) -> Result<Arc<PgConn>, SinkError> {
        let mut slot = self.shared.aux.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(PgConn::open(&self.shared.other).await?);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    /// A connection of its own that has run `LISTEN channel`: every `NOTIFY` on it wakes
    /// `wake`. Abort the handle to close it.
    pub async fn listen(
        &self,
        channel: &str,
        wake: tokio::sync::mpsc::Sender<()>,
    ) -> Result<(tokio_postgres::Client, tokio::task::AbortHandle), SinkError> {
        let (client, driver) = self.shared.other.connect_notified(Some(wake)).await?;
        if let Err(e) = client.batch_execute(&format!("LISTEN {channel}")).await {
            driver.abort();
            return Err(SinkError::new(format!("LISTEN {channel}"), e));
        }
        Ok((client, driver))
    }

    /// A connection of its own (no statement timeout but the server's), for long work or a
    /// transaction; [`PgConn::close`] it when done.
    pub async fn session(&self) -> Result<PgConn, SinkError> {
        PgConn::open(&self.shared.session).await
    }

    /// Sends what the live cadence holds (at its cadence, waiting at most one interval plus
    /// the statement timeout), then closes the shared and the writer connections (made again
    /// if the sink is used later).
    pub async fn close(&self) {
        if let Some(live) = self.live() {
            let wait = self.shared.realtime_interval
                + live_cadence_deadline(self.shared.connect.statement_timeout());
            live.flush(wait).await;
        }
        let aux = self.shared.aux.lock().await.take();
        if let Some(c) = aux.and_then(|c| Arc::try_unwrap(c).ok()) {
            c.close().await;
        }
        *self.shared.writer.lock().await = None;
    }

    /// Applies the embedded PostgreSQL migrations ([`migrate`]) on a connection of their own.
    pub async fn migrate(&self) -> Result<MigrationReport, SinkError> {
        let mut session = self.session().await?;
        let report = migrate::postgres(&mut session).await;
        session.close().await;
        report
    }

    /// Sets up Realtime for `REALTIME_MODE` (publication membership, Broadcast availability)
    /// and starts the live cadence when there is anything to feed (counted in `stats`).
    pub async fn prepare_realtime(&self, stats: Arc<PipelineStats>) -> Result<(), SinkError> {
        let conn = self.shared_conn().await?;
        let mode = self.shared.realtime_mode;
        let can_broadcast = realtime::prepare(&conn, mode).await?;
        self.shared
            .broadcast
            .store(can_broadcast, Ordering::Relaxed);
        let live = (can_broadcast || mode.postgres_changes()).then(|| {
            LiveCadence::spawn(
                self.shared.connect.clone(),
                LiveSettings {
                    interval: self.shared.realtime_interval,
                    broadcast: can_broadcast,
                    latest_quotes: mode.postgres_changes(),
                    topic: self.shared.realtime_topic.clone(),
                    max_payload_bytes: self.shared.realtime_max_payload_bytes,
                },
                stats,
            )
        });
        // A cadence started before (prepared twice) ends once it sent what it holds.
        *self.lock_live() = live;
        Ok(())
    }

    /// Whether Realtime gets Broadcast messages (mode includes broadcast and `realtime.send`
    /// exists).
    pub fn broadcasts(&self) -> bool {
        self.shared.broadcast.load(Ordering::Relaxed)
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, Option<LiveCadence>> {
        // Only ever held for a clone or a replacement: a poisoned lock still holds a value.
        self.shared
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn live(&self) -> Option<LiveCadence> {
        self.lock_live().clone()
    }

    /// Writes one batch in one transaction, pipelined on the writer connection (made again
    /// first when the last one failed).
    pub async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        let missing = self.shared.partitions.missing_for(batch);
        if !missing.is_empty() {
            let conn = self.shared_conn().await?;
            for (table, day) in missing {
                self.shared.partitions.ensure(&conn, table, day).await?;
            }
        }
        let mut slot = self.shared.writer.lock().await;
        if slot.as_ref().is_some_and(|w| w.client.is_closed()) {
            *slot = None;
        }
        let writer = match &mut *slot {
            Some(w) => w,
            None => slot.insert(WriterConn::open(&self.shared.connect).await?),
        };
        let live = self.live();
        let latest_quotes = !live.as_ref().is_some_and(LiveCadence::owns_latest_quotes);
        let deadline = flush_deadline(self.shared.connect.statement_timeout());
        let flush = async {
            let prepared = match &mut writer.prepared {
                Some(p) => p,
                None => writer
                    .prepared
                    .insert(insert::Prepared::new(&writer.client).await?),
            };
            insert::flush(&writer.client, prepared, batch, latest_quotes).await
        };
        let result = match tokio::time::timeout(deadline, flush).await {
            Ok(result) => result,
            Err(_) => Err(SinkError::new("write a batch", DbError::Timeout(deadline))),
        };
        // A server error leaves the connection usable (the transaction was rolled back);
        // anything else (timeout, I/O, closed), or a flush that left the connection out of
        // step, may leave it mid-transaction: drop it and connect again for the next write.
        let keep = match &result {
            Ok(_) => true,
            Err(e) => matches!(&e.source, DbError::Postgres(pg) if pg.as_db_error().is_some()),
        };
        let unusable = writer.prepared.as_ref().is_some_and(|p| p.unusable);
        if !keep || unusable || writer.client.is_closed() {
            *slot = None;
        }
        drop(slot);
        // Committed (now or by an earlier attempt): its newest rows go to Realtime.
        if let (Ok(_), Some(live)) = (&result, &live) {
            let rows: Vec<EquityRow> = batch
                .latest_quotes()
                .into_iter()
                .map(std::borrow::Cow::into_owned)
                .collect();
            live.committed(rows).await;
        }
        result.map(|flushed| WriteReport {
            copied_rows: flushed.copied_rows,
            ..WriteReport::committed(batch, flushed.inserted, flushed.already_committed)
        })
    }

    /// The size guard: when the database is at `act_at` bytes or more, drops the oldest tick
    /// days (never `today`), then deletes the oldest days of candles, until it is below
    /// `target` bytes. On a read-only database this maintenance session alone overrides the
    /// read-only default to remove data (Supabase's documented recovery); it never inserts.
    pub async fn guard_size(
        &self,
        act_at: u64,
        target: u64,
        today: NaiveDate,
    ) -> Result<GuardReport, SinkError> {
        let session = self.session().await?;
        let result = guard_on(&session, act_at, target, today).await;
        session.close().await;
        if result.as_ref().is_ok_and(|r| r.partitions_dropped > 0) {
            self.shared.partitions.clear();
        }
        result
    }

    /// Retention and sizing: partitions for `today - 1 ..= today + premake`, drop tick
    /// partitions older than the retention, delete old candles, measure the database.
    pub async fn maintain(
        &self,
        keep: &RetentionDays,
        today: NaiveDate,
    ) -> Result<Maintenance, SinkError> {
        let session = self.session().await?;
        let result = self.maintain_on(&session, keep, today).await;
        session.close().await;
        result
    }

    async fn maintain_on(
        &self,
        conn: &tokio_postgres::Client,
        keep: &RetentionDays,
        today: NaiveDate,
    ) -> Result<Maintenance, SinkError> {
        let mut report = Maintenance::default();
        let first = today.checked_sub_days(Days::new(1)).unwrap_or(today);
        for offset in 0..=u64::from(keep.partition_premake) + 1 {
            let Some(day) = first.checked_add_days(Days::new(offset)) else {
                break;
            };
            for table in TICK_TABLES {
                if self.shared.partitions.ensure(conn, table, day).await? {
                    report.partitions_created += 1;
                }
            }
        }
        let tick_cutoff = today
            .checked_sub_days(Days::new(u64::from(keep.ticks)))
            .unwrap_or(today);
        for table in TICK_TABLES {
            report.partitions_dropped += partitions::drop_before(conn, table, tick_cutoff)
                .await?
                .max(0) as u32;
        }
        if report.partitions_dropped > 0 {
            self.shared.partitions.clear();
        }
        let bar_cutoff = today
            .checked_sub_days(Days::new(u64::from(keep.bars)))
            .unwrap_or(today);
        for table in CANDLE_TABLES {
            report.bars_deleted += conn
                .execute_typed(
                    &format!(
                        "DELETE FROM {table} WHERE bar_start < $1::date::timestamp AT TIME ZONE 'UTC'"
                    ),
                    &[(&bar_cutoff, Type::DATE)],
                )
                .await
                .map_err(|e| SinkError::new(format!("delete old {table}"), e))?;
        }
        let (table, column) = ACCOUNT_ACTIVITY_RETENTION;
        report.bars_deleted += conn
            .execute_typed(
                &format!(
                    "DELETE FROM {table} WHERE {column} < $1::date::timestamp AT TIME ZONE 'UTC'"
                ),
                &[(&bar_cutoff, Type::DATE)],
            )
            .await
            .map_err(|e| SinkError::new(format!("delete old {table}"), e))?;
        // A batch can only come back while its rows are kept: the ledger follows the ticks.
        report.ledger_deleted = conn
            .execute_typed(
                "DELETE FROM batch_ledger WHERE committed_at < $1::date::timestamp AT TIME ZONE 'UTC'",
                &[(&tick_cutoff, Type::DATE)],
            )
            .await
            .map_err(|e| SinkError::new("delete old batch_ledger entries", e))?;
        // Quarantined rows are kept as long as the ticks they came with.
        report.ledger_deleted += conn
            .execute_typed(
                "DELETE FROM rejected_rows WHERE rejected_at < $1::date::timestamp AT TIME ZONE 'UTC'",
                &[(&tick_cutoff, Type::DATE)],
            )
            .await
            .map_err(|e| SinkError::new("delete old rejected_rows", e))?;
        let bytes: i64 = conn
            .query_typed_one("SELECT pg_database_size(current_database())", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| SinkError::new("measure the database size", e))?;
        report.database_bytes = bytes.max(0) as u64;
        Ok(report)
    }
}

async fn guard_on(
    client: &tokio_postgres::Client,
    act_at: u64,
    target: u64,
    today: NaiveDate,
) -> Result<GuardReport, SinkError> {
    let mut report = GuardReport {
        bytes_before: size_guard::database_bytes(client).await?,
        ..GuardReport::default()
    };
    report.bytes_after = report.bytes_before;
    if report.bytes_before < act_at {
        return Ok(report);
    }
    report.read_only = size_guard::allow_removal_when_read_only(client).await?;
    for _ in 0..GUARD_STEPS {
        if report.bytes_after < target {
            break;
        }
        let oldest = size_guard::tick_days(client)
            .await?
            .into_iter()
            .find(|d| *d < today);
        match oldest {
            Some(day) => {
                report.partitions_dropped += size_guard::drop_through(client, day).await?;
                report.days_dropped.push(day);
            }
            None => {
                // Only today's ticks left: candles go, oldest day first. DELETE frees space
                // for reuse but does not shrink the database until vacuum, so one day per pass.
                report.candles_deleted +=
                    size_guard::delete_oldest_candle_day(client, today).await?;
                report.bytes_after = size_guard::database_bytes(client).await?;
                break;
            }
        }
        report.bytes_after = size_guard::database_bytes(client).await?;
    }
    Ok(report)
}
