//! The Realtime message budget: how many messages a month (and a second) the configured
//! `REALTIME_MODE`, `REALTIME_INTERVAL` and `SYMBOLS` cost per viewer, against the quotas of
//! `REALTIME_PLAN`, and how many viewers fit. A pure function of its inputs ([`estimate`]);
//! shown at startup and in `/health`.
//!
//! Billing (Supabase, `guides/platform/manage-your-usage/realtime-messages.mdx`): a Broadcast
//! counts one message when sent plus one per receiving client; a database change
//! (postgres_changes) counts one per listening client. The estimate assumes every configured
//! symbol changes within every interval of the regular session (a busy feed; the service
//! sends nothing while nothing changes, so quiet symbols and closed markets cost nothing), and
//! counts an average month of regular sessions by the market calendar (the year's
//! regular-session time / 12: holidays and early closes included, pre- and post-market left
//! out).

use std::time::Duration;

use chrono::{NaiveDate, TimeZone, Utc};
use serde::Serialize;
use streamer_config::{RealtimeMode, RealtimePlan};

/// Fewer viewers than this fitting the plan is worth a warning.
pub const FEW_VIEWERS: u64 = 10;

/// A plan's Realtime quotas (supabase.md §1.7, Supabase's `realtime/limits.mdx` and pricing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlanQuota {
    /// Messages included per month; `None` where the plan has no published figure (Team,
    /// Enterprise: see your contract).
    pub messages_per_month: Option<u64>,
    /// The rate limit (checked by Supabase on a 60 s average); over it clients are cut off.
    pub messages_per_second: u64,
    pub concurrent_connections: u64,
    /// Largest Broadcast payload, in bytes (KB taken as 1000 bytes, the safe side).
    pub broadcast_payload_bytes: usize,
}

/// The quotas of `plan`.
pub fn quota(plan: RealtimePlan) -> PlanQuota {
    match plan {
        RealtimePlan::Free => PlanQuota {
            messages_per_month: Some(2_000_000),
            messages_per_second: 100,
            concurrent_connections: 200,
            broadcast_payload_bytes: 256_000,
        },
        RealtimePlan::Pro => PlanQuota {
            messages_per_month: Some(5_000_000),
            messages_per_second: 500,
            concurrent_connections: 500,
            broadcast_payload_bytes: 3_000_000,
        },
        RealtimePlan::ProNoSpendCap => PlanQuota {
            messages_per_month: Some(5_000_000),
            messages_per_second: 2_500,
            concurrent_connections: 10_000,
            broadcast_payload_bytes: 3_000_000,
        },
        RealtimePlan::Team | RealtimePlan::Enterprise => PlanQuota {
            messages_per_month: None,
            messages_per_second: 2_500,
            concurrent_connections: 10_000,
            broadcast_payload_bytes: 3_000_000,
        },
    }
}

/// Regular-session time in an average month of `year` (the year's total / 12), by the market
/// calendar.
pub fn regular_session_per_month(year: i32) -> Duration {
    let start = |y: i32| {
        NaiveDate::from_ymd_opt(y, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| Utc.from_utc_datetime(&t))
    };
    match (start(year), start(year + 1)) {
        (Some(from), Some(to)) => market_calendar::open_time_between(from, to) / 12,
        _ => Duration::ZERO,
    }
}

/// Futures and forex trading time in an average month: about 23 hours on each of 5 days a
/// week (Sunday evening to Friday evening New York time, one hour's pause a day), 52.18 weeks
/// a year. Used instead of [`regular_session_per_month`] when futures or forex are streamed:
/// their quotes change nearly around the clock.
pub fn futures_week_per_month() -> Duration {
    // 23 h × 5 days × 52.18 weeks / 12 months, in whole seconds (1,800,210).
    Duration::from_secs(23 * 3600 * 5 * 5218 / 1200)
}

/// What the budget is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetInput {
    pub mode: RealtimeMode,
    pub plan: RealtimePlan,
    /// `REALTIME_INTERVAL`.
    pub interval: Duration,
    /// Tickers that can change: the equities, futures and forex pairs (`latest_quotes` and
    /// Broadcast carry the three).
    pub symbols: u64,
    /// Broadcast messages per tick when every symbol changed (more than one when the payload
    /// is split under the plan's limit).
    pub parts_per_tick: u64,
    /// [`regular_session_per_month`], or [`futures_week_per_month`] with futures or forex.
    pub session_per_month: Duration,
}

