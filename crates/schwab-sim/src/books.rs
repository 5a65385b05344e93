//! NYSE_BOOK, NASDAQ_BOOK and OPTIONS_BOOK: Whole delivery, one complete book per subscribed
//! symbol about every second of simulated time (aligned to whole seconds; the first one in the
//! slot after SUBS/ADD).
//!
//! Item: `{"key":"AAPL","1":<snapshot ms>,"2":[bid levels],"3":[ask levels]}`; a level is
//! `{"0":price,"1":total size,"2":market makers,"3":[{"0":"NSDQ","1":size,"2":quote time}]}`.
//! The best bid and ask are the simulated LEVELONE quote of the symbol; bids descend, asks
//! ascend; a level's size is the sum of its market makers' sizes (shares for equities,
//! contracts for options); a market maker's quote time is milliseconds since midnight New
//! York time, a little before the snapshot. Books are thinner outside regular hours.

use fastrand::Rng;

use super::frames::ContentBuffer;
use super::json;
use super::market_time::{is_regular_hours, ms_since_eastern_midnight};
use super::seeding::{mix, symbol_hash};
use super::simulator::MarketSimulator;
use super::subscription::Service;
use super::walk::dollars;

/// Interval between two books of one symbol, ms.
pub(crate) const BOOK_INTERVAL_MS: i64 = 1000;
/// RNG salt of books.
const BOOK_SALT: u64 = 0x424f;
/// Equity venues (market maker ids).
const EQUITY_VENUES: [&str; 10] = [
    "NSDQ", "ARCX", "EDGX", "MEMX", "NYSE", "BATS", "IEXG", "EDGA", "BATY", "AMEX",
];
/// Option exchanges (market maker ids).
const OPTION_VENUES: [&str; 10] = [
    "CBOE", "AMEX", "ISE", "PHLX", "BOX", "MIAX", "ARCX", "NSDQ", "BATS", "EDGX",
];
/// The book services, in the order of `book_next_at`.
const BOOK_SERVICES: [Service; 3] = [Service::NyseBook, Service::NasdaqBook, Service::OptionsBook];

/// What one book is built from.
struct BookInput<'a> {
    key: &'a str,
    bid_c: i64,
    ask_c: i64,
    /// Price step between levels, cents.
    step_c: i64,
    venues: &'a [&'static str],
    /// Size of one market maker quote: `unit` × 1..=`max_units`.
    unit: i64,
    max_units: i64,
}

impl MarketSimulator {
    /// Emits the books due at `t`.
    pub(super) fn emit_books(&mut self, t: i64, frames: &mut Vec<String>) {
        for (i, service) in BOOK_SERVICES.into_iter().enumerate() {
            if self.book_next_at[i].is_none_or(|at| at > t) {
                continue;
            }
            let keys: Vec<usize> = self.subs[service.index()].keys.iter().copied().collect();
            self.book_next_at[i] =
                (!keys.is_empty()).then(|| (t.div_euclid(BOOK_INTERVAL_MS) + 1) * BOOK_INTERVAL_MS);
            let fields = self.subs[service.index()].fields;
            let mut content = ContentBuffer::default();
            for id in keys {
                let mut rng =
                    Rng::with_seed(mix(mix(self.cfg.seed, BOOK_SALT + i as u64), t as u64));
                let item = if service == Service::OptionsBook {
                    let underlying_price =
                        self.underlyings[self.options[id].underlying].state.mark();
                    let contract = &mut self.options[id];
                    if contract.level_one.is_none() {
                        contract.state.step(underlying_price, t);
                    }
                    let s = &contract.state;
                    rng = Rng::with_seed(rng.u64(..) ^ symbol_hash(&s.symbol));
                    let input = BookInput {
                        key: &s.symbol,
                        bid_c: s.bid_c,
                        ask_c: s.ask_c,
                        step_c: if s.ask_c < 300 { 1 } else { 5 },
                        venues: &OPTION_VENUES,
                        unit: 1,
                        max_units: 50,
                    };
                    book_item(&input, t, fields, &mut rng)
                } else {
                    let s = &self.underlyings[id].state;
                    rng = Rng::with_seed(rng.u64(..) ^ symbol_hash(&s.symbol));
                    let input = BookInput {
                        key: &s.symbol,
                        bid_c: s.bid_c,
                        ask_c: s.ask_c,
                        step_c: 1,
                        venues: &EQUITY_VENUES,
                        unit: 100,
                        max_units: 30,
                    };
                    book_item(&input, t, fields, &mut rng)
                };
                content.push_item(&item);
            }
            self.items[service.index()] += content.count();
            frames.extend(content.into_frame(service.name(), t));
        }
    }
}

/// One book item at `t`.
fn book_item(
    input: &BookInput<'_>,
    t: i64,
    fields: super::field_value::FieldSet,
    rng: &mut Rng,
) -> String {
    let levels = if is_regular_hours(t) {
        rng.usize(10..=20)
    } else {
        rng.usize(4..=8)
    };
    let mut out = String::with_capacity(2048);
    out.push('{');
    json::push_key(&mut out, "key");
    json::push_str(&mut out, input.key);
    if fields.contains(1) {
        out.push(',');
        json::push_key(&mut out, "1");
        json::push_i64(&mut out, t);
    }
    for (field, side) in [(2, -1i64), (3, 1)] {
        let best = if side < 0 { input.bid_c } else { input.ask_c };
        let side_levels = build_side(input, best, side, levels, t, rng);
        if fields.contains(field) {
            out.push(',');
            json::push_field_key(&mut out, field);
            out.push_str(&side_levels);
        }
    }
    out.push('}');
    out
}

/// One side of a book as a JSON array: `levels` price levels from `best` moving by `side`.
fn build_side(
    input: &BookInput<'_>,
    best: i64,
    side: i64,
    levels: usize,
    t: i64,
    rng: &mut Rng,
) -> String {
    let mut out = String::from("[");
    let mut price = best;
    for level in 0..levels {
        if price <= 0 {
            break;
        }
        if level > 0 {
            out.push(',');
        }
        let mut venues: Vec<&str> = input.venues.to_vec();
        rng.shuffle(&mut venues);
        let makers = rng.usize(1..=if level < 3 { 6 } else { 3 });
        let quotes: Vec<(&str, i64, i64)> = venues[..makers]
            .iter()
            .map(|&v| {
                let size = input.unit * rng.i64(1..=input.max_units);
                let quoted = t - 1 - rng.i64(0..5000);
                (v, size, ms_since_eastern_midnight(quoted))
            })
            .collect();
        out.push('{');
        json::push_key(&mut out, "0");
        json::push_f64(&mut out, dollars(price));
        out.push(',');
        json::push_key(&mut out, "1");
        json::push_i64(&mut out, quotes.iter().map(|q| q.1).sum());
        out.push(',');
        json::push_key(&mut out, "2");
        json::push_i64(&mut out, quotes.len() as i64);
        out.push(',');
        json::push_key(&mut out, "3");
        out.push('[');
        for (i, (venue, size, time)) in quotes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            json::push_key(&mut out, "0");
            json::push_str(&mut out, venue);
            out.push(',');
            json::push_key(&mut out, "1");
            json::push_i64(&mut out, *size);
            out.push(',');
            json::push_key(&mut out, "2");
            json::push_i64(&mut out, *time);
            out.push('}');
        }
        out.push_str("]}");
        price += side * input.step_c * rng.i64(1..=2);
    }
    out.push(']');
    out
}
