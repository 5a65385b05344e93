//! Every subscription of a connection watched: its state (`pending`, `active`, `silent`,
//! `refused`, `unanswered`), when it last delivered data, and the silence rule.
//!
//! The connection owns one [`Board`] (one entry per subscription of its plan, in order) and
//! publishes snapshots of it ([`SubscriptionStatus`]) to the session health. The rules:
//!
//! - **Silence**: an active subscription whose service delivers no data for longer than its
//!   limit (`SERVICE_SILENCE_TIMEOUT` for LEVELONE, book and screener services,
//!   `CHART_SILENCE_TIMEOUT` for CHART services) while its market is open
//!   ([`service_market_open`]) turns `silent` and is subscribed again on the same connection;
//!   silent for another limit after that, the connection is made again. ACCT_ACTIVITY is
//!   event-driven (quiet while nobody trades) and never silent.
//! - A silent service that delivers again is `active`; the hole is one `stream_gaps` row
//!   (reason `service_silent`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::schwab::wire::Service;
use market_calendar::MarketClock;

/// The silence rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceSettings {
    /// `SERVICE_SILENCE_TIMEOUT`: LEVELONE, book and screener services.
    pub quotes: Duration,
    /// `CHART_SILENCE_TIMEOUT`: CHART_EQUITY, CHART_FUTURES.
    pub charts: Duration,
    /// Which instant "is the market open?" is asked about.
    pub clock: MarketClock,
}

impl Default for SilenceSettings {
    /// The settings' defaults: 60 s and 180 s, the wall clock.
    fn default() -> Self {
        Self {
            quotes: Duration::from_secs(60),
            charts: Duration::from_secs(180),
            clock: MarketClock::Wall,
        }
    }
}

impl SilenceSettings {
    /// The silence limit of `service`; `None` for services that may be quiet for hours.
    pub fn limit(&self, service: Service) -> Option<Duration> {
        match service {
            Service::AcctActivity => None,
            Service::ChartEquity | Service::ChartFutures => Some(self.charts),
            _ => Some(self.quotes),
        }
    }
}

/// True while `service`'s market is open at `at`: the NYSE regular session for equities,
/// options, their books, screeners and candles; the futures week for futures, futures
/// options and their candles; the forex week for forex.
pub fn service_market_open(service: Service, at: DateTime<Utc>) -> bool {
    match service {
        Service::LevelOneFutures | Service::LevelOneFuturesOptions | Service::ChartFutures => {
            market_calendar::futures_open(at)
        }
        Service::LevelOneForex => market_calendar::forex_open(at),
        _ => market_calendar::is_open(at),
    }
}

/// A subscription's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubState {
    /// Sent (or about to be); no answer yet.
    Pending,
    /// Acknowledged; data flows (or the market is closed).
    Active,
    /// No data for longer than its limit while its market is open; subscribed again.
    Silent,
    /// Schwab answered with a non-zero code; not retried on this connection.
    Refused { code: i64, message: String },
    /// No answer after every attempt; not retried on this connection.
    Unanswered { attempts: u32 },
}

impl SubState {
    /// The state's name in `/health`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Silent => "silent",
            Self::Refused { .. } => "refused",
            Self::Unanswered { .. } => "unanswered",
        }
    }

    /// The `market_streamer_subscription_state` value (0 is "not subscribed").
    pub fn metric(&self) -> f64 {
        match self {
            Self::Pending => 1.0,
            Self::Active => 2.0,
            Self::Silent => 3.0,
            Self::Refused { .. } => 4.0,
            Self::Unanswered { .. } => 5.0,
        }
    }
}

/// One subscription as `/health` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionStatus {
    pub service: Service,
    /// Keys asked for.
    pub keys: usize,
    pub state: SubState,
    /// When it entered its state.
    pub since: DateTime<Utc>,
    /// The last data item of its service (kept across reconnects).
    pub last_data: Option<DateTime<Utc>>,
    /// Its silence limit (`None`: never silent).
    pub silence_limit: Option<Duration>,
}

/// One entry of the board: the status plus what the rules need.
#[derive(Debug)]
struct Entry {
    status: SubscriptionStatus,
    /// Start of the current quiet spell that counts: the last data, the activation, or the
    /// last moment its market was closed.
    quiet_since: DateTime<Utc>,
    /// When it was subscribed again for silence.
    resubscribed_at: Option<DateTime<Utc>>,
    /// SUBS sent for it on this connection (first attempt included).
    attempts: u32,
}

/// What a silence check asks the connection to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SilenceAction {
    /// Send the subscription at this index again.
    Resubscribe(usize),
    /// Resubscribing did not help: make the connection again.
    Reconnect {
        service: Service,
        since: DateTime<Utc>,
    },
}

/// A silent subscription that delivered again: the hole in its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceEnded {
    pub service: Service,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The subscriptions of one connection.
