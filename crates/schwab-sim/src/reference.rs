//! Static reference data per symbol: start price, description, CUSIP, listing exchange, asset
//! type, fundamentals. Common tickers come from a table; others are synthesised from a hash
//! of the symbol so they are plausible and stable.

use std::sync::Arc;

use super::seeding::{symbol_hash, unit};

/// Asset classes the simulator distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssetKind {
    /// Common stock ("EQUITY"/"COE").
    Stock,
    /// Exchange-traded fund ("ETF"/"ETF").
    Etf,
    /// Index such as `$SPX` ("INDEX", no sub-type, empty CUSIP).
    Index,
}

impl AssetKind {
    /// `assetMainType` of the first LEVELONE item.
    pub(crate) fn main_type(self) -> &'static str {
        match self {
            Self::Stock => "EQUITY",
            Self::Etf => "ETF",
            Self::Index => "INDEX",
        }
    }

    /// `assetSubType` of the first LEVELONE item, if the asset class has one.
    pub(crate) fn sub_type(self) -> Option<&'static str> {
        match self {
            Self::Stock => Some("COE"),
            Self::Etf => Some("ETF"),
            Self::Index => None,
        }
    }
}

/// Primary listing venue: (field 13 exchange id, field 25 exchange name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    Nasdaq,
    Nyse,
    Arca,
    Indices,
}

impl Listing {
    /// Field 13 code.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Self::Nasdaq => "Q",
            Self::Nyse => "N",
            Self::Arca => "P",
            Self::Indices => "0",
        }
    }

    /// Field 25 name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Nasdaq => "NASDAQ",
            Self::Nyse => "NYSE",
            Self::Arca => "NYSE Arca",
            Self::Indices => "Index",
        }
    }
}

/// Reference data of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    /// Field 15.
    pub description: Arc<str>,
    /// `cusip` of the first item (empty for indices).
    pub cusip: Arc<str>,
    /// Asset class.
    pub kind: AssetKind,
    /// Listing exchange.
    pub listing: Listing,
    /// Typical price before seed jitter.
    pub base_price: f64,
    /// Typical daily volume in shares.
    pub daily_volume: f64,
    /// Field 21.
    pub pe_ratio: f64,
    /// Field 22 (0 when the company pays none).
    pub annual_dividend: f64,
    /// Annualised volatility (drives the walk and option implied volatility).
    pub annual_volatility: f64,
}

struct Known {
    symbol: &'static str,
    price: f64,
    description: &'static str,
    cusip: &'static str,
    kind: AssetKind,
    listing: Listing,
    volume_millions: f64,
    pe: f64,
    dividend: f64,
    volatility: f64,
}

const fn known(
    symbol: &'static str,
    price: f64,
    description: &'static str,
    cusip: &'static str,
    (kind, listing): (AssetKind, Listing),
    (volume_millions, pe, dividend, volatility): (f64, f64, f64, f64),
) -> Known {
    Known {
        symbol,
        price,
        description,
        cusip,
        kind,
        listing,
        volume_millions,
        pe,
        dividend,
        volatility,
    }
}

const STOCK_Q: (AssetKind, Listing) = (AssetKind::Stock, Listing::Nasdaq);
const STOCK_N: (AssetKind, Listing) = (AssetKind::Stock, Listing::Nyse);
const ETF_P: (AssetKind, Listing) = (AssetKind::Etf, Listing::Arca);
const ETF_Q: (AssetKind, Listing) = (AssetKind::Etf, Listing::Nasdaq);
const INDEX: (AssetKind, Listing) = (AssetKind::Index, Listing::Indices);

