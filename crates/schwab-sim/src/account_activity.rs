//! ACCT_ACTIVITY (services §7): All Sequence items
//! `{"seq":N,"key":"Account Activity","1":"<account>","2":"OrderCreated","3":"<JSON text>"}`
//! for a simulated order lifecycle, one order every 20–30 s of simulated time (the first
//! 3–8 s after SUBS), each walking through OrderCreated, OrderAccepted, ExecutionRequested,
//! ExecutionRequestCreated, ExecutionRequestCompleted and OrderFillCompleted about half a
//! second to a second apart. Field 3 is a JSON document in a string; money and quantities in
//! it are fixed-point objects `{"lo":"220470000","signScale":12}`: `lo` is the magnitude times
//! 10^6, `signScale` is twice the scale (6) plus 1 when negative.
//!
//! The nightly trap: after a SUBS outside regular US equity hours, and on demand
//! ([`MarketSimulator::queue_account_text_frame`]), an item with an empty type and the plain
//! text `Feature not supported` in field 3.

use std::collections::{BTreeMap, VecDeque};

use fastrand::Rng;
use serde_json::{Value, json};

use super::field_value::FieldSet;
use super::frames::ContentBuffer;
use super::json;
use super::market_time::is_regular_hours;
use super::reference::reference_for;
use super::seeding::mix;
use super::simulator::MarketSimulator;
use super::subscription::Service;
use super::walk::round_to;

/// RNG salt of account activity.
const ACCOUNT_SALT: u64 = 0x4143;
/// The lifecycle of a filled order, in order.
const LIFECYCLE: [&str; 6] = [
    "OrderCreated",
    "OrderAccepted",
    "ExecutionRequested",
    "ExecutionRequestCreated",
    "ExecutionRequestCompleted",
    "OrderFillCompleted",
];
/// Symbols the simulated orders trade.
const ORDER_SYMBOLS: [&str; 6] = ["AAPL", "MSFT", "SPY", "NVDA", "QQQ", "AMZN"];
/// Field 3 of the trap item.
pub(crate) const FEATURE_NOT_SUPPORTED: &str = "Feature not supported";

/// One order being worked.
#[derive(Debug, Clone)]
struct Order {
    id: u64,
    symbol: &'static str,
    buy: bool,
    quantity: i64,
    limit: f64,
    fill: f64,
    entered_ms: i64,
}

/// The account-activity stream: keys, sequence numbers and the order lifecycle.
#[derive(Debug, Clone)]
pub(crate) struct AccountActivity {
    names: Vec<String>,
    ids: BTreeMap<String, usize>,
    account: String,
    rng: Rng,
    seq: u64,
    next_order_id: u64,
    order: Option<Order>,
    /// Pending lifecycle events (time, type) of the current order.
    pending: VecDeque<(i64, &'static str)>,
    /// Start of the next order, while subscribed.
    next_order_at: Option<i64>,
    /// When the "Feature not supported" item is due.
    pub trap_at: Option<i64>,
}

impl AccountActivity {
    /// No key, no events; the account number comes from the seed.
    pub(crate) fn new(seed: u64) -> Self {
        let h = mix(seed, ACCOUNT_SALT);
        Self {
            names: Vec::new(),
            ids: BTreeMap::new(),
            account: format!("{}", 10_000_000 + h % 90_000_000),
            rng: Rng::with_seed(h),
            seq: 0,
            next_order_id: 1_000_000_000 + h % 1_000_000_000,
            order: None,
            pending: VecDeque::new(),
            next_order_at: None,
            trap_at: None,
        }
    }

    /// Index of a key seen before.
    pub(crate) fn id_of(&self, key: &str) -> Option<usize> {
        self.ids.get(key).copied()
    }

    /// Registers a key.
    pub(crate) fn create(&mut self, key: &str) -> usize {
        let id = self.names.len();
        self.names.push(key.to_string());
        self.ids.insert(key.to_string(), id);
        id
    }

    /// A key was subscribed at `now_ms`: orders start (if they had not), and outside regular
    /// hours the text item is queued for `snapshot_at`.
    pub(crate) fn start(&mut self, now_ms: i64, snapshot_at: i64) {
        if self.next_order_at.is_none() && self.pending.is_empty() {
            self.next_order_at = Some(now_ms + self.rng.i64(3000..=8000));
        }
        if !is_regular_hours(now_ms) {
            self.trap_at = Some(snapshot_at);
        }
    }

    /// The last key was removed.
    pub(crate) fn stop(&mut self) {
        self.next_order_at = None;
        self.pending.clear();
        self.order = None;
        self.trap_at = None;
    }

    /// When something is due next.
    pub(crate) fn next_due(&self) -> Option<i64> {
        let event = self.pending.front().map(|e| e.0).or(self.next_order_at);
        [event, self.trap_at].into_iter().flatten().min()
    }

