//! The watchlist (issue 16): symbols the front end adds to and removes from the `watchlist`
//! table while the service runs, applied on the running Schwab connection.
//!
//! One task owns the watchlist state. It reads the table when told to (PostgreSQL:
//! `LISTEN watchlist_changed`, fed by the table's trigger, plus a re-read every 30 s so
//! nothing is missed across reconnects; SQLite: every `WATCHLIST_POLL`), waits a second for a
//! burst of edits to settle (so a burst becomes one `ADD`), validates each row by its
//! service's format ([`validate`]), keeps at most `WATCHLIST_MAX_PER_SERVICE` rows per
//! service, and sends the difference to the session as [`SubscriptionChange`]s. The session
//! answers per set of keys ([`KeysAnswer`]); rows become `active`, or `rejected` with the
//! reason (a bad format, the cap, or Schwab's code and text). Keys also in the configured
//! lists are `active` and never removed by the table. A rejected row stays rejected until it
//! is deleted and inserted again.

pub mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::db::Database;
use crate::db::watchlist::{self, Outcome};
use crate::schwab::session::changes::{KeysAnswer, SubscriptionChange};
use crate::schwab::session::protocol::Subscription;
use crate::schwab::session::supervisor::SubscriptionControl;
use crate::schwab::wire::Service;

/// How long a burst of edits may take to settle before it is applied (one `ADD`).
const SETTLE: Duration = Duration::from_secs(1);
/// PostgreSQL's periodic re-read (besides the notifications).
const PG_REREAD: Duration = Duration::from_secs(30);
/// Changes and answers waiting between the task and the session. Full changes: the task
/// waits (it has nothing else to do); full answers: see [`SubscriptionControl::answers`].
const CHANNEL: usize = 64;

/// What the task needs to know.
#[derive(Debug, Clone)]
pub struct WatchlistSettings {
    /// `WATCHLIST_MAX_PER_SERVICE`.
    pub max_per_service: usize,
    /// `WATCHLIST_POLL` (SQLite).
    pub poll: Duration,
    /// The configured subscriptions (never removed by the table).
    pub configured: Vec<Subscription>,
    /// Field lists of every service (for one first subscribed by the table).
    pub fields: Vec<(Service, Vec<u32>)>,
}

/// Starts the task; the session gets the returned channels. It ends when `stop` is set or
/// the session is gone.
pub fn spawn(
    db: std::sync::Arc<Database>,
    settings: WatchlistSettings,
    stop: watch::Receiver<bool>,
) -> (SubscriptionControl, tokio::task::JoinHandle<()>) {
    let (changes_tx, changes) = mpsc::channel(CHANNEL);
    let (answers, answers_rx) = mpsc::channel(CHANNEL);
    let task = tokio::spawn(run(db, settings, changes_tx, answers_rx, stop));
    (SubscriptionControl { changes, answers }, task)
}

/// The task's state.
struct State {
    settings: WatchlistSettings,
    /// Table keys sent to the session, by service (normalised keys).
    applied: BTreeMap<Service, BTreeSet<String>>,
    /// Normalised key → the row's `(service, symbol)` as stored, for the answers.
    rows: BTreeMap<(Service, String), (String, String)>,
}

async fn run(
    db: std::sync::Arc<Database>,
    settings: WatchlistSettings,
    changes: mpsc::Sender<SubscriptionChange>,
    mut answers: mpsc::Receiver<KeysAnswer>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = State {
        settings,
        applied: BTreeMap::new(),
        rows: BTreeMap::new(),
    };
    // Notifications wake this channel (capacity 1: one waiting wake-up covers a burst).
    let (wake_tx, mut wake) = mpsc::channel::<()>(1);
    let mut listener: Option<(tokio_postgres::Client, tokio::task::AbortHandle)> = None;
    let every = match &*db {
        Database::Postgres(_) => PG_REREAD,
        Database::Sqlite(_) => state.settings.poll,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = crate::shutdown::stopped(&mut stop) => break,
            _ = tick.tick() => {
                if let Database::Postgres(pg) = &*db
                    && listener.as_ref().is_none_or(|(c, _)| c.is_closed())
                {
                    listener = match pg.listen(watchlist::CHANNEL, wake_tx.clone()).await {
                        Ok(l) => Some(l),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot listen for watchlist changes; reading the table every 30 s instead");
                            None
                        }
                    };
                }
                if state.sync(&db, &changes).await.is_err() {
                    break;
                }
            }
            Some(()) = wake.recv() => {
                // A burst of edits settles into one read (and one ADD per service).
                tokio::time::sleep(SETTLE).await;
                while wake.try_recv().is_ok() {}
                if state.sync(&db, &changes).await.is_err() {
                    break;
                }
            }
            answer = answers.recv() => match answer {
                Some(answer) => state.answered(&db, answer).await,
                None => break,
            },
        }
    }
    if let Some((_, driver)) = listener {
        driver.abort();
    }
}