#[rustfmt::skip]
const KNOWN: &[Known] = &[
    known("AAPL", 230.0, "Apple Inc", "037833100", STOCK_Q, (50.0, 35.4, 1.04, 0.28)),
    known("MSFT", 420.0, "Microsoft Corp", "594918104", STOCK_Q, (20.0, 36.1, 3.32, 0.25)),
    known("NVDA", 180.0, "NVIDIA Corp", "67066G104", STOCK_Q, (180.0, 52.3, 0.04, 0.48)),
    known("TSLA", 330.0, "Tesla Inc", "88160R101", STOCK_Q, (90.0, 180.5, 0.0, 0.60)),
    known("AMZN", 220.0, "Amazon.com Inc", "023135106", STOCK_Q, (40.0, 34.2, 0.0, 0.33)),
    known("GOOGL", 250.0, "Alphabet Inc. A", "02079K305", STOCK_Q, (30.0, 26.4, 0.84, 0.30)),
    known("GOOG", 251.0, "Alphabet Inc. C", "02079K107", STOCK_Q, (20.0, 26.4, 0.84, 0.30)),
    known("META", 700.0, "Meta Platforms Inc", "30303M102", STOCK_Q, (12.0, 27.1, 2.1, 0.38)),
    known("AMD", 160.0, "Advanced Micro Devices Inc", "007903107", STOCK_Q, (45.0, 95.0, 0.0, 0.50)),
    known("INTC", 25.0, "Intel Corp", "458140100", STOCK_Q, (90.0, 0.0, 0.0, 0.45)),
    known("NFLX", 1200.0, "Netflix Inc", "64110L106", STOCK_Q, (4.0, 50.2, 0.0, 0.35)),
    known("AVGO", 340.0, "Broadcom Inc", "11135F101", STOCK_Q, (20.0, 90.1, 2.36, 0.42)),
    known("WMT", 100.0, "Walmart Inc", "931142103", STOCK_Q, (17.0, 38.0, 0.94, 0.20)),
    known("PLTR", 180.0, "Palantir Technologies Inc", "69608A108", STOCK_Q, (60.0, 500.0, 0.0, 0.65)),
    known("COIN", 320.0, "Coinbase Global Inc", "19260Q107", STOCK_Q, (10.0, 30.5, 0.0, 0.70)),
    known("JPM", 300.0, "JPMorgan Chase & Co", "46625H100", STOCK_N, (9.0, 15.1, 6.0, 0.22)),
    known("BAC", 50.0, "Bank of America Corp", "060505104", STOCK_N, (35.0, 14.2, 1.12, 0.25)),
    known("XOM", 115.0, "Exxon Mobil Corp", "30231G102", STOCK_N, (15.0, 16.3, 3.96, 0.22)),
    known("KO", 70.0, "Coca-Cola Co", "191216100", STOCK_N, (14.0, 24.0, 2.04, 0.16)),
    known("DIS", 115.0, "Walt Disney Co", "254687106", STOCK_N, (9.0, 18.4, 1.0, 0.27)),
    known("V", 340.0, "Visa Inc", "92826C839", STOCK_N, (7.0, 33.0, 2.36, 0.20)),
    known("SPY", 650.0, "SPDR S&P 500 ETF", "78462F103", ETF_P, (70.0, 0.0, 7.0, 0.16)),
    known("QQQ", 560.0, "Invesco QQQ Trust", "46090E103", ETF_Q, (45.0, 0.0, 3.0, 0.20)),
    known("IWM", 230.0, "iShares Russell 2000 ETF", "464287655", ETF_P, (30.0, 0.0, 2.7, 0.22)),
    known("DIA", 450.0, "SPDR Dow Jones Industrial Average ETF", "78467X109", ETF_P, (4.0, 0.0, 7.0, 0.15)),
    known("$SPX", 6700.0, "S&P 500 Index", "", INDEX, (0.0, 0.0, 0.0, 0.16)),
    known("$NDX", 25000.0, "Nasdaq 100 Index", "", INDEX, (0.0, 0.0, 0.0, 0.20)),
    known("$DJI", 47000.0, "Dow Jones Industrial Average", "", INDEX, (0.0, 0.0, 0.0, 0.15)),
    known("$RUT", 2450.0, "Russell 2000 Index", "", INDEX, (0.0, 0.0, 0.0, 0.22)),
    known("$VIX", 16.0, "CBOE Volatility Index", "", INDEX, (0.0, 0.0, 0.0, 0.90)),
];

/// The equity whose walk an option root follows (index option roots map to their index).
pub(crate) fn underlying_of_root(root: &str) -> &str {
    match root {
        "SPX" | "SPXW" => "$SPX",
        "NDX" | "NDXP" => "$NDX",
        "RUT" | "RUTW" => "$RUT",
        "VIX" | "VIXW" => "$VIX",
        "DJX" => "$DJI",
        other => other,
    }
}

/// The symbols of the reference table (stocks, ETFs and indices), in table order.
pub(crate) fn known_symbols() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().map(|k| k.symbol)
}