    fn new_order(&mut self, at: i64) {
        let symbol = ORDER_SYMBOLS[self.rng.usize(0..ORDER_SYMBOLS.len())];
        let price = reference_for(symbol).base_price * (1.0 + 0.01 * (self.rng.f64() - 0.5));
        let limit = round_to(price, 2);
        self.order = Some(Order {
            id: self.next_order_id,
            symbol,
            buy: self.rng.bool(),
            quantity: self.rng.i64(1..=20) * 5,
            limit,
            fill: round_to(limit - 0.01 * self.rng.i64(0..=3) as f64, 2),
            entered_ms: at,
        });
        self.next_order_id += 1;
        let mut t = at;
        for kind in LIFECYCLE {
            self.pending.push_back((t, kind));
            t += self.rng.i64(400..=1200);
        }
        self.next_order_at = Some(t + self.rng.i64(20_000..=30_000));
    }

    /// The (type, field 3) of the events due at `t`.
    fn due(&mut self, t: i64) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.trap_at.is_some_and(|at| at <= t) {
            self.trap_at = None;
            out.push(("", FEATURE_NOT_SUPPORTED.to_string()));
        }
        if self.pending.is_empty()
            && let Some(at) = self.next_order_at.filter(|&at| at <= t)
        {
            self.new_order(at);
        }
        while let Some(&(at, kind)) = self.pending.front() {
            if at > t {
                break;
            }
            self.pending.pop_front();
            if let Some(order) = &self.order {
                out.push((kind, document(&self.account, order, kind, at)));
            }
        }
        out
    }
}

/// `{"lo":"<|x| × 10^6>","signScale":12 (+1 if negative)}`.
fn fixed(x: f64) -> Value {
    let lo = (x.abs() * 1e6).round() as i64;
    json!({"lo": lo.to_string(), "signScale": 12 + i64::from(x < 0.0)})
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Field 3 of a lifecycle event: a JSON document as text.
fn document(account: &str, order: &Order, kind: &str, at: i64) -> String {
    let mut event = json!({
        "EventType": kind,
        "Order": {
            "SchwabOrderID": order.id.to_string(),
            "AccountNumber": account,
            "Symbol": order.symbol,
            "AssetType": "EQUITY",
            "Instruction": if order.buy { "Buy" } else { "Sell" },
            "OrderType": "Limit",
            "Duration": "Day",
            "Quantity": fixed(order.quantity as f64),
            "LimitPrice": fixed(order.limit),
            "EnteredTime": iso(order.entered_ms),
        },
        "EventTime": iso(at),
    });
    if kind.starts_with("Execution") || kind == "OrderFillCompleted" {
        event["ExecutionInfo"] = json!({
            "ExecutionPrice": fixed(order.fill),
            "ExecutionQuantity": fixed(order.quantity as f64),
            "NetAmount": fixed(order.fill * order.quantity as f64 * if order.buy { -1.0 } else { 1.0 }),
        });
    }
    json!({
        "SchwabOrderID": order.id.to_string(),
        "AccountNumber": account,
        "BaseEvent": {"EventType": kind, format!("{kind}Event"): event},
    })
    .to_string()
}

/// One item: `seq`, `key`, then fields 1–3 if subscribed.
fn item(seq: u64, key: &str, fields: FieldSet, account: &str, kind: &str, data: &str) -> String {
    let mut out = String::with_capacity(256 + data.len());
    out.push('{');
    json::push_key(&mut out, "seq");
    json::push_i64(&mut out, i64::try_from(seq).unwrap_or(i64::MAX));
    out.push(',');
    json::push_key(&mut out, "key");
    json::push_str(&mut out, key);
    for (field, value) in [(1, account), (2, kind), (3, data)] {
        if fields.contains(field) {
            out.push(',');
            json::push_field_key(&mut out, field);
            json::push_str(&mut out, value);
        }
    }
    out.push('}');
    out
}

impl MarketSimulator {
    /// Emits the ACCT_ACTIVITY items due at `t`.
    pub(super) fn emit_account_activity(&mut self, t: i64, frames: &mut Vec<String>) {
        if self.account.next_due().is_none_or(|at| at > t) {
            return;
        }
        let service = Service::AcctActivity;
        let fields = self.subs[service.index()].fields;
        let keys: Vec<usize> = self.subs[service.index()].keys.iter().copied().collect();
        for (kind, data) in self.account.due(t) {
            // one frame per event, so a frame never carries a key twice
            let mut content = ContentBuffer::default();
            for &id in &keys {
                let a = &mut self.account;
                let text = item(a.seq, &a.names[id], fields, &a.account, kind, &data);
                a.seq += 1;
                content.push_item(&text);
            }
            self.items[service.index()] += content.count();
            frames.extend(content.into_frame(service.name(), t));
        }
    }
}
