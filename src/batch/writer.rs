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

use super::Backoff;
use crate::config::{Config, OverflowPolicy};
use crate::rows::{Batch, Row};
use crate::sink::{ErrorKind, Sink, SinkError, WriteReport};
use crate::stats::PipelineStats;

/// Messages the writer's input channel holds (each one is the rows of one frame). When the
/// channel is full the sender waits; in practice it stays short because the writer takes
/// messages as they come whenever its buffer has room.
pub const INPUT_CHANNEL_CAPACITY: usize = 1024;

/// How the writer batches and retries.
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
}

impl WriterSettings {
    /// Settings from the service config with the given overflow policy.
    pub fn from_config(cfg: &Config, overflow: OverflowPolicy) -> Self {
        Self {
            batch_size: cfg.batch_size,
            batch_interval: cfg.batch_interval,
            buffer_max_rows: cfg.buffer_max_rows,
            max_rows_per_write: cfg.max_rows_per_write,
            overflow,
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            shutdown_grace: cfg.shutdown_grace,
        }
    }
}

/// What the writer did over its life.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterReport {
    pub rows_written: u64,
    pub rows_dropped: u64,
    pub writes: u64,
    pub retries: u64,
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

type WriteFuture =
    Pin<Box<dyn Future<Output = (Batch, Instant, Result<WriteReport, SinkError>)> + Send>>;

struct Buffered {
    at: Instant,
    row: Row,
}

/// Everything the writer owns except the channel and the write in flight.
struct State {
    settings: Arc<WriterSettings>,
    stats: Arc<PipelineStats>,
    buffer: VecDeque<Buffered>,
    /// A batch that failed transiently, with its oldest row's arrival; retried at `retry_at`.
    retry: Option<(Batch, Instant)>,
    retry_at: Option<Instant>,
    last_error: Option<SinkError>,
    backoff: Backoff,
    closed_at: Option<Instant>,
    report: WriterReport,
    last_drop_warning: Option<Instant>,
}

