//! `GET /metrics`: Prometheus text rendered by `metrics-exporter-prometheus` (its own HTTP
//! listener is not compiled in; our axum route calls [`Metrics::render`]).
//!
//! Each running service has its own recorder (none is installed globally), so two services
//! in one process (tests) keep their numbers apart, and every handle is registered once up
//! front: recording on the hot path is an atomic add, no lookup, no allocation.
//!
//! - Histograms are recorded where the events happen, by the writer:
//!   `market_streamer_flush_duration_seconds`, `market_streamer_flush_rows`,
//!   `market_streamer_tick_to_commit_seconds` (a row's frame received → its commit; rows
//!   that went through the disk spool are not in it).
//! - Counters and gauges that already exist as the owners' atomics and watches
//!   (`PipelineStats`, `SessionHealth`, `TokenStatus`) are mirrored into the registry at
//!   scrape time, so the hot path counts each event once and `/health` and `/metrics` agree.
//!
//! Names: `market_streamer_frames_total{service}` (a frame counts once per data service it
//! carries; `other`: responses, heartbeats, notices), `market_streamer_updates_total{service}`,
//! `market_streamer_malformed_frames_total`, `market_streamer_skipped_items_total`,
//! `market_streamer_items_refused_total{reason}`,
//! `market_streamer_items_unsubscribed_total{service}`, `market_streamer_times_clamped_total`,
//! `market_streamer_heartbeats_total`, `market_streamer_rows_written_total{table}`,
//! `market_streamer_rows_dropped_total`, `market_streamer_rows_spooled_total`,
//! `market_streamer_writes_total`, `market_streamer_write_retries_total`,
//! `market_streamer_batches_already_committed_total`, `market_streamer_rows_quarantined_total`,
//! `market_streamer_realtime_sends_total`, `market_streamer_realtime_messages_total`,
//! `market_streamer_realtime_send_failures_total`,
//! `market_streamer_backfill_candles_total`, `market_streamer_backfill_requests_total`,
//! `market_streamer_backfill_failures_total`,
//! `market_streamer_reconnects_total{reason}`, `market_streamer_connects_total`,
//! `market_streamer_stream_gaps_total`, gauges `market_streamer_buffered_rows`,
//! `market_streamer_buffer_max_rows`, `market_streamer_spool_rows`, `market_streamer_spool_bytes`,
//! `market_streamer_database_bytes`, `market_streamer_database_limit_bytes`,
//! `market_streamer_access_token_seconds_left`, `market_streamer_refresh_token_seconds_left`,
//! `market_streamer_last_frame_age_seconds`, `market_streamer_last_commit_age_seconds`,
//! `market_streamer_stream_connected`, `market_streamer_market_open`,
//! `market_streamer_health_status` (0 ok, 1 degraded, 2 down).

use metrics::{
    Counter, Gauge, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram, with_local_recorder,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::report::{HealthReport, Status};
use super::snapshot::Snapshot;
use crate::counters::{PipelineStats, WriteHistograms};
use crate::market::sanity::Refusal;
use crate::schwab::session::SessionState;

const FLUSH_SECONDS: &str = "market_streamer_flush_duration_seconds";
const FLUSH_ROWS: &str = "market_streamer_flush_rows";
const TICK_TO_COMMIT: &str = "market_streamer_tick_to_commit_seconds";
const RECONNECTS: &str = "market_streamer_reconnects_total";
const ITEMS_REFUSED: &str = "market_streamer_items_refused_total";

/// Upper bounds of the histogram buckets.
const FLUSH_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const FLUSH_ROWS_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10_000.0,
    25_000.0, 100_000.0,
];
const TICK_TO_COMMIT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

use crate::counters::{SERVICES as SERVICE_COUNT, TABLES as TABLE_COUNT};

/// The data services, as labelled (their wire names).
const SERVICES: [&str; SERVICE_COUNT] = {
    let mut out = [""; SERVICE_COUNT];
    let mut i = 0;
    while i < SERVICE_COUNT {
        out[i] = crate::schwab::wire::Service::ALL[i].wire_name();
        i += 1;
    }
    out
};
/// The tables, as labelled.
const TABLES: [&str; TABLE_COUNT] = {
    let mut out = [""; TABLE_COUNT];
    let mut i = 0;
    while i < TABLE_COUNT {
        out[i] = crate::rows::Table::ALL[i].name();
        i += 1;
    }
    out
};

