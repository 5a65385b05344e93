//! Subscription commands: validating SUBS / ADD / UNSUBS / VIEW and carrying them out on
//! the instruments (snapshots, activation of the walks, field-list changes).

use std::collections::BTreeSet;

use super::error::SimError;
use super::field_value::FieldSet;
use super::instruments::{ChartSub, LevelOneSub, OptionContract, Underlying};
use super::option_model::{OptionState, UnderlyingView};
use super::option_symbol::{OptionSymbol, parse_option_symbol};
use super::reference::underlying_of_root;
use super::schedule::EventKind;
use super::simulator::MarketSimulator;
use super::subscription::{Command, Service, validate_equity_symbol};
use super::walk::EquityState;

impl MarketSimulator {
    /// Applies a subscription command at the current simulated time.
    ///
    /// SUBS replaces the service's whole key list and field list; ADD adds keys (fields, if
    /// given, replace the service's field list); UNSUBS removes keys; VIEW changes fields only.
    /// Every key named by SUBS or ADD gets a snapshot as its next item (for CHART_EQUITY: the
    /// latest completed candle, if one exists), sent in the next frame slot.
    /// Fields may come in any order; field 0 is accepted and never sent (the symbol is `key`).
    ///
    /// Services: `LEVELONE_EQUITIES` (fields 0–51), `LEVELONE_OPTIONS` (0–55, keys in the
    /// 21-character form `AAPL  251219C00230000`), `CHART_EQUITY` (0–8). Nothing changes when
    /// an error is returned.
    pub fn apply_command(
        &mut self,
        service: &str,
        command: &str,
        keys: &[String],
        fields: &[u32],
    ) -> Result<(), SimError> {
        let service = Service::parse(service)?;
        let command = Command::parse(command)?;
        let field_set = service.field_set(fields)?;
        self.check_arguments(service, command, keys, field_set)?;
        let ids = self.resolve_keys(service, command, keys)?;
        let subscription = match service {
            Service::LevelOneEquities => &mut self.equity_sub,
            Service::LevelOneOptions => &mut self.option_sub,
            Service::ChartEquity => &mut self.chart_sub,
        };
        let changes = subscription.apply(command, &ids, field_set);
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
        let current_fields = match service {
            Service::LevelOneEquities => self.equity_sub.fields,
            Service::LevelOneOptions => self.option_sub.fields,
            Service::ChartEquity => self.chart_sub.fields,
        };
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

    /// Validates every key first, then maps them to instrument indices (creating instruments
    /// for SUBS/ADD; UNSUBS ignores keys never seen).
    fn resolve_keys(
        &mut self,
        service: Service,
        command: Command,
        keys: &[String],
    ) -> Result<BTreeSet<usize>, SimError> {
        if command == Command::View {
            return Ok(BTreeSet::new());
        }
        let creating = command != Command::Unsubs;
        match service {
            Service::LevelOneOptions => {
                let parsed = keys
                    .iter()
                    .map(|key| {
                        parse_option_symbol(key)
                            .map(|spec| (key, spec))
                            .map_err(|reason| SimError::InvalidOptionSymbol {
                                symbol: key.clone(),
                                reason,
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(parsed
                    .into_iter()
                    .filter_map(|(key, spec)| match self.option_ids.get(key.as_str()) {
                        Some(&id) => Some(id),
                        None if creating => Some(self.create_option(key, spec)),
                        None => None,
                    })
                    .collect())
            }
            Service::LevelOneEquities | Service::ChartEquity => {
                for key in keys {
                    validate_equity_symbol(service, key)?;
                }
                Ok(keys
                    .iter()
                    .filter_map(|key| match self.underlying_ids.get(key.as_str()) {
                        Some(&id) => Some(id),
                        None if creating => Some(self.create_underlying(key)),
                        None => None,
                    })
                    .collect())
            }
        }
    }

    /// Adds an (inactive) underlying for `symbol`, trading from the current time.
    fn create_underlying(&mut self, symbol: &str) -> usize {
        let state = EquityState::new(
            symbol,
            self.cfg.seed,
            self.cfg.updates_per_symbol_per_sec,
            self.now_ms,
        );
        let id = self.underlyings.len();
        self.underlyings.push(Underlying::new(state));
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
            Service::LevelOneOptions => {
                let contract = &mut self.options[id];
                let underlying = contract.underlying;
                match &mut contract.level_one {
                    Some(sub) => sub.restart(),
                    None => {
                        contract.level_one = Some(LevelOneSub::fresh());
                        self.underlyings[underlying].option_refs += 1;
                    }
                }
                self.schedule
                    .set(&mut contract.slot, snapshot_at, EventKind::Option, id);
                self.keep_walking(underlying);
            }
            Service::ChartEquity => {
                self.underlyings[id].chart = Some(ChartSub { snapshot_due: true });
                self.chart_snapshots_at = Some(
                    self.chart_snapshots_at
                        .map_or(snapshot_at, |at| at.min(snapshot_at)),
                );
                self.keep_walking(id);
            }
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
            Service::LevelOneOptions => {
                let contract = &mut self.options[id];
                contract.level_one = None;
                contract.slot.cancel();
                let und = &mut self.underlyings[contract.underlying];
                und.option_refs = und.option_refs.saturating_sub(1);
                contract.underlying
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
        match service {
            Service::LevelOneEquities => {
                for &id in &self.equity_sub.keys {
                    if let Some(sub) = &mut self.underlyings[id].level_one {
                        sub.set_fields(fields);
                    }
                }
            }
            Service::LevelOneOptions => {
                for &id in &self.option_sub.keys {
                    if let Some(sub) = &mut self.options[id].level_one {
                        sub.set_fields(fields);
                    }
                }
            }
            Service::ChartEquity => {}
        }
    }
}
