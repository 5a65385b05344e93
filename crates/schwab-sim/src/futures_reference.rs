//! Futures reference data and symbols: the root table (price level, tick, multiplier, venue,
//! listed months), contract months and expirations, the front-month ("active") contract of a
//! `/ES` key, and parsing of futures (`/ES`, `/ESZ26`) and futures-option (`./OZCZ27C565`) keys.
//!
//! Expirations are simplified but stable: equity-index, interest-rate and currency futures
//! expire on the third Friday of the contract month at 09:30 ET; energy on the 20th of the
//! month before (moved back to a weekday) at 14:30 ET; metals and grains on the 14th of the
//! contract month (moved back to a weekday) at 13:30 ET. The active contract of a front-month
//! key is the first listed month expiring more than 8 days after the simulated time (the roll
//! week). Options on futures expire with the future on third-Friday roots, otherwise on the
//! last Friday of the month before the contract month (13:30 ET).

use chrono::{Datelike, Months, NaiveDate, NaiveTime, Weekday};

use super::market_time::{DAY_MS, eastern_date, eastern_instant_ms};
use super::seeding::{mix, symbol_hash, unit};

/// Month codes F (January) … Z (December).
pub(crate) const MONTH_CODES: [char; 12] =
    ['F', 'G', 'H', 'J', 'K', 'M', 'N', 'Q', 'U', 'V', 'X', 'Z'];
/// Days before expiry on which a front-month key rolls to the next contract.
const ROLL_DAYS: i64 = 8;

/// How a root's contracts expire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryRule {
    /// Third Friday of the contract month, 09:30 ET.
    ThirdFriday,
    /// 20th of the previous month (back to a weekday), 14:30 ET.
    PriorMonth20th,
    /// 14th of the contract month (back to a weekday), 13:30 ET.
    MidMonth,
}

/// Static data of one futures root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FutureRoot {
    /// Root without the slash, e.g. "ES".
    pub root: &'static str,
    /// Field 16 stem, e.g. "E-mini S&P 500 Index Futures".
    pub description: &'static str,
    /// Typical price.
    pub price: f64,
    /// Field 25.
    pub tick: f64,
    /// Field 31 (point value).
    pub multiplier: f64,
    /// Field 21 (MIC of the exchange).
    pub exchange: &'static str,
    /// Listed contract months (month codes).
    pub months: &'static str,
    /// Expiry rule.
    pub expiry: ExpiryRule,
    /// Annualised volatility.
    pub volatility: f64,
    /// Typical daily volume in contracts.
    pub daily_volume: f64,
}

const fn root(
    root: &'static str,
    description: &'static str,
    (price, tick, multiplier): (f64, f64, f64),
    (exchange, months, expiry): (&'static str, &'static str, ExpiryRule),
    (volatility, daily_volume): (f64, f64),
) -> FutureRoot {
    FutureRoot {
        root,
        description,
        price,
        tick,
        multiplier,
        exchange,
        months,
        expiry,
        volatility,
        daily_volume,
    }
}

const QUARTERLY: &str = "HMUZ";
const MONTHLY: &str = "FGHJKMNQUVXZ";
use ExpiryRule::{MidMonth, PriorMonth20th, ThirdFriday};

