//! Writer tests on paused tokio time with an in-memory sink whose latency and failures are
//! scripted. (Real-database behaviour is covered by the PostgreSQL/SQLite integration tests.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio::time::Instant;

use super::*;
use crate::counters::PipelineStats;
use crate::db::{DbError, ErrorKind, Sink, SinkError, WriteReport};
use crate::rows::{Batch, EquityRow, Row};
use crate::schwab::wire::EquityFields;

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Ok,
    Transient,
    Permanent,
}

#[derive(Default)]
struct MemorySink {
    latency: Duration,
    script: Mutex<VecDeque<Outcome>>,
    /// (time of commit, rows) of every committed write.
    commits: Mutex<Vec<(Instant, Vec<i32>)>>,
    attempts: Mutex<u32>,
    /// The batch id of every attempt.
    attempt_ids: Mutex<Vec<crate::rows::BatchId>>,
}

impl MemorySink {
    fn with_latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }
    fn script(self, outcomes: &[Outcome]) -> Self {
        *self.script.lock().expect("lock") = outcomes.iter().copied().collect();
        self
    }
    fn committed_ids(&self) -> Vec<i32> {
        self.commits
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|(_, ids)| ids.clone())
            .collect()
    }
    fn commit_sizes(&self) -> Vec<usize> {
        self.commits
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, ids)| ids.len())
            .collect()
    }
}

impl Sink for MemorySink {
    async fn write(&self, batch: &Batch) -> Result<WriteReport, SinkError> {
        *self.attempts.lock().expect("lock") += 1;
        self.attempt_ids.lock().expect("lock").push(batch.id);
        tokio::time::sleep(self.latency).await;
        let outcome = self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(Outcome::Ok);
        // Rows with a negative `seq` are poison: the database rejects any batch holding one.
        if matches!(outcome, Outcome::Ok) && batch.equities.iter().any(|r| r.seq < 0) {
            return Err(SinkError::new(
                "insert into equity_data",
                DbError::Config("stand-in for a data exception".into()),
            )
            .with_kind(ErrorKind::Rejected));
        }
        match outcome {
            Outcome::Ok => {
                let ids = batch.equities.iter().map(|r| r.seq).collect();
                self.commits
                    .lock()
                    .expect("lock")
                    .push((Instant::now(), ids));
                Ok(WriteReport::committed(batch, 0, false))
            }
            Outcome::Transient => Err(SinkError::new(
                "insert into equity_data",
                sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "refused",
                )),
            )),
            Outcome::Permanent => Err(SinkError::new(
                "insert into equity_data",
                sqlx::Error::RowNotFound,
            )),
        }
    }
}

/// A row whose `seq` is its id, so tests can follow each row.
fn row(id: i32) -> Row {
    Row::Equity(EquityRow {
        ticker: Arc::from("T"),
        timestamp: Utc.timestamp_millis_opt(0).single().expect("time"),
        seq: id,
        quote: EquityFields::default(),
        indicators: Default::default(),
    })
}

fn settings(batch_size: usize, interval_ms: u64) -> WriterSettings {
    WriterSettings {
        batch_size,
        batch_interval: Duration::from_millis(interval_ms),
        buffer_max_rows: 100_000,
        max_rows_per_write: 10_000,
        overflow: OverflowPolicy::Backpressure,
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(8),
        spool: None,
        quarantine_file: std::env::temp_dir().join(format!(
            "market-streamer-writer-test-{}-{}.jsonl",
            std::process::id(),
            crate::rows::BatchId::next()
        )),
    }
}

fn start(sink: &Arc<MemorySink>, s: WriterSettings) -> (WriterHandle, Arc<PipelineStats>) {
    let stats = Arc::new(PipelineStats::default());
    (spawn_writer(sink.clone(), s, stats.clone()), stats)
}

#[tokio::test(start_paused = true)]
async fn flushes_when_batch_size_rows_are_buffered() {
    let sink = Arc::new(MemorySink::default());
    let (w, _) = start(&sink, settings(3, 60_000));
    let t0 = Instant::now();
    w.tx.send(vec![row(1), row(2)]).await.expect("send");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        sink.commit_sizes().is_empty(),
        "2 of 3 rows and young: no flush yet"
    );
    w.tx.send(vec![row(3)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(1)).await;
    let commits = sink.commits.lock().expect("lock").clone();
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].1, vec![1, 2, 3]);
    assert!(
        commits[0].0 - t0 < Duration::from_secs(6),
        "flushed on size, not on age"
    );
    drop(w.tx);
    w.task.await.expect("join").expect("writer");
}

