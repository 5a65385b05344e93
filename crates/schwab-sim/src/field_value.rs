//! Field values of LEVELONE items, field-number sets, and the per-symbol cache of values last
//! sent that turns full state into deltas.

use std::sync::Arc;

use super::json;

/// One field value as it goes on the wire.
#[derive(Debug, Clone)]
pub(crate) enum FieldValue {
    /// A double (prices, ratios); whole values print without a fraction like the real feed.
    Double(f64),
    /// An integer (sizes, times, counts).
    Int(i64),
    /// An integer printed as a float with `.0` (volume, as the feed does now and then).
    IntAsFloat(i64),
    /// A boolean.
    Bool(bool),
    /// A fixed string.
    Str(&'static str),
    /// A per-instrument string.
    Text(Arc<str>),
}

impl FieldValue {
    fn as_text(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    fn as_count(&self) -> Option<i64> {
        match self {
            Self::Int(v) | Self::IntAsFloat(v) => Some(*v),
            _ => None,
        }
    }

    /// Appends the JSON form of the value.
    pub(crate) fn write_json(&self, out: &mut String) {
        match self {
            Self::Double(v) => json::push_f64(out, *v),
            Self::Int(v) => json::push_i64(out, *v),
            Self::IntAsFloat(v) => json::push_i64_as_float(out, *v),
            Self::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Self::Str(s) => json::push_str(out, s),
            Self::Text(s) => json::push_str(out, s),
        }
    }
}

/// Equality by wire meaning: `Int(5)` equals `IntAsFloat(5)`, strings compare by content.
impl PartialEq for FieldValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Double(a), Self::Double(b)) => a == b,
            (Self::Bool(a), Self::Bool(b)) => a == b,
            _ => match (self.as_count(), other.as_count()) {
                (Some(a), Some(b)) => a == b,
                _ => matches!((self.as_text(), other.as_text()), (Some(a), Some(b)) if a == b),
            },
        }
    }
}

/// A set of field numbers 0..=63 (every supported service has fewer fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FieldSet(u64);

impl FieldSet {
    /// Highest field number a set can hold.
    pub(crate) const MAX_FIELD: u32 = 63;

    /// Builds a set; callers validate the range first (larger numbers are ignored).
    pub(crate) fn from_fields(fields: &[u32]) -> Self {
        Self(
            fields
                .iter()
                .filter(|&&f| f <= Self::MAX_FIELD)
                .fold(0, |bits, &f| bits | (1 << f)),
        )
    }

    /// True when `field` is in the set.
    pub(crate) fn contains(self, field: u32) -> bool {
        field <= Self::MAX_FIELD && self.0 & (1 << field) != 0
    }

    /// True when the set is empty.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The field numbers in ascending order.
    pub(crate) fn iter(self) -> impl Iterator<Item = u32> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let f = bits.trailing_zeros();
            bits &= bits - 1;
            Some(f)
        })
    }
}

/// The values last sent for one symbol of one LEVELONE service.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeltaCache {
    sent: Vec<Option<FieldValue>>,
}

impl DeltaCache {
    /// Forgets everything sent, so the next item is a full snapshot.
    pub(crate) fn clear(&mut self) {
        self.sent.clear();
    }

    /// Forgets fields no longer subscribed, so re-adding them sends their value again.
    pub(crate) fn retain(&mut self, fields: FieldSet) {
        for (f, slot) in self.sent.iter_mut().enumerate() {
            if !fields.contains(f as u32) {
                *slot = None;
            }
        }
    }

    /// Records `value` for `field`; true when it differs from what was last sent (or nothing was).
    pub(crate) fn update(&mut self, field: u32, value: &FieldValue) -> bool {
        let index = field as usize;
        if self.sent.len() <= index {
            self.sent.resize(index + 1, None);
        }
        if self.sent[index].as_ref() == Some(value) {
            false
        } else {
            self.sent[index] = Some(value.clone());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_sets_iterate_ascending() {
        let set = FieldSet::from_fields(&[8, 0, 3, 3, 51]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 3, 8, 51]);
        assert!(set.contains(51) && !set.contains(2) && !set.contains(64));
        assert!(FieldSet::default().is_empty());
    }

    #[test]
    fn cache_reports_only_changes() {
        let mut cache = DeltaCache::default();
        assert!(cache.update(8, &FieldValue::Int(10)));
        assert!(!cache.update(8, &FieldValue::IntAsFloat(10)));
        assert!(cache.update(8, &FieldValue::Int(11)));
        assert!(cache.update(15, &FieldValue::Str("x")));
        assert!(!cache.update(15, &FieldValue::Text(Arc::from("x"))));
        cache.retain(FieldSet::from_fields(&[8]));
        assert!(cache.update(15, &FieldValue::Str("x")));
        cache.clear();
        assert!(cache.update(8, &FieldValue::Int(11)));
    }
}