#[rustfmt::skip]
const ROOTS: &[FutureRoot] = &[
    root("ES", "E-mini S&P 500 Index Futures", (6000.0, 0.25, 50.0), ("XCME", QUARTERLY, ThirdFriday), (0.16, 1.5e6)),
    root("MES", "Micro E-mini S&P 500 Index Futures", (6000.0, 0.25, 5.0), ("XCME", QUARTERLY, ThirdFriday), (0.16, 1.2e6)),
    root("NQ", "E-mini Nasdaq-100 Index Futures", (21000.0, 0.25, 20.0), ("XCME", QUARTERLY, ThirdFriday), (0.20, 6.0e5)),
    root("MNQ", "Micro E-mini Nasdaq-100 Index Futures", (21000.0, 0.25, 2.0), ("XCME", QUARTERLY, ThirdFriday), (0.20, 9.0e5)),
    root("YM", "E-mini Dow Jones Industrial Average Index Futures", (44000.0, 1.0, 5.0), ("XCBT", QUARTERLY, ThirdFriday), (0.15, 1.5e5)),
    root("RTY", "E-mini Russell 2000 Index Futures", (2300.0, 0.1, 50.0), ("XCME", QUARTERLY, ThirdFriday), (0.22, 1.5e5)),
    root("CL", "Light Sweet Crude Oil Futures", (70.0, 0.01, 1000.0), ("XNYM", MONTHLY, PriorMonth20th), (0.35, 3.0e5)),
    root("NG", "Henry Hub Natural Gas Futures", (3.5, 0.001, 10000.0), ("XNYM", MONTHLY, PriorMonth20th), (0.55, 1.5e5)),
    root("GC", "Gold Futures", (2600.0, 0.1, 100.0), ("XCEC", "GJMQVZ", MidMonth), (0.15, 2.0e5)),
    root("SI", "Silver Futures", (31.0, 0.005, 5000.0), ("XCEC", "HKNUZ", MidMonth), (0.28, 6.0e4)),
    root("ZC", "Corn Futures", (450.0, 0.25, 50.0), ("XCBT", "HKNUZ", MidMonth), (0.22, 2.0e5)),
    root("ZS", "Soybean Futures", (1000.0, 0.25, 50.0), ("XCBT", "FHKNQUX", MidMonth), (0.18, 1.2e5)),
    root("ZW", "Chicago SRW Wheat Futures", (550.0, 0.25, 50.0), ("XCBT", "HKNUZ", MidMonth), (0.28, 8.0e4)),
    root("ZN", "10-Year T-Note Futures", (110.0, 0.015625, 1000.0), ("XCBT", QUARTERLY, ThirdFriday), (0.06, 1.3e6)),
    root("ZB", "U.S. Treasury Bond Futures", (117.0, 0.03125, 1000.0), ("XCBT", QUARTERLY, ThirdFriday), (0.10, 3.5e5)),
    root("6E", "Euro FX Futures", (1.08, 0.00005, 125000.0), ("XCME", QUARTERLY, ThirdFriday), (0.08, 1.8e5)),
];

/// Option roots that differ from their futures root (CME's codes).
const OPTION_ROOTS: &[(&str, &str)] = &[
    ("OZC", "ZC"),
    ("OZS", "ZS"),
    ("OZW", "ZW"),
    ("OZN", "ZN"),
    ("OZB", "ZB"),
    ("OG", "GC"),
    ("SO", "SI"),
    ("LO", "CL"),
    ("ON", "NG"),
];

/// Reference data of `root` (a hash-derived plausible one for roots not in the table).
pub(crate) fn future_root(root: &str) -> FutureRoot {
    if let Some(r) = ROOTS.iter().find(|r| r.root == root) {
        return *r;
    }
    let h = symbol_hash(root);
    let price = (10.0 * 100f64.powf(unit(mix(h, 1)))).round();
    FutureRoot {
        root: "",
        description: "Futures",
        price,
        tick: 0.01,
        multiplier: 100.0,
        exchange: "XCME",
        months: QUARTERLY,
        expiry: ThirdFriday,
        volatility: 0.2 + 0.2 * unit(mix(h, 2)),
        daily_volume: 1.0e4 + 1.0e5 * unit(mix(h, 3)),
    }
}

/// The futures root an option root is written on (`OZC` → `ZC`, `ES` → `ES`).
pub(crate) fn futures_root_of_option_root(option_root: &str) -> &str {
    OPTION_ROOTS
        .iter()
        .find(|(o, _)| *o == option_root)
        .map(|(_, f)| *f)
        .unwrap_or(option_root)
}

/// A contract month: month 1–12 and full year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ContractMonth {
    /// Year, e.g. 2027.
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
}

impl ContractMonth {
    /// Month code + 2-digit year, e.g. "Z27".
    pub(crate) fn code(self) -> String {
        format!(
            "{}{:02}",
            MONTH_CODES[(self.month - 1) as usize],
            self.year.rem_euclid(100)
        )
    }

    /// "Dec-2027", as in field 16.
    pub(crate) fn label(self) -> String {
        NaiveDate::from_ymd_opt(self.year, self.month, 1)
            .map(|d| d.format("%b-%Y").to_string())
            .unwrap_or_default()
    }

    fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }
}

fn back_to_weekday(mut d: NaiveDate) -> NaiveDate {
    while matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
        d = d.pred_opt().unwrap_or(d);
    }
    d
}