#[tokio::test(start_paused = true)]
async fn flushes_when_the_oldest_row_reaches_batch_interval() {
    let sink = Arc::new(MemorySink::default());
    let (w, _) = start(&sink, settings(1000, 250));
    let t0 = Instant::now();
    w.tx.send(vec![row(1)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.tx.send(vec![row(2)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(140)).await;
    assert!(
        sink.commit_sizes().is_empty(),
        "oldest row is 240 ms old: not yet"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let commits = sink.commits.lock().expect("lock").clone();
    assert_eq!(
        commits.len(),
        1,
        "flushed once the oldest row was 250 ms old"
    );
    assert_eq!(commits[0].1, vec![1, 2]);
    assert_eq!(commits[0].0 - t0, Duration::from_millis(250));
    drop(w.tx);
    w.task.await.expect("join").expect("writer");
}

#[tokio::test(start_paused = true)]
async fn drains_everything_when_the_input_closes() {
    let sink = Arc::new(MemorySink::default());
    let (w, stats) = start(&sink, settings(1000, 3_600_000));
    w.tx.send((1..=5).map(row).collect()).await.expect("send");
    drop(w.tx);
    let report = w.task.await.expect("join").expect("writer");
    assert_eq!(report.rows_written, 5);
    assert_eq!(sink.committed_ids(), vec![1, 2, 3, 4, 5]);
    assert_eq!(stats.rows_written(), 5);
    assert_eq!(PipelineStats::get(&stats.rows_buffered), 0);
}

#[tokio::test(start_paused = true)]
async fn group_commit_keeps_batch_size_one_fast_under_a_burst() {
    // Each write takes 50 ms; 2000 rows arrive one per frame within ~20 ms.
    let sink = Arc::new(MemorySink::with_latency(Duration::from_millis(50)));
    let (w, _) = start(&sink, settings(1, 1000));
    let t0 = Instant::now();
    for id in 0..2000 {
        w.tx.send(vec![row(id)]).await.expect("send");
        if id % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    drop(w.tx);
    let report = w.task.await.expect("join").expect("writer");
    let sizes = sink.commit_sizes();
    assert_eq!(report.rows_written, 2000);
    assert_eq!(
        sink.committed_ids(),
        (0..2000).collect::<Vec<_>>(),
        "order kept, nothing lost or doubled"
    );
    assert_eq!(sizes[0], 1, "the first row goes out alone, at once");
    assert!(
        sizes.len() <= 4,
        "rows that arrived during a write went out together: {sizes:?}"
    );
    assert!(
        Instant::now() - t0 < Duration::from_millis(300),
        "one write per round trip, not per row"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_errors_keep_the_batch_and_retry_with_backoff() {
    use Outcome::*;
    let sink = Arc::new(MemorySink::default().script(&[Transient, Transient, Transient, Ok]));
    let (w, stats) = start(&sink, settings(1, 1000));
    w.tx.send(vec![row(1), row(2)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Arrives during the outage: it goes out in the next batch, the retried one is sent
    // unchanged (an attempt may have committed it, and the ledger knows it by its id).
    w.tx.send(vec![row(3)]).await.expect("send");
    drop(w.tx);
    let report = w.task.await.expect("join").expect("writer");
    assert_eq!(sink.committed_ids(), vec![1, 2, 3]);
    assert_eq!(sink.commit_sizes(), vec![2, 1]);
    assert_eq!(report.retries, 3);
    assert_eq!(PipelineStats::get(&stats.write_retries), 3);
    assert_eq!(*sink.attempts.lock().expect("lock"), 5);
    let ids = sink.attempt_ids.lock().expect("lock").clone();
    assert!(
        ids[..4].iter().all(|id| *id == ids[0]),
        "every retry keeps the batch id: {ids:?}"
    );
    assert_ne!(ids[4], ids[0], "the next batch has its own id");
}

#[tokio::test(start_paused = true)]
async fn the_outage_its_end_and_the_latencies_are_published_for_health_and_metrics() {
    use Outcome::*;
    use std::sync::atomic::Ordering::Relaxed;
    let metrics = crate::health::metrics::Metrics::new();
    let stats = Arc::new(PipelineStats {
        histograms: metrics.write_histograms(),
        ..PipelineStats::default()
    });
    let sink = Arc::new(
        MemorySink::with_latency(Duration::from_millis(20)).script(&[Transient, Transient, Ok]),
    );
    let w = spawn_writer(sink.clone(), settings(1, 1000), stats.clone());
    w.tx.send(vec![row(1), row(2)]).await.expect("send");
    w.tx.send(vec![row(3)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_ne!(
        stats.write_failing_since_unix_ms.load(Relaxed),
        0,
        "the outage start is published"
    );
    let failing_since = stats.write_failing_since_unix_ms.load(Relaxed);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        stats.write_failing_since_unix_ms.load(Relaxed),
        failing_since,
        "the second failure keeps the outage's start"
    );
    drop(w.tx);
    w.task.await.expect("join").expect("writer");
    assert_eq!(sink.committed_ids(), vec![1, 2, 3]);
    assert_eq!(
        stats.write_failing_since_unix_ms.load(Relaxed),
        0,
        "writes work again"
    );
    assert_ne!(PipelineStats::get(&stats.flushes), 0);
    let text = metrics.render_text();
    for line in [
        // The retried batch of 2 rows, then the row that arrived meanwhile (failed attempts
        // are not flushes)...
        "market_streamer_flush_rows_count 2",
        "market_streamer_flush_rows_sum 3",
        "market_streamer_flush_duration_seconds_count 2",
        // ...whose rows each waited through the two failures and their backoff.
        "market_streamer_tick_to_commit_seconds_count 3",
        "market_streamer_tick_to_commit_seconds_bucket{le=\"0.05\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_stop_the_writer_without_looping() {
    let sink = Arc::new(MemorySink::default().script(&[Outcome::Permanent]));
    let (w, stats) = start(&sink, settings(1, 1000));
    w.tx.send(vec![row(1)]).await.expect("send");
    let err = w.task.await.expect("join").expect_err("permanent");
    assert!(
        stats
            .writer_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        "published for /health"
    );
    assert!(
        matches!(err, WriterError::Permanent { unwritten: 1, .. }),
        "{err}"
    );
    assert_eq!(*sink.attempts.lock().expect("lock"), 1, "never retried");
    assert!(err.to_string().contains("will not be retried"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_the_shutdown_grace_when_the_database_stays_down() {
    let sink = Arc::new(MemorySink::default().script(&[Outcome::Transient; 1000]));
    let mut s = settings(1, 1000);
    s.shutdown_grace = Duration::from_secs(3);
    let (w, _) = start(&sink, s);
    w.tx.send(vec![row(1), row(2)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let closed = Instant::now();
    drop(w.tx);
    let err = w.task.await.expect("join").expect_err("timed out");
    assert!(
        matches!(err, WriterError::ShutdownTimedOut { unwritten: 2, .. }),
        "{err}"
    );
    let waited = Instant::now() - closed;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_bounds_memory_and_counts_the_loss() {
    // The database is slow (1 s per write) while 1000 rows arrive; the buffer holds 100.
    let sink = Arc::new(MemorySink::with_latency(Duration::from_secs(1)));
    let mut s = settings(1, 1000);
    s.buffer_max_rows = 100;
    s.max_rows_per_write = 100;
    s.overflow = OverflowPolicy::DropOldest;
    let (w, stats) = start(&sink, s);
    for id in 0..1000 {
        w.tx.send(vec![row(id)])
            .await
            .expect("send never waits: the writer keeps reading");
    }
    drop(w.tx);
    let report = w.task.await.expect("join").expect("writer");
    let ids = sink.committed_ids();
    assert_eq!(report.rows_written as usize, ids.len());
    assert_eq!(
        report.rows_written + report.rows_dropped,
        1000,
        "every row is written or counted as dropped"
    );
    assert_eq!(PipelineStats::get(&stats.rows_dropped), report.rows_dropped);
    assert!(
        PipelineStats::time(&stats.last_drop_unix_ms).is_some(),
        "the last drop is stamped for /health"
    );
    assert!(report.rows_dropped >= 800, "{report:?}");
    assert_eq!(ids.last(), Some(&999), "the newest rows are kept");
}

#[tokio::test(start_paused = true)]
async fn backpressure_makes_the_producer_wait_and_loses_nothing() {
    let sink = Arc::new(MemorySink::with_latency(Duration::from_millis(100)));
    let mut s = settings(10, 1000);
    s.buffer_max_rows = 50;
    s.max_rows_per_write = 50;
    let (w, stats) = start(&sink, s);
    let producer = tokio::spawn(async move {
        for id in 0..5000 {
            w.tx.send(vec![row(id)]).await.expect("send");
        }
    });
    // The writer is the only consumer; while the producer runs, the buffer stays bounded.
    let mut max_seen = 0;
    while !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        max_seen = max_seen.max(PipelineStats::get(&stats.rows_buffered));
    }
    producer.await.expect("producer");
    let report = w.task.await.expect("join").expect("writer");
    assert_eq!(report.rows_written, 5000);
    assert_eq!(report.rows_dropped, 0);
    assert_eq!(sink.committed_ids(), (0..5000).collect::<Vec<_>>());
    assert!(max_seen <= 50 + 1, "buffer bounded: {max_seen}");
}

#[tokio::test]
async fn rejected_rows_are_isolated_and_quarantined_and_the_rest_written() {
    let sink = Arc::new(MemorySink::default());
    let cfg = settings(100, 1000);
    let file = cfg.quarantine_file.clone();
    let (w, stats) = start(&sink, cfg);
    let rows: Vec<Row> = (1..=20)
        .map(|i| row(if i == 7 || i == 15 { -i } else { i }))
        .collect();
    w.tx.send(rows).await.expect("send");
    drop(w.tx);
    let report = w
        .task
        .await
        .expect("join")
        .expect("the writer never stops on bad data");
    let mut committed = sink.committed_ids();
    committed.sort_unstable();
    let good: Vec<i32> = (1..=20).filter(|i| *i != 7 && *i != 15).collect();
    assert_eq!(committed, good, "every good row written once");
    assert_eq!(report.rows_written, 18);
    assert_eq!(report.rows_quarantined, 2);
    assert_eq!(PipelineStats::get(&stats.rows_quarantined), 2);
    // This sink has no quarantine table: the rows went to the file, one JSON object each.
    let text = std::fs::read_to_string(&file).expect("quarantine file");
    let _ = std::fs::remove_file(&file);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["table_name"] == "equity_data"));
    assert!(
        lines[0]["row_json"]
            .as_str()
            .expect("text")
            .contains("\"seq\":-7")
    );
    assert!(
        lines[0]["error"]
            .as_str()
            .expect("text")
            .contains("data exception")
    );
}

#[tokio::test]
async fn a_write_slower_than_batch_interval_parks_its_batch_and_the_due_rows_on_disk() {
    let sink = Arc::new(MemorySink::with_latency(Duration::from_millis(600)));
    let spool_dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = settings(1, 100);
    cfg.overflow = OverflowPolicy::DropOldest;
    cfg.spool = Some(SpoolSettings {
        dir: spool_dir.path().to_path_buf(),
        max_bytes: 1 << 30,
    });
    let (w, stats) = start(&sink, cfg);
    w.tx.send(vec![row(1)]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(20)).await;
    w.tx.send(vec![row(2), row(3)]).await.expect("send");
    // The write of row 1 hangs: after BATCH_INTERVAL its batch, and rows 2 and 3 once due,
    // are on disk, so a crash now would lose nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(PipelineStats::get(&stats.rows_spooled), 3);
    drop(w.tx);
    let report = w.task.await.expect("join").expect("writer");
    // Row 1 committed after all: its spooled copy is dropped unwritten.
    assert_eq!(sink.committed_ids(), vec![1, 2, 3]);
    assert_eq!(*sink.attempts.lock().expect("lock"), 2);
    assert_eq!(report.rows_written, 3);
    assert_eq!(report.rows_left_in_spool, 0);
}