#[derive(Debug)]
pub struct Board {
    entries: Vec<Entry>,
    silence: SilenceSettings,
    /// The board changed since the last [`Board::take_changed`].
    changed: bool,
}

impl Board {
    /// Every subscription `pending`; `last_data` carried over from the previous connection's
    /// board (by service), so a service that stays silent across reconnects keeps its age.
    pub fn new(
        subs: &[(Service, usize)],
        previous: &[SubscriptionStatus],
        silence: SilenceSettings,
        now: DateTime<Utc>,
    ) -> Self {
        let entries = subs
            .iter()
            .map(|&(service, keys)| Entry {
                status: SubscriptionStatus {
                    service,
                    keys,
                    state: SubState::Pending,
                    since: now,
                    last_data: previous
                        .iter()
                        .find(|p| p.service == service)
                        .and_then(|p| p.last_data),
                    silence_limit: silence.limit(service),
                },
                quiet_since: now,
                resubscribed_at: None,
                attempts: 0,
            })
            .collect();
        Self {
            entries,
            silence,
            changed: true,
        }
    }

    /// A subscription added on the running connection (a service not subscribed before).
    pub fn push(&mut self, service: Service, keys: usize, now: DateTime<Utc>) {
        self.entries.push(Entry {
            status: SubscriptionStatus {
                service,
                keys,
                state: SubState::Pending,
                since: now,
                last_data: None,
                silence_limit: self.silence.limit(service),
            },
            quiet_since: now,
            resubscribed_at: None,
            attempts: 0,
        });
        self.changed = true;
    }

    /// Subscription `i` now has `keys` keys (after an ADD or UNSUBS).
    pub fn set_keys(&mut self, i: usize, keys: usize) {
        if let Some(e) = self.entries.get_mut(i)
            && e.status.keys != keys
        {
            e.status.keys = keys;
            self.changed = true;
        }
    }

    /// The statuses, in plan order.
    pub fn statuses(&self) -> Vec<SubscriptionStatus> {
        self.entries.iter().map(|e| e.status.clone()).collect()
    }

    /// True (once) when a state changed since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The service of subscription `i`.
    pub fn service(&self, i: usize) -> Option<Service> {
        self.entries.get(i).map(|e| e.status.service)
    }

