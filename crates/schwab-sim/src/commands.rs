//! Subscription commands: validating SUBS / ADD / UNSUBS / VIEW (fields, keys, the symbol
//! limit) and carrying them out on the instruments (snapshots, activation of the walks,
//! field-list changes). Per-service key formats live in `keys.rs`; futures, forex, books,
//! screeners and account activity start and stop in their own files.

use std::collections::BTreeSet;

use super::error::SimError;
use super::field_value::FieldSet;
use super::instruments::{LevelOneSub, OptionContract, Underlying};
use super::keys::ParsedKey;
use super::option_model::{OptionState, UnderlyingView};
use super::option_symbol::OptionSymbol;
use super::reference::underlying_of_root;
use super::schedule::EventKind;
use super::simulator::MarketSimulator;
use super::subscription::{Command, Service};
use super::walk::EquityState;

/// `earlier` or `at`, whichever comes first.
pub(super) fn earliest(earlier: Option<i64>, at: i64) -> Option<i64> {
    Some(earlier.map_or(at, |e| e.min(at)))
}

impl MarketSimulator {
    /// Applies a subscription command at the current simulated time.
    ///
    /// SUBS replaces the service's whole key list and field list; ADD adds keys (fields, if
    /// given, replace the service's field list); UNSUBS removes keys; VIEW changes fields only.
    /// Every key named by SUBS or ADD gets a snapshot as its next item (for CHART_EQUITY and
    /// CHART_FUTURES: the latest completed candle, if one exists; for books and screeners:
    /// the whole record), sent in the next frame slot.
    /// Fields may come in any order; field 0 is accepted and never sent (the symbol is `key`).
    ///
    /// Services and keys: `LEVELONE_EQUITIES` (fields 0–51), `CHART_EQUITY` (0–8),
    /// `NYSE_BOOK` / `NASDAQ_BOOK` (0–3) take equity symbols; `LEVELONE_OPTIONS` (0–55) and
    /// `OPTIONS_BOOK` (0–3) the 21-character form `AAPL  251219C00230000`;
    /// `LEVELONE_FUTURES` (0–40) and `CHART_FUTURES` (0–6) `/ES` or `/ESZ26`;
    /// `LEVELONE_FUTURES_OPTIONS` (0–31) `./OZCZ27C565`; `LEVELONE_FOREX` (0–29) `EUR/USD`;
    /// `SCREENER_EQUITY` / `SCREENER_OPTION` (0–4) `PREFIX_SORTFIELD_FREQUENCY`;
    /// `ACCT_ACTIVITY` (0–3, SUBS and UNSUBS only) any string. With a symbol limit set, a
    /// SUBS or ADD that would subscribe more keys over all services is refused.
    /// Nothing changes when an error is returned.
    pub fn apply_command(
        &mut self,
        service: &str,
        command: &str,
        keys: &[String],
        fields: &[u32],
    ) -> Result<(), SimError> {
        let service = Service::parse(service)?;
        let command = Command::parse(command)?;
        if service.subs_and_unsubs_only() && matches!(command, Command::Add | Command::View) {
            return Err(SimError::CommandNotSupported {
                service: service.name(),
                command: command.name(),
            });
        }
        let field_set = service.field_set(fields)?;
        self.check_arguments(service, command, keys, field_set)?;
        let parsed = if command == Command::View {
            Vec::new()
        } else {
            keys.iter()
                .map(|key| ParsedKey::parse(service, key))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.check_symbol_limit(service, command, keys)?;
        let creating = command != Command::Unsubs;
        let ids: BTreeSet<usize> = keys
            .iter()
            .zip(parsed)
            .filter_map(|(key, parsed)| match self.lookup(service, key) {
                Some(id) => Some(id),
                None if creating => Some(self.create(key, parsed)),
                None => None,
            })
            .collect();
        let changes = self.subs[service.index()].apply(command, &ids, field_set);
        let fields_changed =
            matches!(command, Command::View | Command::Add) && !field_set.is_empty();
        for id in changes.removed {
            self.stop(service, id);
        }
        if fields_changed {
            self.retain_fields(service, field_set);
        }
        for id in changes.started {
            self.start(service, id);
        }
        Ok(())
    }

    /// Refuses commands that lack the keys or fields they need.
    fn check_arguments(
        &self,
        service: Service,
        command: Command,
        keys: &[String],
        fields: FieldSet,
    ) -> Result<(), SimError> {
        let current_fields = self.subs[service.index()].fields;
        let missing_fields = match command {
            Command::Subs => fields.is_empty() && !keys.is_empty(),
            Command::Add => fields.is_empty() && current_fields.is_empty(),
            Command::View => fields.is_empty(),
            Command::Unsubs => false,
        };
        let missing_keys = matches!(command, Command::Add | Command::Unsubs) && keys.is_empty();
        if missing_keys {
            Err(SimError::MissingKeys {
                service: service.name(),
                command: command.name(),
            })
        } else if missing_fields {
            Err(SimError::MissingFields {
                service: service.name(),
                command: command.name(),
            })
        } else {
            Ok(())
        }
    }

    /// Refuses a SUBS or ADD that would take the keys subscribed over all services past the
    /// symbol limit.
    fn check_symbol_limit(
        &self,
        service: Service,
        command: Command,
        keys: &[String],
    ) -> Result<(), SimError> {
        let Some(limit) = self.cfg.symbol_limit else {
            return Ok(());
        };
        let current = &self.subs[service.index()].keys;
        let distinct: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let total = self.subscribed_keys();
        let requested = match command {
            Command::Subs => total - current.len() + distinct.len(),
            Command::Add => {
                let new = distinct
                    .iter()
                    .filter(|k| {
                        !self
                            .lookup(service, k)
                            .is_some_and(|id| current.contains(&id))
                    })
                    .count();
                total + new
            }
            Command::Unsubs | Command::View => return Ok(()),
        };
        // a command that does not grow the total passes (the limit may have been lowered)
        if requested > limit && requested > total {
            Err(SimError::SymbolLimit { limit, requested })
        } else {
            Ok(())
        }
    }

    /// The instrument index of `key` on `service`, if it exists.
    pub(super) fn lookup(&self, service: Service, key: &str) -> Option<usize> {
        let map = match service {
            Service::LevelOneEquities
            | Service::ChartEquity
            | Service::NyseBook
            | Service::NasdaqBook => &self.underlying_ids,
            Service::LevelOneOptions | Service::OptionsBook => &self.option_ids,
            Service::LevelOneFutures | Service::ChartFutures => &self.future_ids,
            Service::LevelOneFuturesOptions => &self.future_option_ids,
            Service::LevelOneForex => &self.forex_ids,
            Service::ScreenerEquity | Service::ScreenerOption => &self.screener_ids,
            Service::AcctActivity => return self.account.id_of(key),
        };
        map.get(key).copied()
    }

    /// Creates the (inactive) instrument of a validated key.
    fn create(&mut self, key: &str, parsed: ParsedKey) -> usize {
        match parsed {
            ParsedKey::Equity => self.create_underlying(key),
            ParsedKey::Option(spec) => self.create_option(key, spec),
            ParsedKey::Future(spec) => self.create_future(key, &spec),
            ParsedKey::FutureOption(spec) => self.create_future_option(key, spec),
            ParsedKey::Forex => self.create_forex(key),
            ParsedKey::Screener(spec) => self.create_screener(key, spec),
            ParsedKey::Account => self.account.create(key),
        }
    }

    /// Adds an (inactive) underlying for `symbol`, trading from the current time.
    pub(super) fn create_underlying(&mut self, symbol: &str) -> usize {
        let state = EquityState::new(
            symbol,
            self.cfg.seed,
            self.cfg.updates_per_symbol_per_sec,
            self.now_ms,
        );
        let id = self.underlyings.len();
        self.underlyings
            .push(Underlying::new(state, self.cfg.candle_ms));
        self.underlying_ids.insert(symbol.to_string(), id);
        id
    }

    /// Adds an (inactive) option contract and, if needed, the underlying its root follows.
    fn create_option(&mut self, symbol: &str, spec: OptionSymbol) -> usize {
        let underlying_symbol = underlying_of_root(&spec.root).to_string();
        let underlying = match self.underlying_ids.get(&underlying_symbol) {
            Some(&id) => id,
            None => self.create_underlying(&underlying_symbol),
        };
        let und = &self.underlyings[underlying].state;
        let view = UnderlyingView {
            price: und.mark(),
            annual_volatility: und.reference.annual_volatility,
        };
        let state = OptionState::new(
            symbol,
            spec,
            &underlying_symbol,
            view,
            self.cfg.seed,
            self.now_ms,
        );
        let id = self.options.len();
        self.options.push(OptionContract {
            state,
            underlying,
            level_one: None,
            book: false,
            slot: Default::default(),
        });
        self.option_ids.insert(symbol.to_string(), id);
        id
    }

    /// Starts (or restarts with a snapshot) `id` on `service`.
    fn start(&mut self, service: Service, id: usize) {
        let snapshot_at = self.clock.next_slot_after(self.now_ms);
        match service {
            Service::LevelOneEquities => {
                let und = &mut self.underlyings[id];
                match &mut und.level_one {
                    Some(sub) => sub.restart(),
                    None => und.level_one = Some(LevelOneSub::fresh()),
                }
                self.schedule
                    .set(&mut und.slot, snapshot_at, EventKind::Underlying, id);
            }
            Service::LevelOneOptions | Service::OptionsBook => {
                let contract = &mut self.options[id];
                let was_active = contract.is_active();
                if service == Service::OptionsBook {
                    contract.book = true;
                    self.book_next_at[2] = earliest(self.book_next_at[2], snapshot_at);
                } else {
                    match &mut contract.level_one {
                        Some(sub) => sub.restart(),
                        None => contract.level_one = Some(LevelOneSub::fresh()),
                    }
                    self.schedule
                        .set(&mut contract.slot, snapshot_at, EventKind::Option, id);
                }
                let underlying = contract.underlying;
                if !was_active {
                    self.underlyings[underlying].option_refs += 1;
                }
                self.keep_walking(underlying);
            }
            Service::ChartEquity => {
                self.underlyings[id].chart =
                    Some(super::instruments::ChartSub { snapshot_due: true });
                self.chart_snapshots_at = earliest(self.chart_snapshots_at, snapshot_at);
                self.keep_walking(id);
            }
            Service::NyseBook | Service::NasdaqBook => {
                let book = usize::from(service == Service::NasdaqBook);
                self.underlyings[id].books[book] = true;
                self.book_next_at[book] = earliest(self.book_next_at[book], snapshot_at);
                self.keep_walking(id);
            }
            Service::LevelOneFutures
            | Service::ChartFutures
            | Service::LevelOneFuturesOptions
            | Service::LevelOneForex => self.start_tick_instrument(service, id, snapshot_at),
            Service::ScreenerEquity | Service::ScreenerOption => {
                let i = usize::from(service == Service::ScreenerOption);
                self.screener_next_at[i] = earliest(self.screener_next_at[i], snapshot_at);
            }
            Service::AcctActivity => self.account.start(self.now_ms, snapshot_at),
        }
    }

    /// Removes `id` from `service`; an underlying no service needs stops walking.
    fn stop(&mut self, service: Service, id: usize) {
        let underlying = match service {
            Service::LevelOneEquities => {
                self.underlyings[id].level_one = None;
                id
            }
            Service::ChartEquity => {
                self.underlyings[id].chart = None;
                id
            }
            Service::NyseBook | Service::NasdaqBook => {
                self.underlyings[id].books[usize::from(service == Service::NasdaqBook)] = false;
                id
            }
            Service::LevelOneOptions | Service::OptionsBook => {
                let contract = &mut self.options[id];
                let was_active = contract.is_active();
                if service == Service::OptionsBook {
                    contract.book = false;
                } else {
                    contract.level_one = None;
                    contract.slot.cancel();
                }
                let und = &mut self.underlyings[contract.underlying];
                if was_active && !contract.is_active() {
                    und.option_refs = und.option_refs.saturating_sub(1);
                }
                contract.underlying
            }
            Service::LevelOneFutures
            | Service::ChartFutures
            | Service::LevelOneFuturesOptions
            | Service::LevelOneForex => return self.stop_tick_instrument(service, id),
            Service::ScreenerEquity | Service::ScreenerOption => return,
            Service::AcctActivity => {
                if self.subs[service.index()].keys.is_empty() {
                    self.account.stop();
                }
                return;
            }
        };
        let und = &mut self.underlyings[underlying];
        if !und.is_active() {
            und.slot.cancel();
        }
    }

    /// Keeps an active underlying's walk scheduled.
    pub(super) fn keep_walking(&mut self, id: usize) {
        let und = &mut self.underlyings[id];
        if und.is_active()
            && !und.slot.is_scheduled()
            && let Some(at) = self.clock.next_update_after(self.now_ms, und.state.rng())
        {
            self.schedule
                .set(&mut und.slot, at, EventKind::Underlying, id);
        }
    }

    /// Applies a new field list to the delta caches of every subscribed symbol.
    fn retain_fields(&mut self, service: Service, fields: FieldSet) {
        let keys: Vec<usize> = self.subs[service.index()].keys.iter().copied().collect();
        for id in keys {
            let sub = match service {
                Service::LevelOneEquities => self.underlyings[id].level_one.as_mut(),
                Service::LevelOneOptions => self.options[id].level_one.as_mut(),
                Service::LevelOneFutures => self.futures[id].level_one.as_mut(),
                Service::LevelOneFuturesOptions => self.future_options[id].level_one.as_mut(),
                Service::LevelOneForex => self.forex[id].level_one.as_mut(),
                _ => None,
            };
            if let Some(sub) = sub {
                sub.set_fields(fields);
            }
        }
    }
}
