//! The writer task: buffer, flush triggers, group commit, retry and drain.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures::future::OptionFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::isolate::{append_to_file, write_isolating};
use crate::backoff::Backoff;
use crate::counters::PipelineStats;
use crate::db::error::REFUSED_RETRY;
use crate::db::{ErrorKind, Sink, SinkError, WriteReport};
use crate::rows::{Batch, Row};
use crate::spool::{RecordId, Spool};

/// Messages the writer's input channel holds (each one is the rows of one frame). When the
/// channel is full the sender waits; in practice it stays short because the writer takes
/// messages as they come whenever its buffer has room.
pub const INPUT_CHANNEL_CAPACITY: usize = 1024;

/// What the writer does when its in-memory buffer holds `BUFFER_MAX_ROWS` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Live streaming: drop the oldest buffered row for each new one and count it
    /// (`rows_dropped`), so the Schwab socket is never stalled by a slow database.
    DropOldest,
    /// Replay and other finite sources: stop taking rows until there is room, which makes
    /// the producer wait. Nothing is lost.
    Backpressure,
}

/// How the writer batches and retries (the app wiring, `crate::settings`, fills it in from
/// the configuration).
#[derive(Debug, Clone)]
pub struct WriterSettings {
    pub batch_size: usize,
    pub batch_interval: Duration,
    pub buffer_max_rows: usize,
    pub max_rows_per_write: usize,
    pub overflow: OverflowPolicy,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// After the input closes, how long transient failures may keep being retried.
    pub shutdown_grace: Duration,
    /// Where batches go while the database is down or the buffer is full; `None` keeps
    /// everything in memory (replay, or `SPOOL_DIR=off`).
    pub spool: Option<SpoolSettings>,
    /// Where rejected rows go when the database cannot store them in `rejected_rows`
    /// (JSON Lines).
    pub quarantine_file: std::path::PathBuf,
}

/// The disk spool's place and size cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    pub dir: std::path::PathBuf,
    pub max_bytes: u64,
}

/// What the writer did over its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterReport {
    pub rows_written: u64,
    /// Rows lost: buffer overflow without a spool, or the spool's size cap.
    pub rows_dropped: u64,
    /// Rows that went through the disk spool.
    pub rows_spooled: u64,
    /// Rows left in the spool at exit (written at the next start).
    pub rows_left_in_spool: u64,
    pub writes: u64,
    pub retries: u64,
    /// Rows the database rejected, kept in the quarantine (table or file).
    pub rows_quarantined: u64,
}

/// Why the writer stopped without writing everything.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(
        "database write failed and will not be retried, {unwritten} row(s) not written: {source}"
    )]
    Permanent {
        #[source]
        source: SinkError,
        unwritten: usize,
    },
    #[error(
        "stopped after the shutdown grace period with {unwritten} row(s) not written; last error: {source}"
    )]
    ShutdownTimedOut {
        #[source]
        source: SinkError,
        unwritten: usize,
    },
}

/// The writer's input and its task.
pub struct WriterHandle {
    /// Send each frame's rows here; drop every sender to drain and stop the writer.
    pub tx: mpsc::Sender<Vec<Row>>,
    pub task: JoinHandle<Result<WriterReport, WriterError>>,
}

/// Starts the writer task.
pub fn spawn_writer<S: Sink>(
    sink: Arc<S>,
    settings: WriterSettings,
    stats: Arc<PipelineStats>,
) -> WriterHandle {
    let (tx, rx) = mpsc::channel(INPUT_CHANNEL_CAPACITY);
    let task = tokio::spawn(run(sink, settings, stats, rx));
    WriterHandle { tx, task }
}

/// Where the batch in flight came from.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Memory,
    Spool(RecordId),
}

/// A committed write: what went in, and the rows the database rejected.
#[derive(Debug, Default)]
struct Committed {
    report: WriteReport,
    /// Rejected rows stored in the quarantine (table or file).
    quarantined: u64,
    /// Rejected rows that could be stored nowhere (counted as dropped).
    lost: u64,
}

