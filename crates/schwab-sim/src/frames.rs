//! Server frame text: data frame envelopes, LEVELONE items (snapshot or delta), CHART_EQUITY
//! items in the real wire order, and heartbeats.

use super::candles::Candle;
use super::field_value::{DeltaCache, FieldSet, FieldValue};
use super::json;
use super::market_time::{chart_day, chart_sequence};
use super::walk::dollars;

/// Extra keys of the first LEVELONE item after a subscription.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SnapshotHeader<'a> {
    /// `assetMainType`.
    pub asset_main_type: &'a str,
    /// `assetSubType`, when the asset class has one.
    pub asset_sub_type: Option<&'a str>,
    /// `cusip` (empty for options).
    pub cusip: &'a str,
}

/// Content items of one data frame being assembled.
#[derive(Debug, Default)]
pub(crate) struct ContentBuffer {
    text: String,
    count: u64,
}

impl ContentBuffer {
    /// Number of items written.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Writes a LEVELONE item for `key`: with `header` every subscribed field that has a value
    /// (after clearing `cache`), otherwise only fields whose value differs from the last one
    /// sent. Field 0 is never written (the symbol is `key`). Returns false, writing nothing,
    /// for a delta without changes.
    pub(crate) fn push_level_one(
        &mut self,
        key: &str,
        header: Option<SnapshotHeader<'_>>,
        fields: FieldSet,
        cache: &mut DeltaCache,
        value_of: impl Fn(u32) -> Option<FieldValue>,
    ) -> bool {
        let mark = self.text.len();
        let out = &mut self.text;
        if self.count > 0 {
            out.push(',');
        }
        out.push('{');
        json::push_key(out, "key");
        json::push_str(out, key);
        if let Some(h) = header {
            cache.clear();
            out.push(',');
            json::push_key(out, "delayed");
            out.push_str("false,");
            json::push_key(out, "assetMainType");
            json::push_str(out, h.asset_main_type);
            if let Some(sub) = h.asset_sub_type {
                out.push(',');
                json::push_key(out, "assetSubType");
                json::push_str(out, sub);
            }
            out.push(',');
            json::push_key(out, "cusip");
            json::push_str(out, h.cusip);
        }
        let mut changed = false;
        for field in fields.iter().filter(|&f| f != 0) {
            if let Some(value) = value_of(field)
                && cache.update(field, &value)
            {
                out.push(',');
                json::push_field_key(out, field);
                value.write_json(out);
                changed = true;
            }
        }
        if !changed && header.is_none() {
            self.text.truncate(mark);
            return false;
        }
        self.text.push('}');
        self.count += 1;
        true
    }

    /// Writes a CHART_EQUITY item in the real wire order: `seq`, `key`, then fields 1–8
    /// (sequence = minutes since 07:00 ET, O, H, L, C, volume, start ms, day number), each
    /// only if subscribed. `volume_as_float` prints the volume as `26.0`.
    pub(crate) fn push_chart(
        &mut self,
        seq: u64,
        key: &str,
        fields: FieldSet,
        candle: &Candle,
        volume_as_float: bool,
    ) {
        let out = &mut self.text;
        if self.count > 0 {
            out.push(',');
        }
        out.push('{');
        json::push_key(out, "seq");
        json::push_i64(out, i64::try_from(seq).unwrap_or(i64::MAX));
        out.push(',');
        json::push_key(out, "key");
        json::push_str(out, key);
        for field in fields.iter().filter(|&f| (1..=8).contains(&f)) {
            out.push(',');
            json::push_field_key(out, field);
            match field {
                1 => json::push_i64(out, chart_sequence(candle.start_ms)),
                2 => json::push_f64(out, dollars(candle.open_c)),
                3 => json::push_f64(out, dollars(candle.high_c)),
                4 => json::push_f64(out, dollars(candle.low_c)),
                5 => json::push_f64(out, dollars(candle.close_c)),
                6 if volume_as_float => json::push_i64_as_float(out, candle.volume),
                6 => json::push_i64(out, candle.volume),
                7 => json::push_i64(out, candle.start_ms),
                _ => json::push_i64(out, chart_day(candle.start_ms)),
            }
        }
        out.push('}');
        self.count += 1;
    }

