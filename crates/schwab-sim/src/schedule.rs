//! The event queue: the next update time of every active instrument, with lazy cancellation
//! through per-instrument generations.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Which instrument table an event refers to. Underlyings sort first, so at one instant the
/// equity walk moves before the options that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EventKind {
    /// An equity/ETF/index walk.
    Underlying,
    /// An option contract.
    Option,
    /// A futures walk (before the futures options that read it).
    Future,
    /// A futures option contract.
    FutureOption,
    /// A currency pair.
    Forex,
}

/// One pending update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Event {
    /// When it is due, ms.
    pub at_ms: i64,
    /// Instrument table.
    pub kind: EventKind,
    /// Index in that table.
    pub id: usize,
    /// Generation of the instrument's slot when scheduled (stale if it changed since).
    pub generation: u32,
}

/// Scheduling state kept by each instrument.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ScheduleSlot {
    generation: u32,
    scheduled: bool,
}

impl ScheduleSlot {
    /// True when an update is pending.
    pub(crate) fn is_scheduled(self) -> bool {
        self.scheduled
    }

    /// True when `event` is the instrument's pending update.
    pub(crate) fn is_current(self, event: &Event) -> bool {
        self.scheduled && self.generation == event.generation
    }

    /// Marks the pending update as consumed.
    pub(crate) fn consume(&mut self) {
        self.scheduled = false;
    }

    /// Drops any pending update.
    pub(crate) fn cancel(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.scheduled = false;
    }
}

/// Min-queue of events ordered by (time, kind, id).
#[derive(Debug, Default)]
pub(crate) struct Schedule {
    heap: BinaryHeap<Reverse<Event>>,
}

impl Schedule {
    /// Schedules the instrument's next update at `at_ms`, replacing any pending one.
    pub(crate) fn set(&mut self, slot: &mut ScheduleSlot, at_ms: i64, kind: EventKind, id: usize) {
        slot.cancel();
        slot.scheduled = true;
        self.heap.push(Reverse(Event {
            at_ms,
            kind,
            id,
            generation: slot.generation,
        }));
    }

    /// The earliest event (possibly stale).
    pub(crate) fn peek(&self) -> Option<Event> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    /// Removes the earliest event.
    pub(crate) fn pop(&mut self) -> Option<Event> {
        self.heap.pop().map(|Reverse(e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pop_in_time_then_kind_then_id_order_and_stale_ones_are_detectable() {
        let mut schedule = Schedule::default();
        let mut slots = [ScheduleSlot::default(); 3];
        schedule.set(&mut slots[0], 200, EventKind::Option, 0);
        schedule.set(&mut slots[1], 100, EventKind::Option, 1);
        schedule.set(&mut slots[2], 100, EventKind::Underlying, 2);
        schedule.set(&mut slots[0], 50, EventKind::Option, 0);
        let order: Vec<_> = std::iter::from_fn(|| schedule.pop())
            .map(|e| (e.at_ms, e.id, slots[e.id].is_current(&e)))
            .collect();
        assert_eq!(
            order,
            vec![
                (50, 0, true),
                (100, 2, true),
                (100, 1, true),
                (200, 0, false)
            ]
        );
    }
}