/// A finished write: the batch, where it came from, when its rows arrived, how long the
/// write took, and its result.
type WriteDone = (
    Arc<Batch>,
    Origin,
    Arrivals,
    Duration,
    Result<Committed, SinkError>,
);

/// The write in flight, as the writer's state sees it (the batch is shared with the write).
struct InFlight {
    batch: Arc<Batch>,
    /// Fresh rows (not read back from the spool).
    memory: bool,
    started: Instant,
    /// A copy went to the spool because the write took longer than `BATCH_INTERVAL`.
    spooled: bool,
}

/// Writes `batch`, isolating and quarantining rows the database rejects.
async fn write_batch<S: Sink>(
    sink: &S,
    batch: &Batch,
    quarantine_file: &std::path::Path,
) -> Result<Committed, SinkError> {
    let isolated = write_isolating(sink, batch).await?;
    let mut done = Committed {
        report: isolated.report,
        ..Committed::default()
    };
    let rejected = isolated.rejected;
    if rejected.is_empty() {
        return Ok(done);
    }
    let n = rejected.len() as u64;
    match sink.quarantine(&rejected).await {
        Ok(()) => {
            tracing::warn!(rows = n, batch = %batch.id, "rows rejected by the database were stored in rejected_rows (see SCHEMA.md); the rest of the batch is written");
            done.quarantined = n;
        }
        Err(e) => match append_to_file(quarantine_file, &rejected) {
            Ok(()) => {
                tracing::warn!(rows = n, file = %quarantine_file.display(), error = %e, "rows rejected by the database were written to the quarantine file (rejected_rows could not take them)");
                done.quarantined = n;
            }
            Err(io) => {
                tracing::error!(rows = n, file = %quarantine_file.display(), error = %io, table_error = %e, "rows rejected by the database could be kept nowhere and are lost (counted as dropped): make the quarantine file's folder writable");
                done.lost = n;
            }
        },
    }
    Ok(done)
}
type WriteFuture = Pin<Box<dyn Future<Output = WriteDone> + Send>>;

/// When the rows of a batch arrived, as runs of rows that arrived together (one frame's
/// rows share an instant), oldest first: for `oldest` and the tick-to-commit histogram
/// without keeping one instant per row. Rows read back from the spool have none.
#[derive(Debug, Default)]
struct Arrivals {
    runs: Vec<(Instant, u32)>,
}

impl Arrivals {
    fn push(&mut self, at: Instant) {
        match self.runs.last_mut() {
            Some((t, n)) if *t == at && *n < u32::MAX => *n += 1,
            _ => self.runs.push((at, 1)),
        }
    }

    fn oldest(&self) -> Option<Instant> {
        self.runs.first().map(|r| r.0)
    }

    /// Records each row's arrival-to-`now` time.
    fn record(&self, histogram: &metrics::Histogram, now: Instant) {
        for (at, n) in &self.runs {
            histogram.record_many(now.duration_since(*at).as_secs_f64(), *n as usize);
        }
    }
}

struct Buffered {
    at: Instant,
    row: Row,
}

/// Everything the writer owns except the channel and the write in flight.
struct State {
    settings: Arc<WriterSettings>,
    stats: Arc<PipelineStats>,
    buffer: VecDeque<Buffered>,
    /// A batch that failed transiently, with its rows' arrivals; retried at `retry_at`.
    retry: Option<(Batch, Arrivals)>,
    retry_at: Option<Instant>,
    last_error: Option<SinkError>,
    backoff: Backoff,
    /// Slower delays while the database refuses writes.
    refused_backoff: Backoff,
    closed_at: Option<Instant>,
    report: WriterReport,
    last_drop_warning: Option<Instant>,
    /// The disk spool, when configured and usable.
    spool: Option<Spool>,
    /// True from a transient failure until the next successful write.
    db_down: bool,
    /// The write in flight, if any.
    inflight: Option<InFlight>,
    /// Batches committed while a copy of them waits in the spool (a slow write was spooled
    /// as a precaution): their copies are dropped from the spool unwritten.
    committed_spooled: std::collections::HashSet<crate::rows::BatchId>,
    last_spool_error: Option<Instant>,
}