    /// Writes a CHART_FUTURES item in the real order: `"1"` bar start ms, `"2"`–`"5"` OHLC,
    /// `"6"` volume (each only if subscribed), then `seq` and `key`.
    pub(crate) fn push_future_chart(
        &mut self,
        seq: u64,
        key: &str,
        fields: FieldSet,
        candle: &Candle,
        [open, high, low, close]: [f64; 4],
    ) {
        let out = &mut self.text;
        if self.count > 0 {
            out.push(',');
        }
        out.push('{');
        for field in fields.iter().filter(|&f| (1..=6).contains(&f)) {
            json::push_field_key(out, field);
            match field {
                1 => json::push_i64(out, candle.start_ms),
                2 => json::push_f64(out, open),
                3 => json::push_f64(out, high),
                4 => json::push_f64(out, low),
                5 => json::push_f64(out, close),
                _ => json::push_i64(out, candle.volume),
            }
            out.push(',');
        }
        json::push_key(out, "seq");
        json::push_i64(out, i64::try_from(seq).unwrap_or(i64::MAX));
        out.push(',');
        json::push_key(out, "key");
        json::push_str(out, key);
        out.push('}');
        self.count += 1;
    }

    /// Appends one complete item (a JSON object written by the caller).
    pub(crate) fn push_item(&mut self, item: &str) {
        if self.count > 0 {
            self.text.push(',');
        }
        self.text.push_str(item);
        self.count += 1;
    }

    /// The data frame holding the items written, or `None` if there are none.
    pub(crate) fn into_frame(self, service: &str, timestamp_ms: i64) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let mut frame = String::with_capacity(self.text.len() + 96);
        frame.push_str("{\"data\":[{");
        json::push_key(&mut frame, "service");
        json::push_str(&mut frame, service);
        frame.push(',');
        json::push_key(&mut frame, "timestamp");
        json::push_i64(&mut frame, timestamp_ms);
        frame.push(',');
        json::push_key(&mut frame, "command");
        json::push_str(&mut frame, "SUBS");
        frame.push(',');
        json::push_key(&mut frame, "content");
        frame.push('[');
        frame.push_str(&self.text);
        frame.push_str("]}]}");
        Some(frame)
    }
}

/// `{"notify":[{"heartbeat":"<ms>"}]}`: the value is a string of epoch milliseconds.
pub(crate) fn heartbeat(now_ms: i64) -> String {
    format!("{{\"notify\":[{{\"heartbeat\":\"{now_ms}\"}}]}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_msft_candle_is_reproduced_byte_for_byte_but_for_the_close() {
        let candle = Candle {
            start_ms: 1_715_903_940_000,
            open_c: 42165,
            high_c: 42179,
            low_c: 42165,
            close_c: 42175,
            volume: 26,
        };
        let mut content = ContentBuffer::default();
        content.push_chart(
            0,
            "MSFT",
            FieldSet::from_fields(&[0, 1, 2, 3, 4, 5, 6, 7, 8]),
            &candle,
            true,
        );
        let frame = content
            .into_frame("CHART_EQUITY", 1_715_904_000_100)
            .unwrap_or_default();
        assert_eq!(
            frame,
            "{\"data\":[{\"service\":\"CHART_EQUITY\",\"timestamp\":1715904000100,\"command\":\"SUBS\",\"content\":[\
             {\"seq\":0,\"key\":\"MSFT\",\"1\":779,\"2\":421.65,\"3\":421.79,\"4\":421.65,\"5\":421.75,\"6\":26.0,\"7\":1715903940000,\"8\":19859}]}]}"
        );
    }

    #[test]
    fn deltas_without_changes_write_nothing() {
        let mut content = ContentBuffer::default();
        let mut cache = DeltaCache::default();
        let fields = FieldSet::from_fields(&[0, 3]);
        let header = SnapshotHeader {
            asset_main_type: "EQUITY",
            asset_sub_type: Some("COE"),
            cusip: "037833100",
        };
        assert!(
            content.push_level_one("AAPL", Some(header), fields, &mut cache, |_| Some(
                FieldValue::Double(233.3)
            ))
        );
        assert!(
            !content.push_level_one("AAPL", None, fields, &mut cache, |_| Some(
                FieldValue::Double(233.3)
            ))
        );
        assert!(
            content.push_level_one("AAPL", None, fields, &mut cache, |_| Some(
                FieldValue::Double(233.31)
            ))
        );
        assert_eq!(content.count(), 2);
        assert_eq!(
            content
                .into_frame("LEVELONE_EQUITIES", 5)
                .unwrap_or_default(),
            "{\"data\":[{\"service\":\"LEVELONE_EQUITIES\",\"timestamp\":5,\"command\":\"SUBS\",\"content\":[\
             {\"key\":\"AAPL\",\"delayed\":false,\"assetMainType\":\"EQUITY\",\"assetSubType\":\"COE\",\"cusip\":\"037833100\",\"3\":233.3},\
             {\"key\":\"AAPL\",\"3\":233.31}]}]}"
        );
        assert_eq!(ContentBuffer::default().into_frame("X", 1), None);
        assert_eq!(
            heartbeat(1_755_118_704_127),
            "{\"notify\":[{\"heartbeat\":\"1755118704127\"}]}"
        );
    }
}
