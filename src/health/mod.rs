//! The service's own health: `GET /health` (JSON verdict) and `GET /metrics` (Prometheus
//! text) on `HEALTH_ADDR`.
//!
//! - [`snapshot`]: what is read, copied out of the watches and counters their owners publish
//!   (the supervisor's `SessionHealth`, the token task's `TokenStatus`, the pipeline's
//!   `PipelineStats`). The endpoints only read; every piece of state keeps its one owner.
//! - [`judge`]: the verdict (`ok`, `degraded`, `down`) with its reasons, a pure function of a
//!   snapshot and the market calendar at the judged instant.
//! - [`report`]: the JSON body.
//! - [`metrics`]: the Prometheus recorder (`metrics` + `metrics-exporter-prometheus`, no
//!   listener of its own) and what it mirrors at scrape time.
//! - [`server`]: the axum router and listener, stopped by the service's stop signal.
//! - [`live`]: the live page's data task (latest quotes, one-minute rings, status), fed by the
//!   frame processor through a bounded channel that drops when full.
//! - [`probe`]: `market-streamer probe`, the container health check (a plain GET /health).
//! - [`page`]: the live page itself (`GET /`, embedded HTML) and its event stream (`GET /live`).

mod accept;
pub mod judge;
pub mod live;
pub mod metrics;
pub mod page;
pub mod probe;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod subscriptions;

use chrono::Utc;

pub use judge::{HealthRules, judge, stream_state};
pub use report::{HealthReport, Status};
pub use snapshot::{BackfillFacts, FixedFacts, HealthSources, RealtimeFacts, Snapshot};

use market_calendar::MarketStatus;

/// The market clock lives with the calendar (the session uses it too).
pub use market_calendar::MarketClock;

/// What the endpoints answer from: the sources, the rules and the market clock.
#[derive(Debug, Clone)]
pub struct Health {
    pub sources: HealthSources,
    pub rules: HealthRules,
    pub clock: MarketClock,
}

impl Health {
    /// Reads and judges now.
    pub fn report(&self) -> HealthReport {
        let now = Utc::now();
        self.report_at(&self.sources.snapshot(now))
    }

    /// Judges `snap` (read by the caller, e.g. once for both the verdict and the metrics).
    pub fn report_at(&self, snap: &Snapshot) -> HealthReport {
        let market = MarketStatus::at(self.clock.market_now(snap.now));
        judge(snap, &market, &self.rules)
    }
}

#[cfg(test)]
mod tests;
