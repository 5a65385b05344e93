//! Field tables of the services we store: Schwab field number → typed struct member.
//!
//! The same struct is both a *delta* (only the fields an item carried are `Some`) and the
//! *merged state* of a symbol ([`merge_from`](Merge::merge_from) overwrites only what
//! the delta carries, because a missing field means "unchanged", never null or zero).
//! Field numbers follow `schwab-protocol.md` §4.2–4.5 and `schwab-services.md` §2–4; unknown
//! numbers are ignored. The nested services (books, screeners, account activity) are in
//! [`super::nested`].

use std::sync::Arc;

use serde::de::{IgnoredAny, MapAccess};

use super::values::Read;

/// A table of numbered fields that a content item is read into.
pub trait FieldTable: Default {
    /// Reads the value of field `number` from `map`; unknown numbers are read and ignored.
    /// A value of the wrong type is an error (the item is then skipped).
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        number: u32,
        map: &mut A,
    ) -> Result<(), A::Error>;

    /// True for the services whose items carry a meaningful `"seq"` (CHART_FUTURES,
    /// ACCT_ACTIVITY): it is then read and handed to [`FieldTable::set_seq`].
    const WANTS_SEQ: bool = false;

    /// The item's `"seq"` (only called when [`FieldTable::WANTS_SEQ`]).
    fn set_seq(&mut self, _seq: i64) {}
}

/// A field table of a delta-delivered (Change) service: its deltas merge into its state.
pub trait Merge: Clone + Default {
    /// Overwrites every field that `delta` carries; the others stay as they are.
    fn merge_from(&mut self, delta: &Self);
}

/// Declares a field table: a struct of `Option`s plus its reader and merge.
macro_rules! field_table {
    ($(#[$meta:meta])* $name:ident { $( $num:literal => $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( #[doc = concat!("Schwab field ", stringify!($num), ".")] pub $field: Option<$ty>, )*
        }

        impl FieldTable for $name {
            fn read_field<'de, A: MapAccess<'de>>(
                &mut self,
                number: u32,
                map: &mut A,
            ) -> Result<(), A::Error> {
                match number {
                    $( $num => self.$field = Some(map.next_value::<Read<$ty>>()?.0), )*
                    _ => { map.next_value::<IgnoredAny>()?; }
                }
                Ok(())
            }
        }

        impl Merge for $name {
            fn merge_from(&mut self, delta: &Self) {
                $( if let Some(v) = &delta.$field { self.$field = Some(v.clone()); } )*
            }
        }

        impl $name {
            /// Every field number this table keeps, ascending.
            pub const FIELD_NUMBERS: &'static [u32] = &[$($num),*];

            /// How many fields are set.
            pub fn count_set(&self) -> usize {
                0 $( + usize::from(self.$field.is_some()) )*
            }
        }
    };
}

field_table! {
    /// LEVELONE_EQUITIES fields we keep (§4.2).
    EquityFields {
        1 => bid: f64,
        2 => ask: f64,
        3 => last: f64,
        4 => bid_size: i64,
        5 => ask_size: i64,
        8 => total_volume: i64,
        9 => last_size: i64,
        10 => high: f64,
        11 => low: f64,
        12 => close: f64,
        17 => open: f64,
        18 => net_change: f64,
        32 => security_status: Arc<str>,
        33 => mark: f64,
        34 => quote_time_ms: i64,
        35 => trade_time_ms: i64,
        42 => net_percent_change: f64,
    }
}

field_table! {
    /// LEVELONE_OPTIONS fields we keep (§4.3).
    OptionFields {
        2 => bid: f64,
        3 => ask: f64,
        4 => last: f64,
        5 => high: f64,
        6 => low: f64,
        7 => close: f64,
        8 => total_volume: i64,
        9 => open_interest: i64,
        10 => volatility: f64,
        16 => bid_size: i64,
        17 => ask_size: i64,
        19 => net_change: f64,
        20 => strike: f64,
        21 => contract_type: Arc<str>,
        22 => underlying: Arc<str>,
        25 => time_value: f64,
        27 => days_to_expiration: i64,
        28 => delta: f64,
        29 => gamma: f64,
        30 => theta: f64,
        31 => vega: f64,
        32 => rho: f64,
        34 => theoretical_value: f64,
        35 => underlying_price: f64,
        37 => mark: f64,
        38 => quote_time_ms: i64,
        39 => trade_time_ms: i64,
    }
}

