//! Rows of the services that are not merged: screener snapshots, account activity messages,
//! and the contract of a futures option parsed from its key. Text that PostgreSQL cannot
//! store (a NUL character) is removed here, so one odd message never fails a batch.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;

use super::ApplyError;
use crate::rows::market::{FuturesOptionKey, stable_hash};
use crate::rows::{AccountActivityRow, ScreenerKind, ScreenerRow, time_from_ms};
use crate::schwab::wire::{AccountFields, ScreenerFields, Service, Update};
use streamer_config::futures_option_symbol::FuturesOptionContract;

/// `s` without NUL characters (PostgreSQL text and jsonb cannot hold them).
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

/// Removes NUL characters from every string (and key) of a JSON value.
fn clean_json(v: Value) -> Value {
    match v {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(clean_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (clean(&k).into_owned(), clean_json(v)))
                .collect(),
        ),
        other => other,
    }
}

/// One screener snapshot; its time is field 1 (the data timestamp when absent).
pub fn screener_row(
    service: Service,
    update: &Update<'_>,
    s: &ScreenerFields,
) -> Result<ScreenerRow, ApplyError> {
    let Some(kind) = ScreenerKind::of(service) else {
        return Err(ApplyError::MissingField {
            service: service.wire_name(),
            symbol: update.symbol.to_string(),
            field: 0,
            name: "screener",
        });
    };
    let ms = s.timestamp_ms.unwrap_or(update.event_ms);
    let timestamp = time_from_ms(ms).ok_or(ApplyError::BadTimestamp { ms })?;
    let items = serde_json::to_value(&s.items)
        .map_or_else(|_| "[]".to_string(), |v| clean_json(v).to_string());
    Ok(ScreenerRow {
        service: kind,
        key: Arc::from(update.symbol.as_ref()),
        timestamp,
        sort_field: s
            .sort_field
            .as_deref()
            .map(|f| Arc::from(clean(f).as_ref())),
        frequency: s.frequency,
        item_count: i32::try_from(s.items.len()).unwrap_or(i32::MAX),
        items,
    })
}

/// One account activity message. Field 3 is JSON when it parses as a JSON object or array,
/// else it is kept as text (the nightly `"Feature not supported"` frame): never an error.
pub fn account_row(
    update: &Update<'_>,
    m: &AccountFields,
) -> Result<AccountActivityRow, ApplyError> {
    let ms = update.event_ms;
    let received_at = time_from_ms(ms).ok_or(ApplyError::BadTimestamp { ms })?;
    let account = m
        .account
        .as_deref()
        .ok_or_else(|| ApplyError::MissingField {
            service: "ACCT_ACTIVITY",
            symbol: update.symbol.to_string(),
            field: 1,
            name: "account",
        })?;
    let message_type = clean(m.message_type.as_deref().unwrap_or(""));
    let raw = m.message.as_deref().unwrap_or("");
    let (message_json, message_text) = match serde_json::from_str::<Value>(raw) {
        Ok(v @ (Value::Object(_) | Value::Array(_))) => (Some(clean_json(v).to_string()), None),
        _ => (None, Some(clean(raw).into_owned())),
    };
    let message_hash = stable_hash(&[&message_type, raw]);
    Ok(AccountActivityRow {
        key: Arc::from(clean(&update.symbol).as_ref()),
        account: Arc::from(clean(account).as_ref()),
        seq: m.seq.unwrap_or(0),
        message_type: Arc::from(message_type.as_ref()),
        received_at,
        message_json,
        message_text,
        message_hash,
    })
}

/// The contract of a futures option key (`./OZCZ23C565`), by the one parser in
/// `streamer-config`.
pub fn futures_option_key(symbol: &str) -> Result<FuturesOptionKey, String> {
    let c = FuturesOptionContract::parse(symbol).map_err(|e| e.to_string())?;
    Ok(FuturesOptionKey {
        root: Arc::from(c.root.as_str()),
        contract_month: c.contract_month(),
        contract_type: c.contract_type.as_char(),
        strike: c.strike,
    })
}