async fn run<S: Sink>(
    sink: Arc<S>,
    settings: WriterSettings,
    stats: Arc<PipelineStats>,
    mut rx: mpsc::Receiver<Vec<Row>>,
) -> Result<WriterReport, WriterError> {
    let spool = settings.spool.as_ref().and_then(|s| open_spool(s, &stats));
    let mut st = State {
        backoff: Backoff::new(settings.retry_min, settings.retry_max),
        refused_backoff: Backoff::new(REFUSED_RETRY.0, REFUSED_RETRY.1),
        settings: Arc::new(settings),
        stats,
        buffer: VecDeque::new(),
        retry: None,
        retry_at: None,
        last_error: None,
        closed_at: None,
        report: WriterReport::default(),
        last_drop_warning: None,
        spool,
        db_down: false,
        last_spool_error: None,
        inflight: None,
        committed_spooled: std::collections::HashSet::new(),
    };
    st.publish_depth();
    let mut inflight: Option<WriteFuture> = None;

    loop {
        let now = Instant::now();
        if inflight.is_none() && st.closed_at.is_some() {
            // Stopping while the database is down: park what is in memory on disk and go.
            if st.db_down && st.spool_memory() {
                return Ok(st.final_report());
            }
            if let Some(err) = st.grace_expired(now) {
                return Err(err);
            }
        }
        // While the database is down, due rows go straight to disk instead of waiting in
        // memory for the next attempt: a crash then loses at most one BATCH_INTERVAL.
        if inflight.is_none() && st.db_down && st.backing_off(now) && st.memory_due(now) {
            st.park_memory();
        }
        if inflight.is_none()
            && let Some((batch, origin, arrivals)) = st.next_write(now)
        {
            let sink = sink.clone();
            let quarantine_file = st.settings.quarantine_file.clone();
            let batch = Arc::new(batch);
            st.inflight = Some(InFlight {
                batch: batch.clone(),
                memory: matches!(origin, Origin::Memory),
                started: now,
                spooled: false,
            });
            inflight = Some(Box::pin(async move {
                let started = Instant::now();
                let result = write_batch(&*sink, &batch, &quarantine_file).await;
                (batch, origin, arrivals, started.elapsed(), result)
            }));
        }
        // A write that takes longer than BATCH_INTERVAL (a database that does not answer):
        // its batch and the due rows go to the spool meanwhile, so a crash loses at most one
        // BATCH_INTERVAL whatever the database does.
        if inflight.is_some() {
            st.guard_slow_write(now);
        }
        if inflight.is_none()
            && st.closed_at.is_some()
            && st.buffered() == 0
            && (st.spool.as_ref().is_none_or(Spool::is_empty) || !st.may_replay_while_stopping(now))
        {
            return Ok(st.final_report());
        }

        let wake_at = if inflight.is_some() {
            st.slow_write_wake(now)
        } else {
            st.next_wake()
        };
        // In Backpressure mode a full buffer stops reading, so the producer waits on the channel.
        let can_receive = st.closed_at.is_none()
            && !(st.settings.overflow == OverflowPolicy::Backpressure
                && st.buffered() >= st.settings.buffer_max_rows);

        tokio::select! {
            done = OptionFuture::from(inflight.as_mut()), if inflight.is_some() => {
                inflight = None;
                if let Some((batch, origin, arrivals, took, result)) = done {
                    st.finish_write(batch, origin, arrivals, took, result)?;
                }
            }
            msg = rx.recv(), if can_receive => match msg {
                Some(rows) => st.push(rows),
                None => st.closed_at = Some(Instant::now()),
            },
            _ = tokio::time::sleep_until(wake_at.unwrap_or(now)), if wake_at.is_some() => {}
        }
    }
}