field_table! {
    /// CHART_EQUITY fields in the REAL wire order (§4.4), not the official table's.
    ChartFields {
        1 => sequence: i64,
        2 => open: f64,
        3 => high: f64,
        4 => low: f64,
        5 => close: f64,
        6 => volume: i64,
        7 => bar_start_ms: i64,
        8 => chart_day: i64,
    }
}

field_table! {
    /// LEVELONE_FUTURES fields we keep (`schwab-protocol.md` §4.5).
    FuturesFields {
        1 => bid: f64,
        2 => ask: f64,
        3 => last: f64,
        4 => bid_size: i64,
        5 => ask_size: i64,
        8 => total_volume: i64,
        9 => last_size: i64,
        10 => quote_time_ms: i64,
        11 => trade_time_ms: i64,
        12 => high: f64,
        13 => low: f64,
        14 => close: f64,
        18 => open: f64,
        19 => net_change: f64,
        20 => percent_change: f64,
        22 => security_status: Arc<str>,
        23 => open_interest: i64,
        24 => mark: f64,
        31 => multiplier: f64,
        33 => settlement_price: f64,
        34 => active_symbol: Arc<str>,
        35 => expiration_ms: i64,
    }
}

field_table! {
    /// LEVELONE_FUTURES_OPTIONS fields we keep (`schwab-services.md` §2).
    FuturesOptionFields {
        1 => bid: f64,
        2 => ask: f64,
        3 => last: f64,
        4 => bid_size: i64,
        5 => ask_size: i64,
        8 => total_volume: i64,
        9 => last_size: i64,
        10 => quote_time_ms: i64,
        11 => trade_time_ms: i64,
        12 => high: f64,
        13 => low: f64,
        14 => close: f64,
        17 => open: f64,
        18 => open_interest: i64,
        19 => mark: f64,
        22 => multiplier: f64,
        23 => settlement_price: f64,
        24 => underlying: Arc<str>,
        25 => strike: f64,
        26 => expiration_ms: i64,
        28 => contract_type: Arc<str>,
        29 => security_status: Arc<str>,
    }
}

field_table! {
    /// LEVELONE_FOREX fields we keep (`schwab-services.md` §3: numbered unlike equities).
    ForexFields {
        1 => bid: f64,
        2 => ask: f64,
        3 => last: f64,
        4 => bid_size: i64,
        5 => ask_size: i64,
        6 => total_volume: i64,
        7 => last_size: i64,
        8 => quote_time_ms: i64,
        9 => trade_time_ms: i64,
        10 => high: f64,
        11 => low: f64,
        12 => close: f64,
        15 => open: f64,
        16 => net_change: f64,
        17 => percent_change: f64,
        20 => security_status: Arc<str>,
        29 => mark: f64,
    }
}

/// CHART_FUTURES fields (`schwab-services.md` §4: the guide's order matches the wire), plus
/// the item's `seq`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FuturesChartFields {
    /// Schwab field 1: the bar's start (ms since the epoch).
    pub bar_start_ms: Option<i64>,
    /// Schwab field 2.
    pub open: Option<f64>,
    /// Schwab field 3.
    pub high: Option<f64>,
    /// Schwab field 4.
    pub low: Option<f64>,
    /// Schwab field 5.
    pub close: Option<f64>,
    /// Schwab field 6.
    pub volume: Option<i64>,
    /// The item's `seq`.
    pub seq: Option<i64>,
}

impl FieldTable for FuturesChartFields {
    const WANTS_SEQ: bool = true;

    fn set_seq(&mut self, seq: i64) {
        self.seq = Some(seq);
    }

    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        number: u32,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match number {
            1 => self.bar_start_ms = Some(map.next_value::<Read<i64>>()?.0),
            2 => self.open = Some(map.next_value::<Read<f64>>()?.0),
            3 => self.high = Some(map.next_value::<Read<f64>>()?.0),
            4 => self.low = Some(map.next_value::<Read<f64>>()?.0),
            5 => self.close = Some(map.next_value::<Read<f64>>()?.0),
            6 => self.volume = Some(map.next_value::<Read<i64>>()?.0),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