/// One service's Prometheus registry and its handles.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    histograms: WriteHistograms,
    m: Mirrored,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Handles whose values are copied from the owners' state at scrape time.
struct Mirrored {
    /// One per service, then `other`.
    frames: Vec<Counter>,
    updates: [Counter; SERVICE_COUNT],
    heartbeats: Counter,
    malformed_frames: Counter,
    skipped_items: Counter,
    items_unsubscribed: [Counter; SERVICE_COUNT],
    times_clamped: Counter,
    rows_written: [Counter; TABLE_COUNT],
    rows_dropped: Counter,
    rows_spooled: Counter,
    writes: Counter,
    write_retries: Counter,
    batches_already_committed: Counter,
    rows_quarantined: Counter,
    realtime_sends: Counter,
    realtime_messages: Counter,
    realtime_failures: Counter,
    backfill_candles: Counter,
    backfill_requests: Counter,
    backfill_failures: Counter,
    connects: Counter,
    gaps: Counter,
    buffered_rows: Gauge,
    buffer_max_rows: Gauge,
    spool_rows: Gauge,
    spool_bytes: Gauge,
    database_bytes: Gauge,
    database_limit_bytes: Gauge,
    access_seconds_left: Gauge,
    refresh_seconds_left: Gauge,
    last_frame_age: Gauge,
    last_commit_age: Gauge,
    stream_connected: Gauge,
    market_open: Gauge,
    health_status: Gauge,
    /// By service, in [`SERVICES`] order.
    subscription_state: [Gauge; SERVICE_COUNT],
    service_data_age: [Gauge; SERVICE_COUNT],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric described and registered.
    pub fn new() -> Self {
        let builder = [
            (FLUSH_SECONDS, FLUSH_SECONDS_BUCKETS),
            (FLUSH_ROWS, FLUSH_ROWS_BUCKETS),
            (TICK_TO_COMMIT, TICK_TO_COMMIT_BUCKETS),
        ]
        .into_iter()
        .fold(PrometheusBuilder::new(), |b, (name, buckets)| {
            // Only fails for empty bucket lists, and these are constants.
            match b.set_buckets_for_metric(Matcher::Full(name.into()), buckets) {
                Ok(b) => b,
                Err(_) => PrometheusBuilder::new(),
            }
        });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let (histograms, m) =
            with_local_recorder(&recorder, || (register_histograms(), register_mirrored()));
        Self {
            recorder,
            handle,
            histograms,
            m,
        }
    }

    /// The writer's histogram handles (give them to [`PipelineStats::histograms`]).
    pub fn write_histograms(&self) -> WriteHistograms {
        self.histograms.clone()
    }

