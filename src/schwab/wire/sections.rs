//! Serde plumbing for server frames: borrowed strings, raw sections and content items.
//!
//! Items are first captured as raw JSON slices, then parsed one by one, so a bad item costs
//! only itself: the rest of the frame is still used. The `data` section (nearly all of the
//! text) is split into its elements and their raw content items while the frame is read, by
//! visitors that accept any JSON shape and mark malformed parts instead of failing: each
//! content item's text is scanned twice (captured, then parsed), never more.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// The three sections of a frame: `response` and `notify` still raw (rare and small), `data`
/// already split into elements. Other top-level keys are ignored.
#[derive(Default)]
pub struct RawSections<'a> {
    pub response: Option<&'a RawValue>,
    pub notify: Option<&'a RawValue>,
    pub data: Option<DataSection<'a>>,
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

/// One `data` element: a service's content array, items still raw.
pub struct WireData<'a> {
    pub service: CowStr<'a>,
    pub timestamp: Option<Read<i64>>,
    pub content: Vec<&'a RawValue>,
}

/// The `data` section as read in the frame's pass.
pub enum DataSection<'a> {
    /// Not an array: counts as one skipped item.
    NotArray,
    /// One entry per element; `None` for a malformed one (counts as one skipped item):
    /// not an object, `service` missing or not a string, `timestamp` not an integer,
    /// `content` missing or not an array, or one of them given twice.
    Elements(Vec<Option<WireData<'a>>>),
}

/// Visitor methods that take any scalar (string, number, bool, null) as `$bad`.
macro_rules! scalars_are {
    ($bad:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($bad)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($bad)
        }
    };
}

/// Reads and drops the rest of an array.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads and drops the rest of an object.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de: 'a, 'a> Deserialize<'de> for DataSection<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = DataSection<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are!(DataSection::NotArray);
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(DataSection::NotArray)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(DataElement(e)) = seq.next_element()? {
                    elements.push(e);
                }
                Ok(DataSection::Elements(elements))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// One `data` element, or `None` if malformed (any JSON shape is accepted).
struct DataElement<'a>(Option<WireData<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for DataElement<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = DataElement<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are!(DataElement(None));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(DataElement(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut service: Option<CowStr<'a>> = None;
                let mut timestamp: Option<Option<Read<i64>>> = None;
                let mut content: Option<Vec<&'a RawValue>> = None;
                let mut bad = false;
                while let Some(key) = map.next_key::<CowStr<'de>>()? {
                    match key.0.as_ref() {
                        // Small values: captured, then read with the usual types.
                        "service" => {
                            let raw: &'de RawValue = map.next_value()?;
                            bad |= service.is_some();
                            match serde_json::from_str::<CowStr<'a>>(raw.get()) {
                                Ok(v) => service = Some(v),
                                Err(_) => bad = true,
                            }
                        }
                        "timestamp" => {
                            let raw: &'de RawValue = map.next_value()?;
                            bad |= timestamp.is_some();
                            match serde_json::from_str::<Option<Read<i64>>>(raw.get()) {
                                Ok(v) => timestamp = Some(v),
                                Err(_) => bad = true,
                            }
                        }
                        "content" => {
                            bad |= content.is_some();
                            match map.next_value::<RawItems<'a>>()?.0 {
                                Some(items) => content = Some(items),
                                None => bad = true,
                            }
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(DataElement(match (bad, service, content) {
                    (false, Some(service), Some(content)) => Some(WireData {
                        service,
                        timestamp: timestamp.flatten(),
                        content,
                    }),
                    _ => None,
                }))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A `content` array's items, still raw, or `None` if it is not an array.
struct RawItems<'a>(Option<Vec<&'a RawValue>>);

impl<'de: 'a, 'a> Deserialize<'de> for RawItems<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawItems<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            scalars_are!(RawItems(None));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(RawItems(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(16));
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    items.push(item);
                }
                Ok(RawItems(Some(items)))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
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
            } else if T::WANTS_SEQ && name == "seq" {
                // A `seq` of an odd type is dropped, not fatal: the item is still usable.
                let raw: &'de RawValue = map.next_value()?;
                if let Ok(Read(seq)) = serde_json::from_str::<Read<i64>>(raw.get()) {
                    fields.set_seq(seq);
                }
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
