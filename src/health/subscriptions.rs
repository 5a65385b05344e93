//! `/health` for every subscription: its report (state, keys, Schwab's code, last data) and
//! the rules it adds to the judgement.
//!
//! - a refused subscription (any non-zero code) or one that got no answer: `degraded`, naming
//!   the service, the code and what to do; `down` when no subscription is active at all;
//! - a silent service (no data for longer than its limit while its market is open, already
//!   subscribed again): `degraded`; `down` once its data is older than its limit plus
//!   2 × `STALL_TIMEOUT` (the stalled-stream limit), or when every service that should
//!   deliver is silent.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::judge::{HealthRules, Verdict, age, human};
use super::snapshot::Snapshot;
use crate::schwab::session::SessionState;
use crate::schwab::session::subscriptions::{SubState, SubscriptionStatus, service_market_open};
use crate::schwab::wire::Service;
use market_calendar::{MarketStatus, session_today};

/// One subscription in `/health` (`stream.subscriptions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionReport {
    pub service: &'static str,
    pub keys: usize,
    /// `pending`, `active`, `silent`, `refused`, `unanswered`.
    pub state: &'static str,
    pub since: DateTime<Utc>,
    /// Schwab's code and text, for `refused`.
    pub code: Option<i64>,
    pub message: Option<String>,
    /// SUBS sent without an answer, for `unanswered`.
    pub attempts: Option<u32>,
    pub last_data_at: Option<DateTime<Utc>>,
    pub last_data_age_secs: Option<f64>,
    /// The silence limit (`null`: never silent, ACCT_ACTIVITY).
    pub silence_limit_secs: Option<f64>,
}

/// The reports of the session's subscriptions.
pub fn reports(snap: &Snapshot) -> Vec<SubscriptionReport> {
    snap.session
        .subscriptions
        .iter()
        .map(|s| {
            let (code, message, attempts) = match &s.state {
                SubState::Refused { code, message } => (Some(*code), Some(message.clone()), None),
                SubState::Unanswered { attempts } => (None, None, Some(*attempts)),
                _ => (None, None, None),
            };
            SubscriptionReport {
                service: s.service.wire_name(),
                keys: s.keys,
                state: s.state.as_str(),
                since: s.since,
                code,
                message,
                attempts,
                last_data_at: s.last_data,
                last_data_age_secs: s.last_data.map(|t| age(snap.now, t).as_secs_f64()),
                silence_limit_secs: s.silence_limit.map(|d| d.as_secs_f64()),
            }
        })
        .collect()
}

/// What to do about a refusal with `code`.
fn advice(s: &SubscriptionStatus, code: i64) -> String {
    match code {
        19 => format!(
            "Schwab's symbol limit was reached when asking for {} key(s): shorten the symbol lists in .env (SYMBOLS, OPTION_SYMBOLS, FUTURES_SYMBOLS, …) and restart",
            s.keys
        ),
        11 => {
            "the service is not available to this app or account: remove its keys from .env".into()
        }
        21..=25 => "check this service's keys and field numbers in .env".into(),
        _ => "see the log for Schwab's answer".into(),
    }
}

/// The subscription rules (see the module doc).
pub(super) fn judge(snap: &Snapshot, market: &MarketStatus, rules: &HealthRules, v: &mut Verdict) {
    let subs = &snap.session.subscriptions;
    if snap.session.state != SessionState::Streaming || subs.is_empty() {
        return;
    }
    let mut should_deliver = 0;
    let mut silent = 0;
    for s in subs {
        let name = s.service.wire_name();
        match &s.state {
            SubState::Refused { code, message } => v.degraded.push(format!(
                "{name} subscription refused by Schwab (code {code}: {message}); the other services stream on: {}",
                advice(s, *code)
            )),
            SubState::Unanswered { attempts } => v.degraded.push(format!(
                "{name} subscription got no answer after {attempts} attempt(s); the other services stream on, it is asked again on the next connection"
            )),
            SubState::Pending => {}
            SubState::Active | SubState::Silent => {
                let Some(limit) = s.silence_limit else {
                    continue;
                };
                if !service_market_open(s.service, market.at) {
                    continue;
                }
                should_deliver += 1;
                if s.state != SubState::Silent {
                    continue;
                }
                silent += 1;
                let reference = data_reference(s, market);
                let quiet = age(snap.now, reference);
                let text = format!(
                    "{name} delivered no data for {} while its market is open (limit {}); subscribed again, the connection is made again if it stays silent",
                    human(quiet),
                    human(limit)
                );
                if quiet > limit + rules.stall_after {
                    v.down.push(text);
                } else {
                    v.degraded.push(text);
                }
            }
        }
    }
    let active = subs
        .iter()
        .any(|s| matches!(s.state, SubState::Active | SubState::Silent));
    let answered = subs.iter().all(|s| s.state != SubState::Pending);
    if answered && !active {
        v.down.push(
            "no subscription is active (every one was refused or got no answer): nothing is streamed; see the reasons above"
                .into(),
        );
    } else if should_deliver > 0 && silent == should_deliver && should_deliver > 1 {
        v.down.push(format!(
            "all {should_deliver} services that should deliver now are silent (heartbeats may still come): no market data is stored"
        ));
    }
}

/// Where a silent service's quiet spell starts: its last data, but not before today's NYSE
/// open for the services that follow the NYSE session (yesterday's last quote is not
/// silence at 09:31).
fn data_reference(s: &SubscriptionStatus, market: &MarketStatus) -> DateTime<Utc> {
    let nyse = !matches!(
        s.service,
        Service::LevelOneFutures
            | Service::LevelOneFuturesOptions
            | Service::ChartFutures
            | Service::LevelOneForex
    );
    let open = nyse
        .then(|| session_today(market.at).map(|t| t.open))
        .flatten();
    match (s.last_data, open) {
        (Some(d), Some(o)) => d.max(o),
        (Some(d), None) => d,
        (None, Some(o)) => o.max(s.since),
        (None, None) => s.since,
    }
}