fn nth_weekday(first: NaiveDate, weekday: Weekday, n: u32) -> NaiveDate {
    let offset = (7 + weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    first + chrono::Days::new(u64::from(offset + 7 * (n - 1)))
}

fn at(date: NaiveDate, h: u32, m: u32) -> i64 {
    eastern_instant_ms(date, NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
}

/// Expiration (epoch ms) of the `month` contract of `root` (field 35).
pub(crate) fn contract_expiry_ms(root: &FutureRoot, month: ContractMonth) -> i64 {
    let first = month.first_day();
    match root.expiry {
        ThirdFriday => at(nth_weekday(first, Weekday::Fri, 3), 9, 30),
        PriorMonth20th => {
            let prior = first.checked_sub_months(Months::new(1)).unwrap_or(first);
            at(back_to_weekday(prior.with_day(20).unwrap_or(prior)), 14, 30)
        }
        MidMonth => at(back_to_weekday(first.with_day(14).unwrap_or(first)), 13, 30),
    }
}

/// Expiration (epoch ms) of an option on the `month` contract of `root`: with the future for
/// third-Friday roots, else the last Friday of the month before the contract month, 13:30 ET.
pub(crate) fn option_expiry_ms(root: &FutureRoot, month: ContractMonth) -> i64 {
    if root.expiry == ThirdFriday {
        return contract_expiry_ms(root, month);
    }
    let first = month.first_day();
    let mut d = first.pred_opt().unwrap_or(first);
    while d.weekday() != Weekday::Fri {
        d = d.pred_opt().unwrap_or(d);
    }
    at(d, 13, 30)
}

/// The front-month contract of `root` at `now_ms`: the first listed month expiring more than
/// the roll week after `now_ms`.
pub(crate) fn active_contract(root: &FutureRoot, now_ms: i64) -> ContractMonth {
    let today = eastern_date(now_ms);
    let mut month = ContractMonth {
        year: today.year(),
        month: today.month(),
    };
    for _ in 0..36 {
        let code = MONTH_CODES[(month.month - 1) as usize];
        if root.months.contains(code)
            && contract_expiry_ms(root, month) > now_ms + ROLL_DAYS * DAY_MS
        {
            return month;
        }
        month = if month.month == 12 {
            ContractMonth {
                year: month.year + 1,
                month: 1,
            }
        } else {
            ContractMonth {
                year: month.year,
                month: month.month + 1,
            }
        };
    }
    month
}

/// A parsed futures key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FutureKey {
    /// Root without the slash.
    pub root: String,
    /// The contract, `None` for a front-month key like `/ES`.
    pub contract: Option<ContractMonth>,
}

/// Expected futures key format (for error messages).
pub(crate) const FUTURE_KEY_FORMAT: &str = "\"/\" + root (1 to 4 upper-case letters or digits) + optional month code (FGHJKMNQUVXZ) and 2-digit year, e.g. \"/ES\" or \"/ESZ26\"";
/// Expected futures option key format (for error messages).
pub(crate) const FUTURE_OPTION_KEY_FORMAT: &str =
    "\"./\" + root + month code + 2-digit year + C|P + strike, e.g. \"./OZCZ27C565\"";

fn valid_root(root: &str) -> Result<(), String> {
    if root.is_empty() || root.len() > 4 {
        return Err(format!("the root \"{root}\" must have 1 to 4 characters"));
    }
    if !root
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "the root \"{root}\" must be upper-case letters or digits"
        ));
    }
    Ok(())
}

/// Splits a trailing month code + 2-digit year off `s`.
fn split_contract(s: &str) -> Option<(&str, ContractMonth)> {
    let n = s.len();
    if n < 4 || !s.is_ascii() {
        return None;
    }
    let (head, tail) = s.split_at(n - 3);
    let mut chars = tail.chars();
    let code = chars.next()?;
    let month = MONTH_CODES.iter().position(|&c| c == code)? as u32 + 1;
    let yy = chars.as_str();
    if !yy.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = 2000 + yy.parse::<i32>().ok()?;
    Some((head, ContractMonth { year, month }))
}

/// Parses `/ES` or `/ESZ26`.
pub(crate) fn parse_future_key(key: &str) -> Result<FutureKey, String> {
    let Some(body) = key.strip_prefix('/') else {
        return Err("it does not start with \"/\"".into());
    };
    if !body.is_ascii() {
        return Err("it contains non-ASCII characters".into());
    }
    match split_contract(body) {
        Some((root, contract)) if valid_root(root).is_ok() => Ok(FutureKey {
            root: root.to_string(),
            contract: Some(contract),
        }),
        _ => {
            valid_root(body)?;
            Ok(FutureKey {
                root: body.to_string(),
                contract: None,
            })
        }
    }
}

