//! Tolerant JSON value readers for Schwab field values.
//!
//! The wire is loose: integers can arrive as floats (`18235000.0`), greeks can be the string
//! `"NaN"`, and sizes can be floats. These readers accept every shape that carries the right
//! meaning and reject the rest, which makes the item malformed (skipped and counted).

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};

/// Reads a field value into our stored type.
pub trait FieldValue: Sized + Clone + PartialEq + fmt::Debug {
    /// Deserializes one JSON value.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    /// `"NaN"` (seen for greeks) and numeric strings are accepted.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        let t = v.trim();
        if t.eq_ignore_ascii_case("nan") {
            return Ok(f64::NAN);
        }
        t.parse::<f64>()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl FieldValue for f64 {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(F64Visitor)
    }
}

impl FieldValue for i64 {
    /// Integers, or floats that hold a whole number within range (rounded to the nearest).
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(F64OrI64)?;
        Ok(v)
    }
}

struct F64OrI64;

impl Visitor<'_> for F64OrI64 {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        if v.is_finite() && v.abs() < 9.0e15 {
            Ok(v.round() as i64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        let f = F64Visitor.visit_str::<E>(v)?;
        self.visit_f64(f)
    }
}

impl FieldValue for bool {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <bool as serde::Deserialize>::deserialize(d)
    }
}

impl FieldValue for Arc<str> {
    /// Strings; a number or bool is kept as its text (char fields are sometimes numeric).
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor)
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Arc<str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Arc<str>, E> {
        Ok(Arc::from(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Arc<str>, E> {
        Ok(Arc::from(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Arc<str>, E> {
        Ok(Arc::from(v.to_string()))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Arc<str>, E> {
        Ok(Arc::from(if v { "true" } else { "false" }))
    }
}

/// Wraps a [`FieldValue`] so `MapAccess::next_value` can read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Read<T>(pub T);

/// Written back as the plain value (screener entries are stored with their own names).
impl<T: serde::Serialize> serde::Serialize for Read<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: FieldValue> serde::Deserialize<'de> for Read<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::read(d).map(Read)
    }
}