/// Opens the spool; if that fails the writer keeps rows in memory and says so.
fn open_spool(settings: &SpoolSettings, stats: &PipelineStats) -> Option<Spool> {
    match Spool::open(&settings.dir, settings.max_bytes) {
        Ok((spool, recovery)) => {
            if recovery.records > 0 || recovery.dropped_bytes > 0 {
                tracing::info!(
                    rows = recovery.rows,
                    records = recovery.records,
                    dropped_bytes = recovery.dropped_bytes,
                    "spool holds rows from an earlier run; replaying them"
                );
            }
            PipelineStats::add(&stats.spool_bytes_dropped, recovery.dropped_bytes);
            stats.spool_rows.store(spool.counts().rows, Relaxed);
            stats.spool_bytes.store(spool.counts().bytes, Relaxed);
            stats.spool_usable.store(true, Relaxed);
            Some(spool)
        }
        Err(e) => {
            tracing::error!(error = %e, "disk spool unavailable: rows are kept in memory only (bounded by BUFFER_MAX_ROWS)");
            None
        }
    }
}

impl State {
    /// See the loop: parks the in-flight batch and the due buffered rows in the spool once
    /// the write has taken longer than `BATCH_INTERVAL`.
    fn guard_slow_write(&mut self, now: Instant) {
        let interval = self.settings.batch_interval;
        if self.spool.is_none() {
            return;
        }
        let Some(f) = self.inflight.as_ref() else {
            return;
        };
        if now < f.started + interval {
            return;
        }
        if f.memory && !f.spooled {
            let batch = f.batch.clone();
            if self.append_to_spool(&batch)
                && let Some(f) = self.inflight.as_mut()
            {
                f.spooled = true;
                tracing::debug!(batch = %batch.id, "write slower than BATCH_INTERVAL: its batch is also kept in the spool");
            }
        }
        while self.buffer.front().is_some_and(|b| now >= b.at + interval) {
            if !self.spool_oldest_rows() {
                break;
            }
        }
    }

    /// When to look at a slow write again: its `BATCH_INTERVAL` mark, then whenever a
    /// buffered row becomes due (never in the past, so a spool that fails cannot spin).
    fn slow_write_wake(&self, now: Instant) -> Option<Instant> {
        self.spool.as_ref()?;
        let interval = self.settings.batch_interval;
        let f = self.inflight.as_ref()?;
        let at = if f.memory && !f.spooled && now < f.started + interval {
            f.started + interval
        } else {
            self.buffer.front().map(|b| b.at + interval)?
        };
        Some(if at <= now { now + interval } else { at })
    }

    /// Rows held in memory (buffer + a batch kept for retry). Spooled rows are on disk.
    fn buffered(&self) -> usize {
        self.buffer.len() + self.retry.as_ref().map_or(0, |(b, _)| b.len())
    }

    fn publish_depth(&self) {
        self.stats
            .rows_buffered
            .store(self.buffered() as u64, Relaxed);
        self.stats.spool_usable.store(self.spool.is_some(), Relaxed);
        if let Some(spool) = &self.spool {
            let counts = spool.counts();
            self.stats.spool_rows.store(counts.rows, Relaxed);
            self.stats.spool_bytes.store(counts.bytes, Relaxed);
        }
    }

    /// Counts rows lost (overflow without a spool, or the spool's cap).
    fn count_dropped(&mut self, n: u64) {
        self.report.rows_dropped += n;
        PipelineStats::add(&self.stats.rows_dropped, n);
        PipelineStats::stamp_now(&self.stats.last_drop_unix_ms);
    }

    fn push(&mut self, rows: Vec<Row>) {
        let now = Instant::now();
        let cap = self.settings.buffer_max_rows;
        let mut dropped = 0u64;
        for row in rows {
            if self.buffered() >= cap && self.settings.overflow == OverflowPolicy::DropOldest {
                // Full: the oldest rows go to the disk spool; only without a usable spool
                // are they dropped (counted). Backpressure mode never gets here with a full
                // buffer except for the tail of one frame, which is kept (soft limit).
                if !self.spool_oldest_rows() {
                    if self.buffer.pop_front().is_some() {
                        dropped += 1;
                    } else {
                        dropped += 1;
                        continue;
                    }
                }
            }
            self.buffer.push_back(Buffered { at: now, row });
        }
        if dropped > 0 {
            self.count_dropped(dropped);
            let quiet = self
                .last_drop_warning
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
            if !quiet {
                self.last_drop_warning = Some(now);
                tracing::warn!(
                    dropped_total = self.report.rows_dropped,
                    buffer_max_rows = cap,
                    "write buffer full and no usable spool: dropping the oldest rows (fix the database or SPOOL_DIR, or raise BUFFER_MAX_ROWS)"
                );
            }
        }
        self.publish_depth();
    }