/// A parsed futures-option key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FutureOptionKey {
    /// Option root, e.g. "OZC".
    pub option_root: String,
    /// Contract month of the underlying future.
    pub contract: ContractMonth,
    /// True for a call.
    pub is_call: bool,
    /// Strike as written.
    pub strike_text: String,
    /// Strike.
    pub strike: f64,
}

impl FutureOptionKey {
    /// The underlying futures key (documented choice): `/` + futures root + month + year,
    /// e.g. `./OZCZ27C565` → `/ZCZ27`.
    pub(crate) fn underlying(&self) -> String {
        format!(
            "/{}{}",
            futures_root_of_option_root(&self.option_root),
            self.contract.code()
        )
    }
}

/// Parses `./OZCZ27C565`.
pub(crate) fn parse_future_option_key(key: &str) -> Result<FutureOptionKey, String> {
    let Some(body) = key.strip_prefix("./") else {
        return Err("it does not start with \"./\"".into());
    };
    if !body.is_ascii() {
        return Err("it contains non-ASCII characters".into());
    }
    let strike_start = body
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|i| i + 1)
        .unwrap_or(0);
    let strike_text = &body[strike_start..];
    let strike = strike_text
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("the strike \"{strike_text}\" is not a positive number"))?;
    let head = &body[..strike_start];
    let is_call = match head.chars().last() {
        Some('C') => true,
        Some('P') => false,
        _ => return Err("the strike must follow C or P".into()),
    };
    let head = &head[..head.len() - 1];
    let (root, contract) = split_contract(head)
        .ok_or_else(|| "a month code and 2-digit year must precede C or P".to_string())?;
    valid_root(root)?;
    Ok(FutureOptionKey {
        option_root: root.to_string(),
        contract,
        is_call,
        strike_text: strike_text.to_string(),
        strike,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, m: u32, d: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(15, 0, 0))
            .map(|dt| dt.and_utc().timestamp_millis())
            .unwrap_or_default()
    }

    #[test]
    fn keys_parse() {
        assert_eq!(
            parse_future_key("/ES"),
            Ok(FutureKey {
                root: "ES".into(),
                contract: None
            })
        );
        assert_eq!(
            parse_future_key("/ESZ26").map(|k| (k.root, k.contract.map(|c| c.code()))),
            Ok(("ES".into(), Some("Z26".into())))
        );
        assert_eq!(
            parse_future_key("/6E").map(|k| k.root),
            Ok("6E".to_string())
        );
        for bad in ["ES", "/", "/es", "/TOOLONG", "/E S", "/ÉS"] {
            assert!(parse_future_key(bad).is_err(), "{bad}");
        }
        let o = parse_future_option_key("./OZCZ27C565");
        assert_eq!(
            o.as_ref().map(|k| (k.underlying(), k.is_call, k.strike)),
            Ok(("/ZCZ27".to_string(), true, 565.0))
        );
        assert_eq!(
            parse_future_option_key("./ESH27P5800.5").map(|k| (k.underlying(), k.strike)),
            Ok(("/ESH27".to_string(), 5800.5))
        );
        for bad in [
            "/OZCZ27C565",
            "./OZCZ27X565",
            "./OZCZ27C",
            "./OZC27C565",
            "./Z27C565",
        ] {
            assert!(parse_future_option_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn front_months_roll_before_expiry() {
        let es = future_root("ES");
        // 2026-12-02: the December contract expires on the 18th, more than 8 days away
        assert_eq!(active_contract(&es, utc(2026, 12, 2)).code(), "Z26");
        assert_eq!(active_contract(&es, utc(2026, 12, 12)).code(), "H27");
        assert_eq!(active_contract(&es, utc(2027, 1, 5)).code(), "H27");
        let cl = future_root("CL");
        assert_eq!(active_contract(&cl, utc(2026, 12, 2)).code(), "F27");
        let expiry = contract_expiry_ms(
            &es,
            ContractMonth {
                year: 2027,
                month: 3,
            },
        );
        assert_eq!(
            eastern_date(expiry),
            NaiveDate::from_ymd_opt(2027, 3, 19).unwrap_or_default()
        );
        assert!(future_root("QQ").price > 0.0);
        let zc = future_root("ZC");
        let z27 = ContractMonth {
            year: 2027,
            month: 12,
        };
        assert!(option_expiry_ms(&zc, z27) < contract_expiry_ms(&zc, z27));
        assert_eq!(z27.label(), "Dec-2027");
    }
}
