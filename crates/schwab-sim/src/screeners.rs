//! SCREENER_EQUITY and SCREENER_OPTION: Whole delivery of "top movers" lists, every
//! [`SCREENER_INTERVAL_MS`] of simulated time (the first in the slot after SUBS/ADD).
//!
//! Key `PREFIX_SORTFIELD_FREQUENCY` (services §6), e.g. `NASDAQ_VOLUME_5`. Item:
//! `{"key":"NASDAQ_VOLUME_5","1":<ms>,"2":"VOLUME","3":5,"4":[{"symbol":"AAPL",
//! "description":"Apple Inc","lastPrice":..,"netChange":..,"netPercentChange":..,
//! "marketShare":..,"totalVolume":..,"volume":..,"trades":..}, ...]}` with the 10 best rows
//! sorted by the sort field. `volume` is the volume of the last FREQUENCY minutes (the whole
//! day for 0), `marketShare` its percentage of the universe's. The universe is the reference
//! table filtered by the prefix (equities) or near-the-money weekly options on popular
//! underlyings (options, 21-character symbols). Its own deterministic walk, not the LEVELONE one.

use std::sync::Arc;

use fastrand::Rng;

use super::commands::earliest;
use super::frames::ContentBuffer;
use super::json;
use super::market_time::eastern_date;
use super::reference::{AssetKind, Listing, known_symbols, reference_for};
use super::seeding::{instrument_rng, standard_normal};
use super::simulator::MarketSimulator;
use super::subscription::Service;
use super::walk::round_to;

/// Interval between two lists of one screener, ms.
pub(crate) const SCREENER_INTERVAL_MS: i64 = 5000;
/// Rows per list.
const ROWS: usize = 10;
/// RNG salt of screeners.
const SCREENER_SALT: u64 = 0x5343;
/// Expected key format (for error messages).
pub(crate) const SCREENER_KEY_FORMAT: &str = "PREFIX_SORTFIELD_FREQUENCY with an equity prefix ($COMPX, $DJI, $SPX.X, INDEX_AL, NYSE, NASDAQ, OTCBB, EQUITY_ALL) on SCREENER_EQUITY or an option prefix (OPTION_PUT, OPTION_CALL, OPTION_ALL) on SCREENER_OPTION, a sort field (VOLUME, TRADES, PERCENT_CHANGE_UP, PERCENT_CHANGE_DOWN, AVERAGE_PERCENT_VOLUME) and a frequency (0, 1, 5, 10, 30, 60), e.g. \"NASDAQ_VOLUME_5\"";

const EQUITY_PREFIXES: [&str; 8] = [
    "$COMPX",
    "$DJI",
    "$SPX.X",
    "INDEX_AL",
    "NYSE",
    "NASDAQ",
    "OTCBB",
    "EQUITY_ALL",
];
const OPTION_PREFIXES: [&str; 3] = ["OPTION_PUT", "OPTION_CALL", "OPTION_ALL"];
const SORT_FIELDS: [&str; 5] = [
    "VOLUME",
    "TRADES",
    "PERCENT_CHANGE_UP",
    "PERCENT_CHANGE_DOWN",
    "AVERAGE_PERCENT_VOLUME",
];
const FREQUENCIES: [i64; 6] = [0, 1, 5, 10, 30, 60];
const DOW_MEMBERS: [&str; 9] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "JPM", "KO", "DIS", "V", "WMT",
];
const OPTION_UNDERLYINGS: [&str; 12] = [
    "SPY", "QQQ", "AAPL", "NVDA", "TSLA", "AMD", "AMZN", "META", "IWM", "MSFT", "PLTR", "COIN",
];

/// A parsed screener key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScreenerKey {
    /// The prefix, e.g. "NASDAQ".
    pub prefix: &'static str,
    /// The sort field, e.g. "VOLUME".
    pub sort: &'static str,
    /// Minutes (0 = whole day).
    pub frequency: i64,
}

/// Parses `PREFIX_SORTFIELD_FREQUENCY` for the equity or the option screener.
pub(crate) fn parse_screener_key(option: bool, key: &str) -> Result<ScreenerKey, String> {
    let (rest, frequency) = key
        .rsplit_once('_')
        .ok_or_else(|| "it has no \"_\"".to_string())?;
    let frequency = frequency
        .parse::<i64>()
        .ok()
        .filter(|f| FREQUENCIES.contains(f))
        .ok_or_else(|| format!("the frequency \"{frequency}\" is not 0, 1, 5, 10, 30 or 60"))?;
    let prefixes: &[&'static str] = if option {
        &OPTION_PREFIXES
    } else {
        &EQUITY_PREFIXES
    };
    let (prefix, sort) = prefixes
        .iter()
        .find_map(|&p| rest.strip_prefix(p)?.strip_prefix('_').map(|s| (p, s)))
        .ok_or_else(|| "the prefix is not one this screener knows".to_string())?;
    let sort = SORT_FIELDS
        .iter()
        .find(|&&f| f == sort)
        .ok_or_else(|| format!("the sort field \"{sort}\" is unknown"))?;
    Ok(ScreenerKey {
        prefix,
        sort,
        frequency,
    })
}