    /// Drains recorded histogram samples into their buckets; call every few seconds so
    /// samples do not pile up between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// Copies the owners' state into the registry and renders the Prometheus text.
    pub fn render(&self, stats: &PipelineStats, snap: &Snapshot, verdict: &HealthReport) -> String {
        let m = &self.m;
        let get = PipelineStats::get;
        let frames = stats.service_frames.iter().chain([&stats.other_frames]);
        for (c, v) in m.frames.iter().zip(frames) {
            c.absolute(get(v));
        }
        for (c, v) in m.updates.iter().zip(&stats.service_updates) {
            c.absolute(get(v));
        }
        for (c, v) in m.rows_written.iter().zip(&stats.rows_written_by_table) {
            c.absolute(get(v));
        }
        m.heartbeats.absolute(get(&stats.heartbeats));
        m.malformed_frames.absolute(get(&stats.malformed_frames));
        m.skipped_items.absolute(get(&stats.skipped_items));
        for (c, v) in m.items_unsubscribed.iter().zip(&stats.items_unsubscribed) {
            c.absolute(get(v));
        }
        m.times_clamped.absolute(get(&stats.times_clamped));
        m.rows_dropped.absolute(get(&stats.rows_dropped));
        m.rows_spooled.absolute(get(&stats.rows_spooled));
        m.writes.absolute(get(&stats.flushes));
        m.write_retries.absolute(get(&stats.write_retries));
        m.batches_already_committed
            .absolute(get(&stats.batches_already_committed));
        m.rows_quarantined.absolute(get(&stats.rows_quarantined));
        m.realtime_sends.absolute(get(&stats.realtime_sends));
        m.realtime_messages.absolute(get(&stats.realtime_messages));
        m.realtime_failures.absolute(get(&stats.realtime_failures));
        m.backfill_candles.absolute(get(&stats.backfill_candles));
        m.backfill_requests.absolute(get(&stats.backfill_requests));
        m.backfill_failures.absolute(get(&stats.backfill_failures));
        m.connects.absolute(snap.session.connects);
        m.gaps.absolute(snap.session.gaps);
        with_local_recorder(&self.recorder, || {
            for (reason, n) in &snap.session.reconnects {
                counter!(RECONNECTS, "reason" => *reason).absolute(*n);
            }
            for refusal in Refusal::ALL {
                counter!(ITEMS_REFUSED, "reason" => refusal.label())
                    .absolute(get(&stats.items_refused[refusal.index()]));
            }
        });

        m.buffered_rows.set(snap.writer.buffered_rows as f64);
        m.buffer_max_rows.set(snap.writer.buffer_max_rows as f64);
        m.spool_rows.set(snap.spool.rows as f64);
        m.spool_bytes.set(snap.spool.bytes as f64);
        m.database_bytes
            .set(snap.database.size_bytes.unwrap_or_default() as f64);
        m.database_limit_bytes.set(snap.database.limit_bytes as f64);
        let tokens = &verdict.tokens;
        m.access_seconds_left
            .set(tokens.access_expires_in_secs.unwrap_or_default());
        m.refresh_seconds_left
            .set(tokens.refresh_expires_in_secs.unwrap_or_default());
        let uptime = verdict.service.uptime_secs;
        m.last_frame_age
            .set(verdict.stream.last_frame_age_secs.unwrap_or(uptime));
        m.last_commit_age
            .set(verdict.writer.last_commit_age_secs.unwrap_or(uptime));
        m.stream_connected.set(f64::from(u8::from(
            snap.session.state == SessionState::Streaming,
        )));
        m.market_open
            .set(f64::from(u8::from(verdict.market.status.open)));
        let subs = &snap.session.subscriptions;
        for (i, (state, data_age)) in m
            .subscription_state
            .iter()
            .zip(&m.service_data_age)
            .enumerate()
        {
            let sub = subs.iter().find(|s| s.service.index() == i);
            state.set(sub.map_or(0.0, |s| s.state.metric()));
            data_age.set(
                sub.and_then(|s| s.last_data)
                    .map_or(-1.0, |t| super::judge::signed_secs(snap.now, t).max(0.0)),
            );
        }
        m.health_status.set(match verdict.status {
            Status::Ok => 0.0,
            Status::Degraded => 1.0,
            Status::Down => 2.0,
        });
        self.render_text()
    }

    /// Renders the registry as it is, without refreshing the mirrored values first.
    pub fn render_text(&self) -> String {
        self.handle.render()
    }
}

fn register_histograms() -> WriteHistograms {
    describe_histogram!(
        FLUSH_SECONDS,
        Unit::Seconds,
        "Time one committed database write took"
    );
    describe_histogram!(FLUSH_ROWS, Unit::Count, "Rows per committed database write");
    describe_histogram!(
        TICK_TO_COMMIT,
        Unit::Seconds,
        "Time from a row's frame arriving to the row's commit (rows replayed from the disk spool excluded)"
    );
    WriteHistograms {
        flush_seconds: histogram!(FLUSH_SECONDS),
        flush_rows: histogram!(FLUSH_ROWS),
        tick_to_commit_seconds: histogram!(TICK_TO_COMMIT),
    }
}

