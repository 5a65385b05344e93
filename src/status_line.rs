//! The periodic one-line status: updates/s, rows written, last flush, buffered rows.

use std::sync::Arc;
use std::time::Duration;

use crate::counters::PipelineStats;

/// Logs one status line every `every` until the task is aborted.
pub async fn report_every(stats: Arc<PipelineStats>, every: Duration) {
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut last_updates = PipelineStats::get(&stats.updates);
    let mut last_at = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let now = tokio::time::Instant::now();
        let updates = PipelineStats::get(&stats.updates);
        let rate =
            (updates - last_updates) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-9);
        last_updates = updates;
        last_at = now;
        tracing::info!("{}", status_line(&stats, rate));
    }
}

/// Formats the status line from the counters.
pub fn status_line(stats: &PipelineStats, updates_per_sec: f64) -> String {
    let last_flush_ms = stats
        .last_flush_unix_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let last_flush = if last_flush_ms == 0 {
        "never".to_string()
    } else {
        let age = (chrono::Utc::now().timestamp_millis() - last_flush_ms).max(0) as f64 / 1000.0;
        format!(
            "{age:.1}s ago ({} rows)",
            PipelineStats::get(&stats.last_flush_rows)
        )
    };
    let mut line = format!(
        "status: {updates_per_sec:.1} updates/s | rows written {} | last flush {last_flush} | buffered {}",
        stats.rows_written(),
        PipelineStats::get(&stats.rows_buffered),
    );
    let dropped = PipelineStats::get(&stats.rows_dropped);
    let skipped =
        PipelineStats::get(&stats.skipped_items) + PipelineStats::get(&stats.malformed_frames);
    if dropped > 0 {
        line.push_str(&format!(" | DROPPED {dropped}"));
    }
    if skipped > 0 {
        line.push_str(&format!(" | malformed skipped {skipped}"));
    }
    line
}