/// One instrument of a screener's universe.
#[derive(Debug, Clone)]
struct Row {
    symbol: Arc<str>,
    description: Arc<str>,
    close: f64,
    last: f64,
    tick: f64,
    volatility: f64,
    total_volume: i64,
    trades: i64,
    /// Typical volume per minute.
    per_minute: f64,
}

/// One subscribed screener key.
#[derive(Debug, Clone)]
pub(crate) struct Screener {
    key: Arc<str>,
    spec: ScreenerKey,
    rows: Vec<Row>,
    rng: Rng,
}

impl Screener {
    fn new(key: &str, spec: ScreenerKey, seed: u64, now_ms: i64) -> Self {
        let mut rng = instrument_rng(seed, key, SCREENER_SALT);
        let rows = if spec.prefix.starts_with("OPTION_") {
            option_universe(spec.prefix, now_ms, &mut rng)
        } else {
            equity_universe(spec.prefix, &mut rng)
        };
        Self {
            key: Arc::from(key),
            spec,
            rows,
            rng,
        }
    }

    /// Moves the universe on and writes the item of `t`.
    fn item(&mut self, t: i64, fields: super::field_value::FieldSet) -> String {
        let rng = &mut self.rng;
        for row in &mut self.rows {
            let z = standard_normal(rng);
            let moved = row.last * (1.0 + row.volatility * 0.002 * z);
            row.last = (round_to(moved / row.tick, 0) * row.tick).max(row.tick);
            row.last = round_to(row.last, 2);
            let traded = (row.per_minute / 12.0 * (0.5 + rng.f64())).round() as i64;
            row.total_volume += traded;
            row.trades += (traded / 150).max(1);
        }
        let minutes = self.spec.frequency;
        let mut scored: Vec<(f64, i64, &Row)> = self
            .rows
            .iter()
            .map(|row| {
                let volume = if minutes == 0 {
                    row.total_volume
                } else {
                    ((row.per_minute * minutes as f64 * (0.6 + 0.8 * rng.f64())).round() as i64)
                        .min(row.total_volume)
                };
                let change = row.last - row.close;
                let score = match self.spec.sort {
                    "VOLUME" => volume as f64,
                    "TRADES" => row.trades as f64,
                    "PERCENT_CHANGE_UP" => change / row.close,
                    "PERCENT_CHANGE_DOWN" => -change / row.close,
                    _ => volume as f64 / row.per_minute.max(1.0),
                };
                (score, volume, row)
            })
            .collect();
        let universe_volume: i64 = scored.iter().map(|s| s.1).sum::<i64>().max(1);
        scored.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| a.2.symbol.cmp(&b.2.symbol))
        });
        let mut out = String::with_capacity(2048);
        out.push('{');
        json::push_key(&mut out, "key");
        json::push_str(&mut out, &self.key);
        if fields.contains(1) {
            out.push_str(",\"1\":");
            json::push_i64(&mut out, t);
        }
        if fields.contains(2) {
            out.push_str(",\"2\":");
            json::push_str(&mut out, self.spec.sort);
        }
        if fields.contains(3) {
            out.push_str(",\"3\":");
            json::push_i64(&mut out, minutes);
        }
        if fields.contains(4) {
            out.push_str(",\"4\":[");
            for (i, (_, volume, row)) in scored.iter().take(ROWS).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_row(&mut out, row, *volume, universe_volume);
            }
            out.push(']');
        }
        out.push('}');
        out
    }
}

fn write_row(out: &mut String, row: &Row, volume: i64, universe_volume: i64) {
    let change = round_to(row.last - row.close, 2);
    out.push('{');
    json::push_key(out, "symbol");
    json::push_str(out, &row.symbol);
    out.push(',');
    json::push_key(out, "description");
    json::push_str(out, &row.description);
    out.push(',');
    json::push_key(out, "lastPrice");
    json::push_f64(out, row.last);
    out.push(',');
    json::push_key(out, "netChange");
    json::push_f64(out, change);
    out.push(',');
    json::push_key(out, "netPercentChange");
    json::push_f64(out, round_to(change / row.close * 100.0, 4));
    out.push(',');
    json::push_key(out, "marketShare");
    json::push_f64(
        out,
        round_to(volume as f64 / universe_volume as f64 * 100.0, 2),
    );
    out.push(',');
    json::push_key(out, "totalVolume");
    json::push_i64(out, row.total_volume);
    out.push(',');
    json::push_key(out, "volume");
    json::push_i64(out, volume);
    out.push(',');
    json::push_key(out, "trades");
    json::push_i64(out, row.trades);
    out.push('}');
}