fn register_mirrored() -> Mirrored {
    describe_counter!(
        "market_streamer_frames_total",
        Unit::Count,
        "Schwab frames received, by the data service they carried (other: responses, heartbeats, notices)"
    );
    describe_counter!(
        "market_streamer_updates_total",
        Unit::Count,
        "Market-data updates merged, by service"
    );
    describe_counter!(
        "market_streamer_heartbeats_total",
        Unit::Count,
        "Streamer heartbeats received"
    );
    describe_counter!(
        "market_streamer_malformed_frames_total",
        Unit::Count,
        "Frames that were not JSON objects (skipped)"
    );
    describe_counter!(
        "market_streamer_skipped_items_total",
        Unit::Count,
        "Frame items skipped for a bad type, a missing key or an unusable update"
    );
    describe_counter!(
        "market_streamer_items_unsubscribed_total",
        Unit::Count,
        "Stream items ignored because their service did not subscribe their key, by service"
    );
    describe_counter!(
        "market_streamer_times_clamped_total",
        Unit::Count,
        "Stream items with a time more than CLOCK_SKEW_TOLERANCE ahead of the receive time, clamped to it (check NTP)"
    );
    describe_counter!(
        "market_streamer_rows_written_total",
        Unit::Count,
        "Rows committed, by table"
    );
    describe_counter!(
        "market_streamer_rows_dropped_total",
        Unit::Count,
        "Rows lost: write buffer full without a usable spool, or the spool's size cap"
    );
    describe_counter!(
        "market_streamer_rows_spooled_total",
        Unit::Count,
        "Rows parked in the disk spool"
    );
    describe_counter!(
        "market_streamer_writes_total",
        Unit::Count,
        "Committed database writes"
    );
    describe_counter!(
        "market_streamer_write_retries_total",
        Unit::Count,
        "Failed database writes (retried)"
    );
    describe_counter!(
        "market_streamer_rows_quarantined_total",
        Unit::Count,
        "Rows the database rejected for their data, isolated from their batch and kept in the quarantine (rejected_rows or its file)"
    );
    describe_counter!(
        "market_streamer_batches_already_committed_total",
        Unit::Count,
        "Batches found in batch_ledger (committed by an attempt whose answer was lost, or before a restart) and not written again"
    );
    describe_counter!(
        "market_streamer_realtime_sends_total",
        Unit::Count,
        "Realtime updates sent by the live cadence (at most one per REALTIME_INTERVAL: Broadcast and, with postgres_changes, the latest_quotes upsert)"
    );
    describe_counter!(
        "market_streamer_realtime_messages_total",
        Unit::Count,
        "realtime.send messages sent (Broadcast; more than one per update when a payload passed the plan's limit and was split)"
    );
    describe_counter!(
        "market_streamer_realtime_send_failures_total",
        Unit::Count,
        "Failed Realtime updates (the rows are kept and sent at the next tick)"
    );
    describe_counter!(
        "market_streamer_backfill_candles_total",
        Unit::Count,
        "One-minute candles refilled into equity_bars from REST pricehistory after a gap or at startup (marked backfilled)"
    );
    describe_counter!(
        "market_streamer_backfill_requests_total",
        Unit::Count,
        "REST pricehistory calls made by the candle backfill (each try)"
    );
    describe_counter!(
        "market_streamer_backfill_failures_total",
        Unit::Count,
        "Failed pricehistory calls of the candle backfill (tried again a few times, then the window is given up)"
    );
    describe_counter!(
        ITEMS_REFUSED,
        Unit::Count,
        "Stream items refused by the sanity limits (key with control characters or too long, a time before 2000 or more than a day ahead), by reason"
    );
    describe_counter!(
        RECONNECTS,
        Unit::Count,
        "Waits before another streamer connect, by reason"
    );
    describe_counter!(
        "market_streamer_connects_total",
        Unit::Count,
        "Streamer connections opened"
    );
    describe_counter!(
        "market_streamer_stream_gaps_total",
        Unit::Count,
        "Stream interruptions recorded in stream_gaps"
    );
    describe_gauge!(
        "market_streamer_buffered_rows",
        Unit::Count,
        "Rows in memory waiting for a database write"
    );
    describe_gauge!(
        "market_streamer_buffer_max_rows",
        Unit::Count,
        "BUFFER_MAX_ROWS"
    );
    describe_gauge!(
        "market_streamer_spool_rows",
        Unit::Count,
        "Rows in the disk spool"
    );
    describe_gauge!(
        "market_streamer_spool_bytes",
        Unit::Bytes,
        "Bytes in the disk spool"
    );
    describe_gauge!(
        "market_streamer_database_bytes",
        Unit::Bytes,
        "Database size at the last retention pass (0 before the first)"
    );
    describe_gauge!(
        "market_streamer_database_limit_bytes",
        Unit::Bytes,
        "DB_SIZE_LIMIT_MB in bytes"
    );
    describe_gauge!(
        "market_streamer_access_token_seconds_left",
        Unit::Seconds,
        "Seconds until the access token expires (0 without tokens, negative once expired)"
    );
    describe_gauge!(
        "market_streamer_refresh_token_seconds_left",
        Unit::Seconds,
        "Seconds until the refresh token's 7 days end and a browser login is needed"
    );
    describe_gauge!(
        "market_streamer_last_frame_age_seconds",
        Unit::Seconds,
        "Seconds since the last Schwab frame (since the start before the first)"
    );
    describe_gauge!(
        "market_streamer_last_commit_age_seconds",
        Unit::Seconds,
        "Seconds since the last committed write (since the start before the first)"
    );
    describe_gauge!(
        "market_streamer_stream_connected",
        Unit::Count,
        "1 while the streamer session is subscribed and streaming"
    );
    describe_gauge!(
        "market_streamer_market_open",
        Unit::Count,
        "1 during the regular US equity session (NYSE calendar)"
    );
    describe_gauge!(
        "market_streamer_subscription_state",
        Unit::Count,
        "Each service's subscription: 0 not subscribed, 1 pending, 2 active, 3 silent (subscribed again), 4 refused by Schwab, 5 no answer"
    );
    describe_gauge!(
        "market_streamer_service_data_age_seconds",
        Unit::Seconds,
        "Seconds since the service's last data item (-1: none yet)"
    );
    describe_gauge!(
        "market_streamer_health_status",
        Unit::Count,
        "The /health verdict: 0 ok, 1 degraded, 2 down"
    );
    Mirrored {
        frames: SERVICES
            .iter()
            .chain(&["other"])
            .map(|s| counter!("market_streamer_frames_total", "service" => *s))
            .collect(),
        updates: SERVICES.map(|s| counter!("market_streamer_updates_total", "service" => s)),
        heartbeats: counter!("market_streamer_heartbeats_total"),
        malformed_frames: counter!("market_streamer_malformed_frames_total"),
        skipped_items: counter!("market_streamer_skipped_items_total"),
        items_unsubscribed: SERVICES
            .map(|s| counter!("market_streamer_items_unsubscribed_total", "service" => s)),
        times_clamped: counter!("market_streamer_times_clamped_total"),
        rows_written: TABLES.map(|t| counter!("market_streamer_rows_written_total", "table" => t)),
        rows_dropped: counter!("market_streamer_rows_dropped_total"),
        rows_spooled: counter!("market_streamer_rows_spooled_total"),
        writes: counter!("market_streamer_writes_total"),
        write_retries: counter!("market_streamer_write_retries_total"),
        batches_already_committed: counter!("market_streamer_batches_already_committed_total"),
        rows_quarantined: counter!("market_streamer_rows_quarantined_total"),
        realtime_sends: counter!("market_streamer_realtime_sends_total"),
        realtime_messages: counter!("market_streamer_realtime_messages_total"),
        realtime_failures: counter!("market_streamer_realtime_send_failures_total"),
        backfill_candles: counter!("market_streamer_backfill_candles_total"),
        backfill_requests: counter!("market_streamer_backfill_requests_total"),
        backfill_failures: counter!("market_streamer_backfill_failures_total"),
        connects: counter!("market_streamer_connects_total"),
        gaps: counter!("market_streamer_stream_gaps_total"),
        buffered_rows: gauge!("market_streamer_buffered_rows"),
        buffer_max_rows: gauge!("market_streamer_buffer_max_rows"),
        spool_rows: gauge!("market_streamer_spool_rows"),
        spool_bytes: gauge!("market_streamer_spool_bytes"),
        database_bytes: gauge!("market_streamer_database_bytes"),
        database_limit_bytes: gauge!("market_streamer_database_limit_bytes"),
        access_seconds_left: gauge!("market_streamer_access_token_seconds_left"),
        refresh_seconds_left: gauge!("market_streamer_refresh_token_seconds_left"),
        last_frame_age: gauge!("market_streamer_last_frame_age_seconds"),
        last_commit_age: gauge!("market_streamer_last_commit_age_seconds"),
        stream_connected: gauge!("market_streamer_stream_connected"),
        market_open: gauge!("market_streamer_market_open"),
        health_status: gauge!("market_streamer_health_status"),
        subscription_state: SERVICES
            .map(|s| gauge!("market_streamer_subscription_state", "service" => s)),
        service_data_age: SERVICES
            .map(|s| gauge!("market_streamer_service_data_age_seconds", "service" => s)),
    }
}