/// The session is gone.
struct SessionGone;

impl State {
    fn configured(&self, service: Service) -> &[String] {
        self.settings
            .configured
            .iter()
            .find(|s| s.service == service)
            .map_or(&[], |s| s.keys.as_slice())
    }

    /// Reads the table, writes the statuses it can decide alone, and sends the difference.
    async fn sync(
        &mut self,
        db: &Database,
        changes: &mpsc::Sender<SubscriptionChange>,
    ) -> Result<(), SessionGone> {
        let rows = match watchlist::read(db).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the watchlist; trying again shortly");
                return Ok(());
            }
        };
        let mut outcomes = Vec::new();
        let mut wanted: BTreeMap<Service, BTreeSet<String>> = BTreeMap::new();
        self.rows.clear();
        for row in rows {
            let decided = |status: &'static str, reason: Option<String>| Outcome {
                service: row.service.clone(),
                symbol: row.symbol.clone(),
                status,
                reason,
            };
            let service = match validate::service(&row.service) {
                Ok(s) => s,
                Err(reason) => {
                    outcomes.push(decided("rejected", Some(reason)));
                    continue;
                }
            };
            let key = match validate::key(service, &row.symbol) {
                Ok(k) => k,
                Err(reason) => {
                    outcomes.push(decided("rejected", Some(reason)));
                    continue;
                }
            };
            if row.status == "rejected" {
                continue; // stays rejected until deleted and inserted again
            }
            if self.configured(service).contains(&key) {
                outcomes.push(decided(
                    "active",
                    Some("also in the configured lists (.env)".into()),
                ));
                continue;
            }
            let keys = wanted.entry(service).or_default();
            if keys.len() >= self.settings.max_per_service && !keys.contains(&key) {
                outcomes.push(decided(
                    "rejected",
                    Some(format!(
                        "the watchlist holds at most {} symbols per service (WATCHLIST_MAX_PER_SERVICE)",
                        self.settings.max_per_service
                    )),
                ));
                continue;
            }
            keys.insert(key.clone());
            self.rows
                .insert((service, key), (row.service.clone(), row.symbol.clone()));
        }
        if let Err(e) = watchlist::write(db, &outcomes).await {
            tracing::warn!(error = %e, "cannot write watchlist statuses; trying again at the next read");
        }
        let services: BTreeSet<Service> =
            wanted.keys().chain(self.applied.keys()).copied().collect();
        for service in services {
            let want = wanted.remove(&service).unwrap_or_default();
            let have = self.applied.remove(&service).unwrap_or_default();
            let add: Vec<String> = want.difference(&have).cloned().collect();
            let remove: Vec<String> = have.difference(&want).cloned().collect();
            if !want.is_empty() {
                self.applied.insert(service, want);
            }
            if add.is_empty() && remove.is_empty() {
                continue;
            }
            tracing::info!(
                service = service.wire_name(),
                add = add.len(),
                remove = remove.len(),
                "applying watchlist changes"
            );
            let fields = self
                .settings
                .fields
                .iter()
                .find(|(s, _)| *s == service)
                .map(|(_, f)| f.clone())
                .unwrap_or_default();
            let change = SubscriptionChange {
                service,
                add,
                remove,
                fields,
            };
            if changes.send(change).await.is_err() {
                return Err(SessionGone);
            }
        }
        Ok(())
    }

    /// Schwab's answer for keys: their rows become `active`, or `rejected` with the code.
    async fn answered(&mut self, db: &Database, answer: KeysAnswer) {
        let mut outcomes = Vec::new();
        for key in &answer.keys {
            let Some((service, symbol)) = self.rows.get(&(answer.service, key.clone())) else {
                continue; // a configured key, or a row deleted meanwhile
            };
            let (status, reason) = match &answer.result {
                Ok(()) => ("active", None),
                Err((code, message)) => {
                    if let Some(keys) = self.applied.get_mut(&answer.service) {
                        keys.remove(key);
                    }
                    let text = if *code < 0 {
                        message.clone()
                    } else {
                        format!("Schwab refused it (code {code}: {message})")
                    };
                    ("rejected", Some(text))
                }
            };
            outcomes.push(Outcome {
                service: service.clone(),
                symbol: symbol.clone(),
                status,
                reason,
            });
        }
        if let Err(e) = watchlist::write(db, &outcomes).await {
            tracing::warn!(error = %e, "cannot write watchlist statuses");
        }
    }
}