    /// Moves up to one write's worth of the oldest buffered rows to the spool.
    fn spool_oldest_rows(&mut self) -> bool {
        if self.spool.is_none() || self.buffer.is_empty() {
            return false;
        }
        let n = self.settings.max_rows_per_write.min(self.buffer.len());
        let mut batch = Batch::default();
        self.buffer
            .iter()
            .take(n)
            .for_each(|b| batch.push(b.row.clone()));
        if self.append_to_spool(&batch) {
            self.buffer.drain(..n);
            true
        } else {
            false
        }
    }

    /// Appends to the spool (fsynced). False, with a rate-limited error, when that fails:
    /// the caller then keeps the rows in memory.
    fn append_to_spool(&mut self, batch: &Batch) -> bool {
        let Some(spool) = self.spool.as_mut() else {
            return false;
        };
        // A blocking append + fsync on the writer task: it owns the spool, and an fsync of
        // one batch takes milliseconds; the producer is decoupled by the input channel.
        match spool.append(batch) {
            Ok(dropped) => {
                let rows = batch.len() as u64;
                self.report.rows_spooled += rows;
                PipelineStats::add(&self.stats.rows_spooled, rows);
                if dropped > 0 {
                    self.count_dropped(dropped);
                }
                self.publish_depth();
                true
            }
            Err(e) => {
                PipelineStats::add(&self.stats.spool_errors, 1);
                let now = Instant::now();
                if self
                    .last_spool_error
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
                {
                    self.last_spool_error = Some(now);
                    tracing::error!(error = %e, "cannot write to the disk spool; keeping rows in memory");
                }
                false
            }
        }
    }

    /// Shutdown with the database down: everything in memory goes to the spool.
    fn spool_memory(&mut self) -> bool {
        if !self.park_memory() {
            return false;
        }
        tracing::info!(
            rows_in_spool = self.spool.as_ref().map_or(0, |s| s.counts().rows),
            "database unreachable at shutdown: buffered rows were spooled to disk and are written at the next start"
        );
        true
    }

    /// Moves everything in memory (retry batch and buffer) to the spool; false if there is
    /// no usable spool or an append failed (the rest then stays in memory).
    fn park_memory(&mut self) -> bool {
        if self.spool.is_none() {
            return false;
        }
        if let Some((batch, arrivals)) = self.retry.take()
            && !self.append_to_spool(&batch)
        {
            self.retry = Some((batch, arrivals));
            return false;
        }
        while !self.buffer.is_empty() {
            if !self.spool_oldest_rows() {
                return false;
            }
        }
        true
    }

    fn final_report(&mut self) -> WriterReport {
        self.report.rows_left_in_spool = self.spool.as_ref().map_or(0, |s| s.counts().rows);
        self.publish_depth();
        self.report
    }

    fn oldest(&self) -> Option<Instant> {
        let buffered = self.buffer.front().map(|b| b.at);
        match (self.retry.as_ref().and_then(|(_, a)| a.oldest()), buffered) {
            (Some(t), Some(b)) => Some(t.min(b)),
            (Some(t), None) => Some(t),
            (None, b) => b,
        }
    }

    /// While stopping, the spool keeps being replayed as long as the database answers and
    /// the grace period lasts.
    fn may_replay_while_stopping(&self, now: Instant) -> bool {
        !self.db_down
            && self
                .closed_at
                .is_some_and(|t| now < t + self.settings.shutdown_grace)
    }