/// The estimate, as shown in `/health` (`realtime`) and at startup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub mode: &'static str,
    pub plan: &'static str,
    pub interval_secs: f64,
    pub symbols: u64,
    /// Regular-session hours in an average month (the basis of the monthly figures).
    pub session_hours_per_month: f64,
    /// Messages per month each viewer adds (Broadcasts delivered + `latest_quotes` changes).
    pub messages_per_month_per_viewer: u64,
    /// Messages per month whatever the viewers (each Broadcast counts once when sent).
    pub messages_per_month_sending: u64,
    /// The month's total with one viewer.
    pub messages_per_month_one_viewer: u64,
    /// Average rate during the session: per viewer, and for sending.
    pub messages_per_second_per_viewer: f64,
    pub messages_per_second_sending: f64,
    pub plan_messages_per_month: Option<u64>,
    pub plan_messages_per_second: u64,
    pub plan_concurrent_connections: u64,
    /// Viewers watching every regular session that fit the plan's quotas.
    pub viewers_fit: u64,
    /// `messages_per_month`, `messages_per_second` or `concurrent_connections`.
    pub limited_by: &'static str,
    /// What to change, when fewer than [`FEW_VIEWERS`] fit.
    pub warning: Option<String>,
}

impl Budget {
    /// One line for the startup log.
    pub fn summary(&self) -> String {
        if self.messages_per_month_per_viewer == 0 {
            return format!(
                "Realtime message budget: REALTIME_MODE={} sends no Realtime messages",
                self.mode
            );
        }
        format!(
            "Realtime message budget: REALTIME_MODE={} every {} s for {} symbol(s) costs about {} messages a month per viewer plus {} to send ({} in all with one viewer; an average month of regular sessions, {:.1} h); REALTIME_PLAN={} allows {} a month and {} a second: {} viewer(s) fit (limited by {})",
            self.mode,
            self.interval_secs,
            self.symbols,
            self.messages_per_month_per_viewer,
            self.messages_per_month_sending,
            self.messages_per_month_one_viewer,
            self.session_hours_per_month,
            self.plan,
            self.plan_messages_per_month.map_or_else(
                || "no published number of messages".to_owned(),
                |m| m.to_string()
            ),
            self.plan_messages_per_second,
            self.viewers_fit,
            self.limited_by,
        )
    }
}

/// Messages per tick per viewer and for sending, when every symbol changed.
fn per_tick(mode: RealtimeMode, symbols: u64, parts: u64) -> (u64, u64) {
    let broadcast = if mode.broadcast() { parts } else { 0 };
    let changes = if mode.postgres_changes() { symbols } else { 0 };
    // Each Broadcast: one per viewer and one sent; each latest_quotes change: one per viewer.
    (broadcast + changes, broadcast)
}

/// Viewers that fit `quota` for these per-tick costs at `ticks_per_month` ticks a month and
/// `ticks_per_second` a second, and the quota that limits them.
fn fit(
    quota: &PlanQuota,
    (viewer, sending): (u64, u64),
    ticks_per_month: f64,
    ticks_per_second: f64,
) -> (u64, &'static str) {
    let mut best = (quota.concurrent_connections, "concurrent_connections");
    if viewer == 0 {
        return best;
    }
    let room = |limit: f64, sending: f64, viewer: f64| {
        if sending >= limit {
            0
        } else {
            ((limit - sending) / viewer).floor() as u64
        }
    };
    let per_second = room(
        quota.messages_per_second as f64,
        sending as f64 * ticks_per_second,
        viewer as f64 * ticks_per_second,
    );
    if per_second < best.0 {
        best = (per_second, "messages_per_second");
    }
    if let Some(month) = quota.messages_per_month {
        let monthly = room(
            month as f64,
            (sending as f64 * ticks_per_month).round(),
            (viewer as f64 * ticks_per_month).round(),
        );
        if monthly < best.0 {
            best = (monthly, "messages_per_month");
        }
    }
    best
}

