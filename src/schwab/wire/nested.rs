//! The services whose items are not flat numbered scalars (`schwab-services.md` §5–7): books
//! (nested price levels with their market makers), screeners (items with *named* fields) and
//! account activity (field 3 is JSON inside a string, or plain text). Each is a
//! [`FieldTable`], read by the same item reader as the quote services; every part is
//! optional or tolerant, so a surprising value costs at most its item.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess};

use super::fields::FieldTable;
use super::values::Read;

/// One market maker at a book level: `"0"` venue id, `"1"` size, `"2"` quote time in
/// **milliseconds since midnight New York time** (not since the epoch).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct MarketMaker {
    #[serde(rename = "0")]
    pub id: Read<Arc<str>>,
    #[serde(rename = "1", default)]
    pub size: Option<Read<i64>>,
    #[serde(rename = "2", default)]
    pub time_ms_of_day: Option<Read<i64>>,
}

/// One price level of a book: `"0"` price, `"1"` total size (shares), `"2"` number of market
/// makers, `"3"` the market makers.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct BookLevel {
    #[serde(rename = "0")]
    pub price: Read<f64>,
    #[serde(rename = "1", default)]
    pub size: Option<Read<i64>>,
    #[serde(rename = "2", default)]
    pub maker_count: Option<Read<i64>>,
    #[serde(rename = "3", default)]
    pub makers: Vec<MarketMaker>,
}

/// NYSE_BOOK / NASDAQ_BOOK / OPTIONS_BOOK item: the whole book each time (Whole delivery).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookFields {
    /// Field 1: snapshot time (ms since the epoch).
    pub snapshot_ms: Option<i64>,
    /// Field 2: bid levels, best first.
    pub bids: Vec<BookLevel>,
    /// Field 3: ask levels, best first.
    pub asks: Vec<BookLevel>,
}

impl FieldTable for BookFields {
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        number: u32,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match number {
            1 => self.snapshot_ms = Some(map.next_value::<Read<i64>>()?.0),
            2 => self.bids = map.next_value()?,
            3 => self.asks = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// One screener entry, with Schwab's field names (kept as they are in the stored JSON).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenerEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<Read<Arc<str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Read<Arc<str>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_price: Option<Read<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_change: Option<Read<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_percent_change: Option<Read<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_share: Option<Read<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_volume: Option<Read<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<Read<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<Read<i64>>,
}

/// SCREENER_EQUITY / SCREENER_OPTION item (Whole delivery).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScreenerFields {
    /// Field 1: timestamp (ms since the epoch).
    pub timestamp_ms: Option<i64>,
    /// Field 2: the sort field (`VOLUME`, ...).
    pub sort_field: Option<Arc<str>>,
    /// Field 3: frequency in minutes (0 = whole day).
    pub frequency: Option<i64>,
    /// Field 4: the entries, in Schwab's order.
    pub items: Vec<ScreenerEntry>,
}

impl FieldTable for ScreenerFields {
    fn read_field<'de, A: MapAccess<'de>>(
        &mut self,
        number: u32,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match number {
            1 => self.timestamp_ms = Some(map.next_value::<Read<i64>>()?.0),
            2 => self.sort_field = Some(map.next_value::<Read<Arc<str>>>()?.0),
            3 => self.frequency = Some(map.next_value::<Read<i64>>()?.0),
            4 => self.items = map.next_value()?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// ACCT_ACTIVITY item (All Sequence). Field 3 is "JSON or text": it is kept as the text
/// Schwab sent and only interpreted when stored. `Debug` hides the account number.
#[derive(Clone, Default, PartialEq)]
pub struct AccountFields {
    /// Field 1: the account number. Private: never logged.
    pub account: Option<Arc<str>>,
    /// Field 2: message type (`OrderCreated`, ...; empty on the nightly text frame).
    pub message_type: Option<Arc<str>>,
    /// Field 3: message data, usually a JSON document inside a string.
    pub message: Option<Arc<str>>,
    /// The item's `seq`.
    pub seq: Option<i64>,
}

impl std::fmt::Debug for AccountFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountFields")
            .field("account", &self.account.as_ref().map(|_| "<redacted>"))
            .field("message_type", &self.message_type)
            .field("message_bytes", &self.message.as_ref().map(|m| m.len()))
            .field("seq", &self.seq)
            .finish()
    }
}

impl FieldTable for AccountFields {
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
            1 => self.account = Some(map.next_value::<Read<Arc<str>>>()?.0),
            2 => self.message_type = Some(map.next_value::<Read<Arc<str>>>()?.0),
            3 => self.message = Some(map.next_value::<Read<Arc<str>>>()?.0),
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}