    fn backing_off(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| now < t)
    }

    fn memory_due(&self, now: Instant) -> bool {
        if self.retry.is_some() {
            return true;
        }
        !self.buffer.is_empty()
            && (self.closed_at.is_some()
                || self.buffer.len() >= self.settings.batch_size
                || self
                    .oldest()
                    .is_some_and(|t| now >= t + self.settings.batch_interval))
    }

    /// What to write next, if anything: nothing while backing off; fresh rows when due
    /// (a retried batch first); otherwise the oldest spooled batch.
    fn next_write(&mut self, now: Instant) -> Option<(Batch, Origin, Arrivals)> {
        if self.backing_off(now) {
            return None;
        }
        if self.memory_due(now) {
            let (batch, arrivals) = self.take_batch();
            return Some((batch, Origin::Memory, arrivals));
        }
        if self.closed_at.is_some() && !self.may_replay_while_stopping(now) {
            return None; // what is left in the spool is written at the next start
        }
        let spool = self.spool.as_mut()?;
        loop {
            match spool.oldest() {
                // The copy of a slow write that committed after all: nothing to write.
                Ok(Some((id, batch))) if self.committed_spooled.remove(&batch.id) => {
                    if let Err(e) = spool.commit(id) {
                        tracing::warn!(error = %e, "cannot drop a spooled copy of a committed batch; the ledger will skip it");
                        return None;
                    }
                }
                Ok(Some((id, batch))) => {
                    return Some((batch, Origin::Spool(id), Arrivals::default()));
                }
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the disk spool; replay paused until the next start");
                    self.spool = None;
                    return None;
                }
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let grace_end = self.closed_at.map(|t| t + self.settings.shutdown_grace);
        let rows_due = self.oldest().map(|t| t + self.settings.batch_interval);
        match self.retry_at {
            Some(r) => {
                let mut wake = grace_end.map_or(r, |g| r.min(g));
                // With a spool, due rows are parked on disk without waiting for the retry.
                if self.spool.is_some()
                    && self.retry.is_none()
                    && let Some(due) = rows_due
                {
                    wake = wake.min(due);
                }
                Some(wake)
            }
            None => rows_due,
        }
    }

    /// The batch kept for retry, unchanged: an attempt whose answer was lost may have
    /// committed it, and the ledger recognises it only under the same id with the same rows.
    /// Otherwise a new batch of the oldest buffered rows, up to the write cap (everything that
    /// arrived during the last write goes out together: group commit).
    fn take_batch(&mut self) -> (Batch, Arrivals) {
        if let Some(retry) = self.retry.take() {
            return retry;
        }
        let mut batch = Batch::default();
        let mut arrivals = Arrivals::default();
        let room = self.settings.max_rows_per_write;
        for b in self.buffer.drain(..room.min(self.buffer.len())) {
            arrivals.push(b.at);
            batch.push(b.row);
        }
        (batch, arrivals)
    }

    fn finish_write(
        &mut self,
        batch: Arc<Batch>,
        origin: Origin,
        arrivals: Arrivals,
        took: Duration,
        result: Result<Committed, SinkError>,
    ) -> Result<(), WriterError> {
        let spooled = self.inflight.take().is_some_and(|f| f.spooled);
        // The write is over: the batch is ours alone again (cloned only if it is not).
        let batch = Arc::try_unwrap(batch).unwrap_or_else(|shared| (*shared).clone());
        match result {
            Ok(Committed {
                report: w,
                quarantined,
                lost,
            }) => {
                if self.db_down {
                    tracing::info!("database writes succeed again");
                }
                self.stats.write_failing_since_unix_ms.store(0, Relaxed);
                self.stats.set_write_refused(None);
                self.backoff.reset();
                self.refused_backoff.reset();
                if quarantined > 0 {
                    self.report.rows_quarantined += quarantined;
                    PipelineStats::add(&self.stats.rows_quarantined, quarantined);
                }
                if lost > 0 {
                    self.count_dropped(lost);
                }
                self.last_error = None;
                self.retry_at = None;
                self.db_down = false;
                if spooled {
                    self.committed_spooled.insert(batch.id);
                }
                if let (Origin::Spool(id), Some(spool)) = (origin, self.spool.as_mut())
                    && let Err(e) = spool.commit(id)
                {
                    tracing::warn!(error = %e, "cannot mark a spooled batch as written; it may be written again (harmless)");
                }
                if w.already_committed {
                    // Not an error: the ledger did its job. The rows count as written now,
                    // since the attempt that committed them was not counted.
                    PipelineStats::add(&self.stats.batches_already_committed, 1);
                    tracing::info!(batch = %batch.id, rows = w.rows, "batch was already committed by an earlier attempt (its answer was lost, or the service stopped before noting it); not written again");
                }
                self.report.rows_written += w.rows;
                self.report.writes += 1;
                let s = &self.stats;
                for (counter, n) in s.rows_written_by_table.iter().zip(w.by_table) {
                    PipelineStats::add(counter, n);
                }
                PipelineStats::add(&s.flushes, 1);
                s.last_flush_rows.store(w.rows, Relaxed);
                s.last_flush_unix_ms
                    .store(chrono::Utc::now().timestamp_millis(), Relaxed);
                let h = &s.histograms;
                h.flush_seconds.record(took.as_secs_f64());
                h.flush_rows.record(w.rows as f64);
                arrivals.record(&h.tick_to_commit_seconds, Instant::now());
                tracing::trace!(rows = w.rows, inserted = w.inserted, waited = ?arrivals.oldest().map(|t| t.elapsed()), "batch committed");
            }
            Err(e) if e.kind.retry_later() => {
                let delay = if e.kind == ErrorKind::Refused {
                    // Said once per outage (the status stays until a write succeeds).
                    if self.stats.write_refused().is_none() {
                        tracing::error!(error = %e, "the database refuses writes; every row is kept in the disk spool until it accepts them again");
                    }
                    self.stats.set_write_refused(Some(e.to_string()));
                    self.refused_backoff.next_delay()
                } else {
                    self.backoff.next_delay()
                };
                self.report.retries += 1;
                PipelineStats::add(&self.stats.write_retries, 1);
                if !self.db_down {
                    PipelineStats::stamp_now(&self.stats.write_failing_since_unix_ms);
                }
                self.db_down = true;
                self.retry_at = Some(Instant::now() + delay);
                match origin {
                    // Memory is freed by parking the batch on disk; without a spool it is
                    // kept for the retry.
                    Origin::Memory if spooled => {} // its copy is in the spool
                    Origin::Memory => {
                        if !self.append_to_spool(&batch) {
                            self.retry = Some((batch, arrivals));
                        }
                    }
                    Origin::Spool(_) => {} // still in the spool
                }
                tracing::warn!(error = %e, retry_in = ?delay, "database write failed; rows kept for retry");
                self.last_error = Some(e);
            }
            Err(e) => {
                // A configuration or schema error: nothing written until someone fixes it.
                // What is in memory goes to the disk spool first, so the next start (with the
                // fix) writes it; only what cannot be spooled is reported unwritten.
                if let Origin::Memory = origin
                    && !spooled
                {
                    self.retry = Some((batch, arrivals));
                }
                let spooled = self.park_memory();
                let unwritten = self.buffered();
                self.stats.writer_failed.store(true, Relaxed);
                tracing::error!(error = %e, unwritten, spooled, "database write failed permanently");
                self.publish_depth();
                return Err(WriterError::Permanent {
                    source: e,
                    unwritten,
                });
            }
        }
        self.publish_depth();
        Ok(())
    }

    /// After the input closed: give up once the grace period is over and the last write failed.
    fn grace_expired(&mut self, now: Instant) -> Option<WriterError> {
        let closed_at = self.closed_at?;
        if now.duration_since(closed_at) < self.settings.shutdown_grace || !self.db_down {
            return None;
        }
        let source = self.last_error.take()?;
        Some(WriterError::ShutdownTimedOut {
            source,
            unwritten: self.buffered(),
        })
    }
}
