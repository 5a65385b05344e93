//! Book snapshots (NYSE_BOOK, NASDAQ_BOOK, OPTIONS_BOOK): every frame repeats the whole book,
//! so at most one snapshot per book and symbol is stored every `BOOK_SNAPSHOT_INTERVAL`; the
//! newest one in between is kept in memory and stored when the symbol's next slot comes
//! (checked on every frame, [`Books::due`]), so the last state before a quiet spell is never
//! lost. Only the top `BOOK_DEPTH` levels per side are stored, as JSON (SCHEMA.md).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::New_York;
use serde_json::{Value, json};

use super::ApplyError;
use super::snapshots::clean;
use crate::rows::{BookKind, BookRow, time_from_ms};
use crate::schwab::wire::{BookFields, BookLevel, Service, Update};

/// How books are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookSettings {
    /// `BOOK_DEPTH`: levels per side stored.
    pub depth: usize,
    /// `BOOK_SNAPSHOT_INTERVAL` in milliseconds.
    pub interval_ms: i64,
}

impl Default for BookSettings {
    /// The settings' defaults (10 levels, 5 s).
    fn default() -> Self {
        Self {
            depth: 10,
            interval_ms: 5_000,
        }
    }
}

/// One book of one symbol.
#[derive(Debug)]
struct Slot {
    symbol: Arc<str>,
    /// When the last snapshot was stored (snapshot clock).
    last_stored_ms: Option<i64>,
    /// The newest snapshot not stored yet, with its time.
    pending: Option<(BookFields, i64)>,
}

/// The throttle and the row builder.
#[derive(Debug, Default)]
pub struct Books {
    settings: BookSettings,
    slots: HashMap<(BookKind, Arc<str>), Slot>,
    /// Slots holding a pending snapshot (so [`Books::due`] is free when there is none).
    pending: usize,
}