/// The estimate for `input`.
pub fn estimate(input: &BudgetInput) -> Budget {
    let q = quota(input.plan);
    let interval = input.interval.as_secs_f64().max(0.001);
    let ticks_per_month = input.session_per_month.as_secs_f64() / interval;
    let ticks_per_second = 1.0 / interval;
    let costs = per_tick(input.mode, input.symbols, input.parts_per_tick);
    let (viewer, sending) = costs;
    let monthly = |per_tick: u64| (per_tick as f64 * ticks_per_month).round() as u64;
    let (viewers_fit, limited_by) = fit(&q, costs, ticks_per_month, ticks_per_second);
    let warning = (viewer > 0 && viewers_fit < FEW_VIEWERS)
        .then(|| advice(input, &q, viewers_fit, limited_by));
    Budget {
        mode: input.mode.as_str(),
        plan: input.plan.as_str(),
        interval_secs: input.interval.as_secs_f64(),
        symbols: input.symbols,
        session_hours_per_month: (input.session_per_month.as_secs_f64() / 360.0).round() / 10.0,
        messages_per_month_per_viewer: monthly(viewer),
        messages_per_month_sending: monthly(sending),
        messages_per_month_one_viewer: monthly(viewer) + monthly(sending),
        messages_per_second_per_viewer: viewer as f64 * ticks_per_second,
        messages_per_second_sending: sending as f64 * ticks_per_second,
        plan_messages_per_month: q.messages_per_month,
        plan_messages_per_second: q.messages_per_second,
        plan_concurrent_connections: q.concurrent_connections,
        viewers_fit,
        limited_by,
        warning,
    }
}

/// The shortest `REALTIME_INTERVAL` (in tenths of a second up to 10 s, whole seconds above)
/// at which `viewers` fit, if any up to an hour does.
fn interval_for(input: &BudgetInput, q: &PlanQuota, viewers: u64) -> Option<f64> {
    let candidates = (1..100)
        .map(|t| f64::from(t) / 10.0)
        .chain((10..=3600).map(f64::from));
    candidates.into_iter().find(|&secs| {
        let interval = Duration::from_secs_f64(secs);
        if interval < input.interval {
            return false;
        }
        let b = BudgetInput {
            interval,
            ..input.clone()
        };
        let ticks = b.session_per_month.as_secs_f64() / secs;
        fit(
            q,
            per_tick(b.mode, b.symbols, b.parts_per_tick),
            ticks,
            1.0 / secs,
        )
        .0 >= viewers
    })
}