async fn run<S: Sink>(
    sink: Arc<S>,
    settings: WriterSettings,
    stats: Arc<PipelineStats>,
    mut rx: mpsc::Receiver<Vec<Row>>,
) -> Result<WriterReport, WriterError> {
    let mut st = State {
        backoff: Backoff::new(settings.retry_min, settings.retry_max),
        settings: Arc::new(settings),
        stats,
        buffer: VecDeque::new(),
        retry: None,
        retry_at: None,
        last_error: None,
        closed_at: None,
        report: WriterReport::default(),
        last_drop_warning: None,
    };
    let mut inflight: Option<WriteFuture> = None;

    loop {
        let now = Instant::now();
        if inflight.is_none()
            && let Some(err) = st.grace_expired(now)
        {
            return Err(err);
        }
        if inflight.is_none() && st.should_flush(now) {
            let (batch, oldest) = st.take_batch();
            let sink = sink.clone();
            inflight = Some(Box::pin(async move {
                let result = sink.write(&batch).await;
                (batch, oldest, result)
            }));
        }
        if inflight.is_none() && st.closed_at.is_some() && st.buffered() == 0 {
            return Ok(st.report);
        }

        let wake_at = if inflight.is_some() {
            None
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
                if let Some((batch, oldest, result)) = done {
                    st.finish_write(batch, oldest, result)?;
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

impl State {
    fn buffered(&self) -> usize {
        self.buffer.len() + self.retry.as_ref().map_or(0, |(b, _)| b.len())
    }

    fn publish_depth(&self) {
        self.stats
            .rows_buffered
            .store(self.buffered() as u64, Relaxed);
    }

    fn push(&mut self, rows: Vec<Row>) {
        let now = Instant::now();
        let cap = self.settings.buffer_max_rows;
        let mut dropped = 0u64;
        for row in rows {
            if self.buffered() >= cap {
                // DropOldest (live sources): keep the newest data and count the loss.
                // Backpressure never gets here with a full buffer except for the tail of
                // one frame, which is kept: the cap is a soft limit of one frame.
                if self.settings.overflow == OverflowPolicy::DropOldest {
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
            self.report.rows_dropped += dropped;
            PipelineStats::add(&self.stats.rows_dropped, dropped);
            let quiet = self
                .last_drop_warning
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
            if !quiet {
                self.last_drop_warning = Some(now);
                tracing::warn!(
                    dropped_total = self.report.rows_dropped,
                    buffer_max_rows = cap,
                    "write buffer full: dropping the oldest rows (the database is too slow or unreachable; raise BUFFER_MAX_ROWS or fix the database)"
                );
            }
        }
        self.publish_depth();
    }

    fn oldest(&self) -> Option<Instant> {
        let buffered = self.buffer.front().map(|b| b.at);
        match (&self.retry, buffered) {
            (Some((_, t)), Some(b)) => Some((*t).min(b)),
            (Some((_, t)), None) => Some(*t),
            (None, b) => b,
        }
    }

    fn should_flush(&self, now: Instant) -> bool {
        if self.retry.is_some() {
            return self.retry_at.is_none_or(|t| now >= t);
        }
        if self.buffer.is_empty() {
            return false;
        }
        self.closed_at.is_some()
            || self.buffer.len() >= self.settings.batch_size
            || self
                .oldest()
                .is_some_and(|t| now >= t + self.settings.batch_interval)
    }

    fn next_wake(&self) -> Option<Instant> {
        if self.retry.is_some() {
            let grace_end = self.closed_at.map(|t| t + self.settings.shutdown_grace);
            return match (self.retry_at, grace_end) {
                (Some(r), Some(g)) => Some(r.min(g)),
                (r, g) => r.or(g),
            };
        }
        self.oldest().map(|t| t + self.settings.batch_interval)
    }

    /// The retry batch first (if any), topped up with buffered rows, up to the write cap.
    fn take_batch(&mut self) -> (Batch, Instant) {
        let (mut batch, mut oldest) = self
            .retry
            .take()
            .unwrap_or_else(|| (Batch::default(), Instant::now()));
        self.retry_at = None;
        let room = self.settings.max_rows_per_write.saturating_sub(batch.len());
        for b in self.buffer.drain(..room.min(self.buffer.len())) {
            oldest = oldest.min(b.at);
            batch.push(b.row);
        }
        (batch, oldest)
    }

    fn finish_write(
        &mut self,
        batch: Batch,
        oldest: Instant,
        result: Result<WriteReport, SinkError>,
    ) -> Result<(), WriterError> {
        match result {
            Ok(w) => {
                self.backoff.reset();
                self.last_error = None;
                self.report.rows_written += w.rows;
                self.report.writes += 1;
                let s = &self.stats;
                PipelineStats::add(&s.equity_rows_written, w.equities);
                PipelineStats::add(&s.option_rows_written, w.options);
                PipelineStats::add(&s.bar_rows_written, w.bars);
                PipelineStats::add(&s.flushes, 1);
                s.last_flush_rows.store(w.rows, Relaxed);
                s.last_flush_unix_ms
                    .store(chrono::Utc::now().timestamp_millis(), Relaxed);
                tracing::trace!(rows = w.rows, inserted = w.inserted, waited = ?oldest.elapsed(), "batch committed");
            }
            Err(e) if e.kind == ErrorKind::Transient => {
                let delay = self.backoff.next_delay();
                self.report.retries += 1;
                PipelineStats::add(&self.stats.write_retries, 1);
                tracing::warn!(error = %e, rows = batch.len(), retry_in = ?delay, "database write failed; rows kept for retry");
                self.retry = Some((batch, oldest));
                self.retry_at = Some(Instant::now() + delay);
                self.last_error = Some(e);
            }
            Err(e) => {
                let unwritten = batch.len() + self.buffered();
                tracing::error!(error = %e, unwritten, "database write failed permanently");
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
        if now.duration_since(closed_at) < self.settings.shutdown_grace || self.retry.is_none() {
            return None;
        }
        let source = self.last_error.take()?;
        Some(WriterError::ShutdownTimedOut {
            source,
            unwritten: self.buffered(),
        })
    }
}
