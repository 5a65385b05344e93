//! The in-process simulated market: Schwab-format frames from [`MarketSimulator`], through the
//! same processor and writer as live data. Used by the zero-configuration `run`.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use super::forward_frame;
use crate::config::Config;
use crate::frame::{ChartFields, EquityFields, OptionFields};
use crate::pipeline::FrameProcessor;
use crate::rows::Row;
use crate::sim::{MarketSimulator, SimConfig};

/// How often simulated time advances (frames due in between are emitted together).
const TICK: Duration = Duration::from_millis(100);

/// Field list for a subscription: field 0 plus the table's fields, ascending.
pub fn subscription_fields(table: &[u32]) -> Vec<u32> {
    let mut fields = vec![0];
    fields.extend_from_slice(table);
    fields.sort_unstable();
    fields.dedup();
    fields
}

/// A simulator subscribed to the configured symbols, as the live session would subscribe.
pub fn subscribed_simulator(cfg: &Config, start_ms: i64) -> MarketSimulator {
    let mut sim = MarketSimulator::new(
        SimConfig {
            seed: cfg.sim_seed,
            updates_per_symbol_per_sec: cfg.sim_updates_per_symbol_per_sec,
            ..SimConfig::default()
        },
        start_ms,
    );
    let subs: [(&str, &[String], &[u32]); 3] = [
        (
            "LEVELONE_EQUITIES",
            &cfg.symbols,
            EquityFields::FIELD_NUMBERS,
        ),
        (
            "LEVELONE_OPTIONS",
            &cfg.option_symbols,
            OptionFields::FIELD_NUMBERS,
        ),
        (
            "CHART_EQUITY",
            &cfg.chart_symbols,
            ChartFields::FIELD_NUMBERS,
        ),
    ];
    for (service, keys, table) in subs {
        if keys.is_empty() {
            continue;
        }
        // Config validation already checked every symbol, so this cannot fail on input.
        if let Err(e) = sim.apply_command(service, "SUBS", keys, &subscription_fields(table)) {
            tracing::warn!(service, error = %e, "simulator refused a subscription");
        }
    }
    sim
}

/// Streams simulated frames in real time until `shutdown` resolves or the writer stops.
pub async fn stream(
    cfg: &Config,
    processor: &mut FrameProcessor,
    tx: &mpsc::Sender<Vec<Row>>,
    shutdown: impl Future<Output = ()>,
) {
    let mut sim = subscribed_simulator(cfg, chrono::Utc::now().timestamp_millis());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        for frame in sim.advance_to(now_ms) {
            if forward_frame(processor, &frame, now_ms, tx).await.is_err() {
                return; // the writer stopped; its error is reported by the caller
            }
        }
    }
}