/// Reference data for `symbol`.
pub(crate) fn reference_for(symbol: &str) -> Reference {
    if let Some(k) = KNOWN.iter().find(|k| k.symbol == symbol) {
        return Reference {
            description: Arc::from(k.description),
            cusip: Arc::from(k.cusip),
            kind: k.kind,
            listing: k.listing,
            base_price: k.price,
            daily_volume: k.volume_millions * 1.0e6,
            pe_ratio: k.pe,
            annual_dividend: k.dividend,
            annual_volatility: k.volatility,
        };
    }
    synthesised(symbol)
}

fn synthesised(symbol: &str) -> Reference {
    let h = symbol_hash(symbol);
    let draw = |salt: u64| unit(super::seeding::mix(h, salt));
    let is_index = symbol.starts_with('$');
    let kind = if is_index {
        AssetKind::Index
    } else {
        AssetKind::Stock
    };
    let listing = match (is_index, draw(1) < 0.6) {
        (true, _) => Listing::Indices,
        (false, true) => Listing::Nasdaq,
        (false, false) => Listing::Nyse,
    };
    let pays_dividend = !is_index && draw(2) < 0.5;
    // about 100, from 50 to 200
    let base_price = (100.0 * 2f64.powf(draw(3) * 2.0 - 1.0) * 100.0).round() / 100.0;
    Reference {
        description: Arc::from(if is_index {
            format!("{} Index", symbol.trim_start_matches('$'))
        } else {
            format!("{symbol} Inc")
        }),
        cusip: Arc::from(if is_index {
            String::new()
        } else {
            synthetic_cusip(h)
        }),
        kind,
        listing,
        base_price,
        daily_volume: if is_index {
            0.0
        } else {
            (0.5 + 9.5 * draw(4)) * 1.0e6
        },
        pe_ratio: if is_index {
            0.0
        } else {
            (10.0 + 30.0 * draw(5) * 100.0).round() / 100.0
        },
        annual_dividend: if pays_dividend {
            (base_price * (0.005 + 0.03 * draw(6)) * 100.0).round() / 100.0
        } else {
            0.0
        },
        annual_volatility: 0.25 + 0.3 * draw(7),
    }
}

/// A CUSIP-shaped string: 6-character issuer, issue "10", valid check digit.
fn synthetic_cusip(hash: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
    let mut body: String = (0..6)
        .map(|i| {
            let n = (hash >> (i * 8)) as usize % ALPHABET.len();
            char::from(ALPHABET[n])
        })
        .collect();
    body.push_str("10");
    let check = cusip_check_digit(&body);
    body.push(char::from(b'0' + check));
    body
}

/// The standard CUSIP check digit of the first eight characters.
fn cusip_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .chars()
        .take(8)
        .enumerate()
        .map(|(i, c)| {
            let mut v = match c {
                '0'..='9' => u32::from(c) - u32::from('0'),
                'A'..='Z' => u32::from(c) - u32::from('A') + 10,
                '*' => 36,
                '@' => 37,
                _ => 38,
            };
            if i % 2 == 1 {
                v *= 2;
            }
            v / 10 + v % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cusips_have_valid_check_digits() {
        for k in KNOWN.iter().filter(|k| !k.cusip.is_empty()) {
            assert_eq!(k.cusip.len(), 9, "{}", k.symbol);
            let check = cusip_check_digit(k.cusip);
            assert_eq!(
                k.cusip.as_bytes()[8],
                b'0' + check,
                "check digit of {}",
                k.symbol
            );
        }
    }

    #[test]
    fn synthesised_symbols_are_plausible_and_stable() {
        let a = reference_for("ZZZQ");
        let b = reference_for("ZZZQ");
        assert_eq!(a.cusip, b.cusip);
        assert_eq!(a.cusip.len(), 9);
        assert_eq!(a.cusip.as_bytes()[8], b'0' + cusip_check_digit(&a.cusip));
        assert!((50.0..=200.0).contains(&a.base_price));
        assert_eq!(a.kind, AssetKind::Stock);
        assert_ne!(reference_for("ZZZR").base_price, a.base_price);
        assert_eq!(reference_for("$FOO").kind, AssetKind::Index);
    }

    #[test]
    fn etfs_and_roots() {
        for etf in ["SPY", "QQQ", "IWM", "DIA"] {
            let r = reference_for(etf);
            assert_eq!(
                (r.kind.main_type(), r.kind.sub_type()),
                ("ETF", Some("ETF"))
            );
        }
        assert_eq!(reference_for("AAPL").kind.sub_type(), Some("COE"));
        assert_eq!(underlying_of_root("SPXW"), "$SPX");
        assert_eq!(underlying_of_root("AAPL"), "AAPL");
    }
}