impl Books {
    /// No book seen yet.
    pub fn new(settings: BookSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// A book item: stored now if its slot has come, else kept as the pending snapshot.
    pub fn apply(
        &mut self,
        service: Service,
        update: &Update<'_>,
        book: &BookFields,
    ) -> Result<Option<BookRow>, ApplyError> {
        let Some(kind) = BookKind::of(service) else {
            return Ok(None);
        };
        let at_ms = book.snapshot_ms.unwrap_or(update.event_ms);
        if time_from_ms(at_ms).is_none() {
            return Err(ApplyError::BadTimestamp { ms: at_ms });
        }
        let key = (kind, Arc::<str>::from(update.symbol.as_ref()));
        let slot = self
            .slots
            .entry(key)
            .or_insert_with_key(|(_, symbol)| Slot {
                symbol: symbol.clone(),
                last_stored_ms: None,
                pending: None,
            });
        let due = slot
            .last_stored_ms
            .is_none_or(|last| at_ms.saturating_sub(last) >= self.settings.interval_ms);
        if due {
            if slot.pending.take().is_some() {
                self.pending -= 1;
            }
            slot.last_stored_ms = Some(at_ms);
            return Ok(Some(book_row(
                kind,
                &slot.symbol,
                book,
                at_ms,
                self.settings.depth,
            )));
        }
        if slot.pending.replace((book.clone(), at_ms)).is_none() {
            self.pending += 1;
        }
        Ok(None)
    }

    /// Drops the slot of `symbol`'s book of `service` (its key was unsubscribed); a pending
    /// snapshot is stored first, so nothing received is lost.
    pub fn forget(&mut self, service: Service, symbol: &str, rows: &mut Vec<crate::rows::Row>) {
        let Some(kind) = BookKind::of(service) else {
            return;
        };
        if let Some(slot) = self.slots.remove(&(kind, Arc::<str>::from(symbol)))
            && let Some((book, at_ms)) = slot.pending
        {
            self.pending -= 1;
            rows.push(crate::rows::Row::Book(book_row(
                kind,
                &slot.symbol,
                &book,
                at_ms,
                self.settings.depth,
            )));
        }
    }

    /// Stores the pending snapshots whose slot has come by `now_ms`.
    pub fn due(&mut self, now_ms: i64, rows: &mut Vec<crate::rows::Row>) {
        self.take_pending(Some(now_ms), rows);
    }

    /// Stores every pending snapshot now (the stream has ended).
    pub fn flush(&mut self, rows: &mut Vec<crate::rows::Row>) {
        self.take_pending(None, rows);
    }

    /// Stores the pending snapshots whose slot has come by `now_ms` (all with `None`).
    fn take_pending(&mut self, now_ms: Option<i64>, rows: &mut Vec<crate::rows::Row>) {
        if self.pending == 0 {
            return;
        }
        let (interval, depth) = (self.settings.interval_ms, self.settings.depth);
        for ((kind, _), slot) in &mut self.slots {
            let ready = slot.pending.is_some()
                && match (now_ms, slot.last_stored_ms) {
                    (None, _) | (Some(_), None) => true,
                    (Some(now), Some(last)) => now.saturating_sub(last) >= interval,
                };
            if !ready {
                continue;
            }
            if let Some((book, at_ms)) = slot.pending.take() {
                self.pending -= 1;
                slot.last_stored_ms = Some(now_ms.unwrap_or(at_ms).max(at_ms));
                rows.push(crate::rows::Row::Book(book_row(
                    *kind,
                    &slot.symbol,
                    &book,
                    at_ms,
                    depth,
                )));
            }
        }
    }
}

/// The stored row of one snapshot: the best level of each side as columns, the top `depth`
/// levels per side (bids by price descending, asks ascending) as JSON.
pub fn book_row(
    kind: BookKind,
    symbol: &Arc<str>,
    book: &BookFields,
    at_ms: i64,
    depth: usize,
) -> BookRow {
    let snapshot_time = time_from_ms(at_ms).unwrap_or_default();
    let bids = side(&book.bids, true, depth);
    let asks = side(&book.asks, false, depth);
    let best = |levels: &[&BookLevel]| {
        levels
            .first()
            .map_or((None, None), |l| (Some(l.price.0), l.size.map(|s| s.0)))
    };
    let (bid, bid_size) = best(&bids);
    let (ask, ask_size) = best(&asks);
    let json = |levels: &[&BookLevel]| {
        Value::Array(
            levels
                .iter()
                .map(|l| level_json(l, snapshot_time))
                .collect(),
        )
        .to_string()
    };
    BookRow {
        book: kind,
        symbol: symbol.clone(),
        snapshot_time,
        bid,
        bid_size,
        ask,
        ask_size,
        bid_levels: i32::try_from(book.bids.len()).unwrap_or(i32::MAX),
        ask_levels: i32::try_from(book.asks.len()).unwrap_or(i32::MAX),
        bids: json(&bids),
        asks: json(&asks),
    }
}

/// The top `depth` levels of a side with a price, best first (bids by price descending).
fn side(levels: &[BookLevel], descending: bool, depth: usize) -> Vec<&BookLevel> {
    let mut sorted: Vec<&BookLevel> = levels.iter().filter(|l| l.price.0.is_finite()).collect();
    sorted.sort_by(|a, b| {
        let o = a.price.0.total_cmp(&b.price.0);
        if descending { o.reverse() } else { o }
    });
    sorted.truncate(depth);
    sorted
}

/// `{"price", "size", "maker_count", "makers": [{"id", "size", "quote_time"}]}`.
fn level_json(level: &BookLevel, snapshot: DateTime<Utc>) -> Value {
    let makers: Vec<Value> = level
        .makers
        .iter()
        .map(|m| {
            json!({
                "id": clean(&m.id.0),
                "size": m.size.map(|s| s.0),
                "quote_time": m.time_ms_of_day
                    .and_then(|t| maker_time(t.0, snapshot))
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            })
        })
        .collect();
    json!({
        "price": level.price.0,
        "size": level.size.map(|s| s.0),
        "maker_count": level.maker_count.map(|c| c.0),
        "makers": makers,
    })
}

/// A market maker's quote time, sent as milliseconds since midnight New York time, as an
/// instant: on the snapshot's New York day, or the day before when that would put it more
/// than an hour after the snapshot (a quote from before midnight). `None` when out of range.
pub fn maker_time(ms_of_day: i64, snapshot: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !(0..86_400_000).contains(&ms_of_day) {
        return None;
    }
    let secs = u32::try_from(ms_of_day / 1000).ok()?;
    let nanos = u32::try_from(ms_of_day % 1000).ok()? * 1_000_000;
    let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)?;
    let day = snapshot.with_timezone(&New_York).date_naive();
    let at = |d: chrono::NaiveDate| {
        New_York
            .from_local_datetime(&d.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    let same_day = at(day)?;
    if same_day > snapshot + chrono::Duration::hours(1) {
        return at(day.pred_opt()?);
    }
    Some(same_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maker_times_are_new_york_milliseconds_of_the_snapshot_day() {
        // 2025-12-09 13:52:02.349 ET (EST, UTC-5) = 18:52:02.349Z.
        let snapshot = time_from_ms(1_765_306_322_349).expect("time");
        let t = maker_time(49_786_299, snapshot).expect("in range");
        assert_eq!(
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2025-12-09T18:49:46.299Z"
        );
        // Just after midnight ET, a quote from 23:59 belongs to the day before.
        let after_midnight = time_from_ms(1_765_256_460_000).expect("time"); // 00:01 ET Dec 9
        let late = maker_time(86_340_000, after_midnight).expect("in range");
        assert!(late < after_midnight);
        assert_eq!(maker_time(-1, snapshot), None);
        assert_eq!(maker_time(86_400_000, snapshot), None);
    }
}