/// Says how many viewers fit and which setting to change.
fn advice(input: &BudgetInput, q: &PlanQuota, viewers_fit: u64, limited_by: &str) -> String {
    let mut text = format!(
        "only {viewers_fit} viewer(s) fit the {} plan's Realtime quota ({limited_by}) with REALTIME_MODE={}, REALTIME_INTERVAL={} s and {} symbol(s)",
        input.plan.as_str(),
        input.mode.as_str(),
        input.interval.as_secs_f64(),
        input.symbols
    );
    if limited_by == "concurrent_connections" {
        text.push_str(": upgrade the plan (REALTIME_PLAN) for more connections");
        return text;
    }
    let mut fixes = Vec::new();
    if let Some(secs) = interval_for(input, q, FEW_VIEWERS) {
        fixes.push(format!(
            "raise REALTIME_INTERVAL to {secs} for {FEW_VIEWERS} viewers"
        ));
    }
    if input.mode.postgres_changes() && input.symbols > 1 {
        fixes.push(
            "use REALTIME_MODE=broadcast (one message per interval whatever the number of symbols, where postgres_changes costs one per symbol)"
                .to_owned(),
        );
    }
    fixes.push("trim SYMBOLS".to_owned());
    fixes.push("upgrade the Supabase plan (and set REALTIME_PLAN)".to_owned());
    text.push_str(": ");
    text.push_str(&fixes.join(", or "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(mode: RealtimeMode, interval: f64, symbols: u64) -> BudgetInput {
        BudgetInput {
            mode,
            plan: RealtimePlan::Free,
            interval: Duration::from_secs_f64(interval),
            symbols,
            parts_per_tick: 1,
            // 2026: 251 trading days, 2 of them early closes (Nov 27, Dec 24).
            session_per_month: regular_session_per_month(2026),
        }
    }

    #[test]
    fn an_average_month_of_2026_by_hand() {
        // 261 weekdays, 10 NYSE holidays (Jan 1, Jan 19, Feb 16, Apr 3, May 25, Jun 19,
        // Jul 3 observed, Sep 7, Nov 26, Dec 25), 2 early closes (Nov 27, Dec 24).
        let seconds = (249 * 6 * 3600 + 249 * 1800 + 2 * 3 * 3600 + 2 * 1800) / 12;
        assert_eq!(seconds, 487_650);
        assert_eq!(
            regular_session_per_month(2026),
            Duration::from_secs(seconds)
        );
    }

    #[test]
    fn the_default_setup_by_hand() {
        // Broadcast, 1 s, 5 symbols, Free: one message a tick, 487,650 ticks a month.
        let b = estimate(&input(RealtimeMode::Broadcast, 1.0, 5));
        assert_eq!(b.messages_per_month_per_viewer, 487_650);
        assert_eq!(b.messages_per_month_sending, 487_650);
        assert_eq!(b.messages_per_month_one_viewer, 975_300);
        // (2,000,000 - 487,650) / 487,650 = 3.1
        assert_eq!((b.viewers_fit, b.limited_by), (3, "messages_per_month"));
        let warning = b.warning.clone().expect("few viewers fit");
        assert!(warning.contains("only 3 viewer(s)"), "{warning}");
        // 10 viewers: 11 x 487,650 / t <= 2,000,000 -> t >= 2.68 s
        assert!(
            warning.contains("raise REALTIME_INTERVAL to 2.7 for 10 viewers"),
            "{warning}"
        );
        assert_eq!(b.session_hours_per_month, 135.5);
        assert!(
            b.summary().contains("487650 messages a month per viewer"),
            "{}",
            b.summary()
        );
    }

    #[test]
    fn postgres_changes_cost_one_message_per_symbol_per_viewer() {
        let b = estimate(&input(RealtimeMode::PostgresChanges, 1.0, 100));
        assert_eq!(b.messages_per_month_per_viewer, 48_765_000);
        assert_eq!(b.messages_per_month_sending, 0);
        // 100 a second per viewer: exactly the rate limit; monthly: 0.
        assert_eq!((b.viewers_fit, b.limited_by), (0, "messages_per_month"));
        let w = b.warning.expect("warning");
        assert!(w.contains("REALTIME_MODE=broadcast"), "{w}");
        let both = estimate(&input(RealtimeMode::Both, 2.0, 3));
        assert_eq!(both.messages_per_month_per_viewer, 243_825 * 4);
        assert_eq!(both.messages_per_month_sending, 243_825);
    }

    #[test]
    fn off_costs_nothing_and_big_plans_are_limited_by_the_rate_or_connections() {
        let off = estimate(&input(RealtimeMode::Off, 1.0, 5));
        assert_eq!(off.messages_per_month_one_viewer, 0);
        assert_eq!(off.warning, None);
        assert!(off.summary().contains("no Realtime messages"));
        let mut team = input(RealtimeMode::Broadcast, 1.0, 5);
        team.plan = RealtimePlan::Team;
        let b = estimate(&team);
        assert_eq!(
            (b.viewers_fit, b.limited_by),
            (2_499, "messages_per_second")
        );
        assert_eq!(b.warning, None);
        let slow = estimate(&BudgetInput {
            interval: Duration::from_secs(60),
            ..team
        });
        assert_eq!(
            (slow.viewers_fit, slow.limited_by),
            (10_000, "concurrent_connections")
        );
        let mut split = input(RealtimeMode::Broadcast, 1.0, 1000);
        split.parts_per_tick = 3;
        assert_eq!(estimate(&split).messages_per_month_per_viewer, 3 * 487_650);
    }

    #[test]
    fn plans_parse_and_have_their_quotas() {
        assert_eq!(
            RealtimePlan::parse("Pro-No-Spend-Cap"),
            Some(RealtimePlan::ProNoSpendCap)
        );
        assert_eq!(RealtimePlan::parse("gold"), None);
        assert_eq!(quota(RealtimePlan::Free).broadcast_payload_bytes, 256_000);
        assert_eq!(quota(RealtimePlan::Pro).messages_per_month, Some(5_000_000));
    }
}