    /// A SUBS for subscription `i` goes out.
    pub fn sent(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            e.attempts += 1;
        }
    }

    /// SUBS sent for subscription `i` on this connection.
    pub fn attempts(&self, i: usize) -> u32 {
        self.entries.get(i).map_or(0, |e| e.attempts)
    }

    fn set(&mut self, i: usize, state: SubState, now: DateTime<Utc>) {
        if let Some(e) = self.entries.get_mut(i)
            && e.status.state != state
        {
            e.status.state = state;
            e.status.since = now;
            self.changed = true;
        }
    }

    /// Schwab acknowledged subscription `i`. A silent one stays silent until data comes.
    pub fn acknowledged(&mut self, i: usize, now: DateTime<Utc>) {
        let Some(e) = self.entries.get_mut(i) else {
            return;
        };
        if e.status.state == SubState::Silent {
            return;
        }
        e.quiet_since = now;
        self.set(i, SubState::Active, now);
    }

    /// Schwab refused subscription `i` with `code`.
    pub fn refused(&mut self, i: usize, code: i64, message: &str, now: DateTime<Utc>) {
        let state = SubState::Refused {
            code,
            message: message.to_string(),
        };
        self.set(i, state, now);
    }

    /// Subscription `i` got no answer after its attempts.
    pub fn unanswered(&mut self, i: usize, now: DateTime<Utc>) {
        let attempts = self.entries.get(i).map_or(0, |e| e.attempts);
        self.set(i, SubState::Unanswered { attempts }, now);
    }

    /// True when any subscription is acknowledged (active or silent).
    pub fn any_acknowledged(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.status.state, SubState::Active | SubState::Silent))
    }

    /// Data of `services` (one flag per [`Service::index`]) arrived at `now`; returns the
    /// silences this ended.
    pub fn data(&mut self, services: &[bool], now: DateTime<Utc>) -> Vec<SilenceEnded> {
        let mut ended = Vec::new();
        for e in &mut self.entries {
            if !services
                .get(e.status.service.index())
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            if e.status.state == SubState::Silent {
                ended.push(SilenceEnded {
                    service: e.status.service,
                    start: e.status.last_data.unwrap_or(e.quiet_since),
                    end: now,
                });
                e.status.state = SubState::Active;
                e.status.since = now;
                e.resubscribed_at = None;
                self.changed = true;
            }
            e.status.last_data = Some(now);
            e.quiet_since = now;
        }
        ended
    }

    /// The silence rule at `now` (wall clock); the market is asked about at the settings'
    /// clock. At most one action per call (the first in plan order).
    pub fn check_silence(&mut self, now: DateTime<Utc>) -> Option<SilenceAction> {
        let market_now = self.silence.clock.market_now(now);
        for (i, e) in self.entries.iter_mut().enumerate() {
            let Some(limit) = e.status.silence_limit else {
                continue;
            };
            if !matches!(e.status.state, SubState::Active | SubState::Silent) {
                continue;
            }
            if !service_market_open(e.status.service, market_now) {
                // A closed market is not silence: the count starts again at the open.
                e.quiet_since = now;
                continue;
            }
            let quiet = (now - e.quiet_since).to_std().unwrap_or_default();
            match (&e.status.state, e.resubscribed_at) {
                (SubState::Active, _) if quiet > limit => {
                    e.status.state = SubState::Silent;
                    e.status.since = now;
                    e.resubscribed_at = Some(now);
                    self.changed = true;
                    return Some(SilenceAction::Resubscribe(i));
                }
                (SubState::Silent, Some(at)) if (now - at).to_std().unwrap_or_default() > limit => {
                    return Some(SilenceAction::Reconnect {
                        service: e.status.service,
                        since: e.status.last_data.unwrap_or(e.quiet_since),
                    });
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wednesday 2026-12-02 15:00 UTC = 10:00 New York: every market open.
    fn open() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-02T15:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    fn board() -> Board {
        let silence = SilenceSettings {
            clock: MarketClock::Fixed(open()),
            ..SilenceSettings::default()
        };
        Board::new(
            &[
                (Service::LevelOneEquities, 2),
                (Service::ChartEquity, 2),
                (Service::AcctActivity, 1),
            ],
            &[],
            silence,
            open(),
        )
    }

    fn secs(n: i64) -> chrono::Duration {
        chrono::Duration::seconds(n)
    }

    #[test]
    fn a_quiet_service_is_resubscribed_then_reconnected_and_its_hole_reported() {
        let mut b = board();
        let t0 = open();
        for i in 0..3 {
            b.acknowledged(i, t0);
        }
        assert!(b.any_acknowledged());
        let mut flags = [false; Service::ALL.len()];
        flags[Service::ChartEquity.index()] = true;
        flags[Service::AcctActivity.index()] = true;
        // Candles keep coming; quotes stop after t0.
        for s in 1..=61 {
            b.data(&flags, t0 + secs(s));
        }
        assert_eq!(
            b.check_silence(t0 + secs(61)),
            Some(SilenceAction::Resubscribe(0)),
            "LEVELONE silent for over 60 s"
        );
        assert_eq!(b.statuses()[0].state, SubState::Silent);
        assert_eq!(
            b.check_silence(t0 + secs(100)),
            None,
            "waiting after the resubscribe"
        );
        assert_eq!(
            b.check_silence(t0 + secs(122)),
            Some(SilenceAction::Reconnect {
                service: Service::LevelOneEquities,
                since: t0
            })
        );
        // Data again (on this connection): the silence ends with its hole.
        let mut quotes = [false; Service::ALL.len()];
        quotes[Service::LevelOneEquities.index()] = true;
        let ended = b.data(&quotes, t0 + secs(123));
        assert_eq!(
            ended,
            [SilenceEnded {
                service: Service::LevelOneEquities,
                start: t0,
                end: t0 + secs(123)
            }]
        );
        assert_eq!(b.statuses()[0].state, SubState::Active);
    }

    #[test]
    fn closed_markets_and_account_activity_are_never_silent() {
        let night = DateTime::parse_from_rfc3339("2026-12-03T03:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut b = Board::new(
            &[(Service::LevelOneEquities, 1), (Service::AcctActivity, 1)],
            &[],
            SilenceSettings {
                clock: MarketClock::Fixed(night),
                ..SilenceSettings::default()
            },
            night,
        );
        b.acknowledged(0, night);
        b.acknowledged(1, night);
        assert_eq!(b.check_silence(night + secs(3600)), None);
        assert!(
            service_market_open(Service::LevelOneFutures, night),
            "futures trade at 22:00 ET"
        );
        assert!(!service_market_open(Service::LevelOneEquities, night));
    }

    #[test]
    fn last_data_survives_a_new_board_and_refusals_are_kept() {
        let mut b = board();
        b.acknowledged(0, open());
        let mut flags = [false; Service::ALL.len()];
        flags[Service::LevelOneEquities.index()] = true;
        b.data(&flags, open() + secs(5));
        b.refused(1, 19, "Reached symbol limit", open());
        let statuses = b.statuses();
        assert_eq!(
            statuses[1].state,
            SubState::Refused {
                code: 19,
                message: "Reached symbol limit".into()
            }
        );
        let next = Board::new(
            &[(Service::LevelOneEquities, 2)],
            &statuses,
            SilenceSettings::default(),
            open(),
        );
        assert_eq!(next.statuses()[0].last_data, Some(open() + secs(5)));
        assert_eq!(next.statuses()[0].state, SubState::Pending);
    }
}