fn equity_universe(prefix: &str, rng: &mut Rng) -> Vec<Row> {
    known_symbols()
        .filter(|symbol| {
            let r = reference_for(symbol);
            let listed = match prefix {
                "NASDAQ" | "$COMPX" => r.listing == Listing::Nasdaq,
                "NYSE" => matches!(r.listing, Listing::Nyse | Listing::Arca),
                "$DJI" => DOW_MEMBERS.contains(symbol),
                "$SPX.X" => r.kind == AssetKind::Stock,
                _ => true,
            };
            listed && r.kind != AssetKind::Index
        })
        .map(|symbol| {
            let r = reference_for(symbol);
            let close = round_to(r.base_price * (1.0 + 0.01 * standard_normal(rng)), 2);
            let last = round_to(close * (1.0 + 0.015 * standard_normal(rng)), 2);
            let total_volume = (r.daily_volume * (0.2 + 0.4 * rng.f64())).round() as i64;
            Row {
                symbol: Arc::from(symbol),
                description: r.description.clone(),
                close,
                last,
                tick: 0.01,
                volatility: r.annual_volatility,
                total_volume,
                trades: total_volume / 120,
                per_minute: r.daily_volume / 390.0,
            }
        })
        .collect()
}

fn option_universe(prefix: &str, now_ms: i64, rng: &mut Rng) -> Vec<Row> {
    let today = eastern_date(now_ms);
    let days = (4 + 7 - i64::from(chrono::Datelike::weekday(&today).num_days_from_monday())) % 7;
    let days = if days == 0 { 7 } else { days };
    let expiry = today + chrono::Days::new(days as u64);
    let mut rows = Vec::new();
    for root in OPTION_UNDERLYINGS {
        let r = reference_for(root);
        let step = if r.base_price >= 100.0 { 5.0 } else { 1.0 };
        let strike = (r.base_price / step).round() * step;
        for (is_call, wanted) in [(true, "OPTION_CALL"), (false, "OPTION_PUT")] {
            if prefix != wanted && prefix != "OPTION_ALL" {
                continue;
            }
            let kind = if is_call { 'C' } else { 'P' };
            let symbol = format!(
                "{root:<6}{}{kind}{:08}",
                expiry.format("%y%m%d"),
                (strike * 1000.0).round() as i64
            );
            let description = format!("{root} {} {strike:.2} {kind}", expiry.format("%m/%d/%Y"));
            let value = 0.4 * r.base_price * r.annual_volatility * (days as f64 / 365.0).sqrt();
            let close = round_to(value * (1.0 + 0.1 * standard_normal(rng)), 2).max(0.05);
            let last = round_to(close * (1.0 + 0.2 * standard_normal(rng)), 2).max(0.01);
            let per_minute = r.daily_volume / 2000.0 / 390.0 * (0.5 + rng.f64());
            let total_volume = (per_minute * 390.0 * (0.2 + 0.4 * rng.f64())).round() as i64;
            rows.push(Row {
                symbol: Arc::from(symbol),
                description: Arc::from(description),
                close,
                last,
                tick: 0.01,
                volatility: r.annual_volatility * 4.0,
                total_volume,
                trades: total_volume / 8,
                per_minute,
            });
        }
    }
    rows
}

impl MarketSimulator {
    /// Adds a screener for a validated key.
    pub(super) fn create_screener(&mut self, key: &str, spec: ScreenerKey) -> usize {
        let id = self.screeners.len();
        self.screeners
            .push(Screener::new(key, spec, self.cfg.seed, self.now_ms));
        self.screener_ids.insert(key.to_string(), id);
        id
    }

    /// Emits the screener lists due at `t`.
    pub(super) fn emit_screeners(&mut self, t: i64, frames: &mut Vec<String>) {
        for (i, service) in [Service::ScreenerEquity, Service::ScreenerOption]
            .into_iter()
            .enumerate()
        {
            if self.screener_next_at[i].is_none_or(|at| at > t) {
                continue;
            }
            let sub = &self.subs[service.index()];
            self.screener_next_at[i] = None;
            if !sub.keys.is_empty() {
                let next = (t.div_euclid(SCREENER_INTERVAL_MS) + 1) * SCREENER_INTERVAL_MS;
                self.screener_next_at[i] = earliest(None, next);
            }
            let mut content = ContentBuffer::default();
            for &id in &sub.keys {
                content.push_item(&self.screeners[id].item(t, sub.fields));
            }
            self.items[service.index()] += content.count();
            frames.extend(content.into_frame(service.name(), t));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_screener_key(false, "NASDAQ_VOLUME_5"),
            Ok(ScreenerKey {
                prefix: "NASDAQ",
                sort: "VOLUME",
                frequency: 5
            })
        );
        assert!(parse_screener_key(false, "$SPX.X_PERCENT_CHANGE_UP_60").is_ok());
        assert!(parse_screener_key(true, "OPTION_CALL_VOLUME_5").is_ok());
        for (option, bad, why) in [
            (false, "NASDAQ_VOLUME_7", "frequency"),
            (false, "NASDAQ_VOLUME", "frequency"),
            (false, "FOO_VOLUME_5", "prefix"),
            (true, "NASDAQ_VOLUME_5", "prefix"),
            (false, "OPTION_CALL_VOLUME_5", "prefix"),
            (false, "NASDAQ_PRICE_5", "sort field"),
            (false, "NASDAQVOLUME5", "no \"_\""),
        ] {
            match parse_screener_key(option, bad) {
                Ok(k) => panic!("{bad} parsed as {k:?}"),
                Err(e) => assert!(e.contains(why), "{bad}: {e}"),
            }
        }
    }
}
