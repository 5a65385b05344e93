//! Serde plumbing for server frames: borrowed strings, raw sections and content items.
//!
//! Sections and items are first captured as raw JSON slices, then parsed one by one, so a
//! bad item costs only itself: the rest of the frame is still used.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::fields::FieldTable;
use super::values::Read;

/// A string that borrows from the frame text when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// The three sections of a frame, each still raw. Other top-level keys are ignored.
#[derive(Default)]
pub struct RawSections<'a> {
    pub response: Option<&'a RawValue>,
    pub notify: Option<&'a RawValue>,
    pub data: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawSections<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawSections<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object with response/notify/data arrays")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = RawSections::default();
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        "response" => out.response = Some(map.next_value()?),
                        "notify" => out.notify = Some(map.next_value()?),
                        "data" => out.data = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// `content: {code, msg}` of a response or server notice.
#[derive(Deserialize, Default)]
pub struct WireContent {
    pub code: Option<Read<i64>>,
    pub msg: Option<String>,
}

/// One `response` item (a command acknowledgement).
#[derive(Deserialize)]
pub struct WireResponse {
    pub service: Option<String>,
    pub command: Option<String>,
    pub requestid: Option<Read<std::sync::Arc<str>>>,
    pub timestamp: Option<Read<i64>>,
    pub content: Option<WireContent>,
}

/// One `notify` item: a heartbeat or a server notice with a code.
#[derive(Deserialize)]
pub struct WireNotify {
    pub heartbeat: Option<Read<i64>>,
    pub service: Option<String>,
    pub content: Option<WireContent>,
}

/// One `data` item: a service's content array, items still raw.
#[derive(Deserialize)]
pub struct WireData<'a> {
    #[serde(borrow)]
    pub service: CowStr<'a>,
    pub timestamp: Option<Read<i64>>,
    #[serde(borrow)]
    pub content: Vec<&'a RawValue>,
}

/// A content item read into a field table: the symbol (`key`) and the fields it carried.
pub struct Item<'a, T> {
    pub key: Cow<'a, str>,
    pub fields: T,
}

/// Reads one content item into the field table `T`.
pub struct ItemSeed<T>(pub PhantomData<T>);

impl<'de, T: FieldTable> DeserializeSeed<'de> for ItemSeed<T> {
    type Value = Item<'de, T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: FieldTable> Visitor<'de> for ItemSeed<T> {
    type Value = Item<'de, T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a content item object with a string \"key\"")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut key: Option<Cow<'de, str>> = None;
        let mut fields = T::default();
        while let Some(name) = map.next_key::<CowStr<'de>>()? {
            let name = name.0;
            if name == "key" {
                let k = map.next_value::<CowStr<'de>>()?.0;
                if k.trim().is_empty() {
                    return Err(de::Error::custom("empty \"key\""));
                }
                key = Some(k);
            } else if let Some(number) = field_number(&name) {
                fields.read_field(number, &mut map)?;
            } else {
                // delayed, assetMainType, assetSubType, cusip, seq, …: not stored.
                map.next_value::<IgnoredAny>()?;
            }
        }
        let key = key.ok_or_else(|| de::Error::missing_field("key"))?;
        Ok(Item { key, fields })
    }
}

/// `"12"` → 12; anything that is not a plain decimal number → `None`.
fn field_number(name: &str) -> Option<u32> {
    if name.is_empty() || name.len() > 4 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Parses a raw section as an array of raw items.
pub fn raw_items(section: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str(section.get())
}

/// Parses one raw item with a seed.
pub fn parse_item<'a, T: FieldTable>(raw: &'a RawValue) -> Result<Item<'a, T>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let item = ItemSeed::<T>(PhantomData).deserialize(&mut de)?;
    de.end()?;
    Ok(item)
}
