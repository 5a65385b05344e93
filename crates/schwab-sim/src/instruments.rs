//! Instruments as the simulator tracks them: the model state plus per-service subscription
//! state (delta cache, snapshot flag, chart sequence) and scheduling.

use super::candles::CandleBook;
use super::field_value::{DeltaCache, FieldSet};
use super::forex_fields::ForexState;
use super::futures::{FutureOptionState, FutureState};
use super::option_model::OptionState;
use super::schedule::ScheduleSlot;
use super::walk::EquityState;

/// LEVELONE subscription state of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct LevelOneSub {
    /// Values last sent, for deltas.
    pub cache: DeltaCache,
    /// The next item must be a snapshot.
    pub snapshot_due: bool,
}

impl LevelOneSub {
    /// A fresh subscription: the next item is a snapshot.
    pub(crate) fn fresh() -> Self {
        Self {
            cache: DeltaCache::default(),
            snapshot_due: true,
        }
    }

    /// Restarts the subscription (a SUBS or ADD naming the symbol again).
    pub(crate) fn restart(&mut self) {
        self.cache.clear();
        self.snapshot_due = true;
    }

    /// Applies a new field list (VIEW, or ADD with fields).
    pub(crate) fn set_fields(&mut self, fields: FieldSet) {
        self.cache.retain(fields);
    }
}

/// CHART_EQUITY subscription state of one symbol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChartSub {
    /// The latest completed candle must be sent at the next opportunity.
    pub snapshot_due: bool,
}

/// An equity, ETF or index: its walk drives LEVELONE_EQUITIES, CHART_EQUITY and the options on it.
#[derive(Debug)]
pub(crate) struct Underlying {
    /// Price model.
    pub state: EquityState,
    /// Candles of the trades made.
    pub candles: CandleBook,
    /// LEVELONE_EQUITIES subscription.
    pub level_one: Option<LevelOneSub>,
    /// CHART_EQUITY subscription.
    pub chart: Option<ChartSub>,
    /// Next `seq` of a CHART_EQUITY item.
    pub chart_seq: u64,
    /// Number of subscribed options (LEVELONE_OPTIONS or OPTIONS_BOOK) on this underlying.
    pub option_refs: u32,
    /// Subscribed on NYSE_BOOK, NASDAQ_BOOK.
    pub books: [bool; 2],
    /// Pending update.
    pub slot: ScheduleSlot,
}

impl Underlying {
    /// A new, inactive underlying whose candles last `candle_ms`.
    pub(crate) fn new(state: EquityState, candle_ms: i64) -> Self {
        Self {
            state,
            candles: CandleBook::with_history(candle_ms),
            level_one: None,
            chart: None,
            chart_seq: 0,
            option_refs: 0,
            books: [false; 2],
            slot: ScheduleSlot::default(),
        }
    }

    /// True while any service needs the walk to move.
    pub(crate) fn is_active(&self) -> bool {
        self.level_one.is_some()
            || self.chart.is_some()
            || self.option_refs > 0
            || self.books.iter().any(|&b| b)
    }
}

/// An option contract.
#[derive(Debug)]
pub(crate) struct OptionContract {
    /// Quote model.
    pub state: OptionState,
    /// Index of the underlying.
    pub underlying: usize,
    /// LEVELONE_OPTIONS subscription (the contract updates on its own schedule while set).
    pub level_one: Option<LevelOneSub>,
    /// Subscribed on OPTIONS_BOOK (the book steps the contract when LEVELONE_OPTIONS does not).
    pub book: bool,
    /// Pending update.
    pub slot: ScheduleSlot,
}

impl OptionContract {
    /// True while any service needs the contract (and so its underlying's walk).
    pub(crate) fn is_active(&self) -> bool {
        self.level_one.is_some() || self.book
    }
}

/// A futures key: its walk drives LEVELONE_FUTURES, CHART_FUTURES and the options on it.
#[derive(Debug)]
pub(crate) struct FutureInstrument {
    /// Model.
    pub state: FutureState,
    /// Candles of the trades made.
    pub candles: CandleBook,
    /// LEVELONE_FUTURES subscription.
    pub level_one: Option<LevelOneSub>,
    /// CHART_FUTURES subscription.
    pub chart: Option<ChartSub>,
    /// Next `seq` of a CHART_FUTURES item.
    pub chart_seq: u64,
    /// Number of subscribed futures options on this future.
    pub option_refs: u32,
    /// Pending update.
    pub slot: ScheduleSlot,
}

impl FutureInstrument {
    /// True while any service needs the walk to move.
    pub(crate) fn is_active(&self) -> bool {
        self.level_one.is_some() || self.chart.is_some() || self.option_refs > 0
    }
}

/// A futures option contract.
#[derive(Debug)]
pub(crate) struct FutureOptionContract {
    /// Model.
    pub state: FutureOptionState,
    /// Index of the underlying future.
    pub future: usize,
    /// LEVELONE_FUTURES_OPTIONS subscription.
    pub level_one: Option<LevelOneSub>,
    /// Pending update.
    pub slot: ScheduleSlot,
}

/// A currency pair.
#[derive(Debug)]
pub(crate) struct ForexPair {
    /// Model.
    pub state: ForexState,
    /// LEVELONE_FOREX subscription.
    pub level_one: Option<LevelOneSub>,
    /// Pending update.
    pub slot: ScheduleSlot,
}
