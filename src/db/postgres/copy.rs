//! Binary `COPY ... FROM STDIN` of a table's rows, generated from its column list
//! ([`crate::db::columns`]) like the `UNNEST` statements, so both paths store identical rows.
//!
//! Format (PostgreSQL docs, "COPY", binary format): an 11-byte signature, flags and header
//! extension length (both 0); per row the field count (int16) and each field as its length
//! (int32, -1 for NULL) and its binary value (big-endian integers and IEEE doubles,
//! `timestamptz` as microseconds and `date` as days since 2000-01-01, `text` as UTF-8); a
//! -1 trailer.
//!
//! The server does not convert binary input: data written for one column type and loaded
//! into another may be refused or read as something else. So the types of the table's
//! columns are read from the catalog when a connection prepares its statements
//! ([`TYPES_SQL`], [`check_types`]); a table whose types differ from the column list is
//! written with `UNNEST` instead.

use chrono::NaiveDate;

use crate::db::columns::{TableSpec, Ty, Value};

/// `COPY table (columns) FROM STDIN (FORMAT binary)`.
pub fn copy_sql<R>(spec: &TableSpec<R>) -> String {
    format!("COPY {} FROM STDIN (FORMAT binary)", spec.insert_target())
}

/// Each column of a table with its type as `format_type` spells it; `$1` is the table name.
pub const TYPES_SQL: &str = "SELECT a.attname::text, format_type(a.atttypid, NULL) \
     FROM pg_attribute a \
     WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped";

/// How `format_type` names the PostgreSQL type of a column of type `ty`.
const fn pg_type_name(ty: Ty) -> &'static str {
    match ty {
        Ty::Text => "text",
        Ty::Time => "timestamp with time zone",
        Ty::Date => "date",
        Ty::Int4 => "integer",
        Ty::Int8 => "bigint",
        Ty::Float8 => "double precision",
        Ty::Json => "jsonb",
        Ty::Bool => "boolean",
    }
}

/// Checks the table's columns (`(name, type)` as [`TYPES_SQL`] returns them) against the
/// column list; the first mismatch, described, when they differ.
pub fn check_types<R>(spec: &TableSpec<R>, actual: &[(String, String)]) -> Result<(), String> {
    for column in &spec.columns {
        let expected = pg_type_name(column.ty);
        match actual.iter().find(|(name, _)| name == column.name) {
            Some((_, ty)) if ty == expected => {}
            Some((_, ty)) => {
                return Err(format!(
                    "{}.{} is {ty}, the writer sends {expected}",
                    spec.name, column.name
                ));
            }
            None => return Err(format!("{}.{} does not exist", spec.name, column.name)),
        }
    }
    Ok(())
}

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// 2000-01-01T00:00:00Z in microseconds since the Unix epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The binary `COPY` data of `rows`, columns in the order of `spec`.
pub fn encode<'a, R: 'static>(
    spec: &TableSpec<R>,
    rows: impl ExactSizeIterator<Item = &'a R>,
) -> Vec<u8> {
    // A column count fits the int16 field count (a test checks every table).
    let fields = spec.columns.len() as i16;
    // Per row: the field count, one length word and up to 8 value bytes per column.
    let mut out = Vec::with_capacity(21 + rows.len() * (2 + 12 * spec.columns.len()));
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for row in rows {
        out.extend_from_slice(&fields.to_be_bytes());
        for column in &spec.columns {
            value(&mut out, (column.get)(row));
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// One field: its length and bytes, or -1 for NULL.
fn value(out: &mut Vec<u8>, v: Value<'_>) {
    fn put(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
        match bytes {
            Some(b) => {
                // A text field longer than i32::MAX cannot be sent in any form; such a row
                // cannot exist (frames are far smaller).
                out.extend_from_slice(&(b.len().min(i32::MAX as usize) as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    match v {
        Value::Text(t) => put(out, t.map(str::as_bytes)),
        Value::Time(t) => put(
            out,
            t.map(|t| {
                t.timestamp_micros()
                    .saturating_sub(PG_EPOCH_MICROS)
                    .to_be_bytes()
            })
            .as_ref()
            .map(|b| &b[..]),
        ),
        Value::Date(d) => put(
            out,
            d.map(|d| days_since_2000(d).to_be_bytes())
                .as_ref()
                .map(|b| &b[..]),
        ),
        Value::Int4(n) => put(out, n.map(i32::to_be_bytes).as_ref().map(|b| &b[..])),
        Value::Int8(n) => put(out, n.map(i64::to_be_bytes).as_ref().map(|b| &b[..])),
        Value::Float8(x) => put(out, x.map(f64::to_be_bytes).as_ref().map(|b| &b[..])),
        Value::Bool(b) => put(out, b.map(|b| [u8::from(b)]).as_ref().map(|b| &b[..])),
        // jsonb's binary form: version 1, then the JSON text.
        Value::Json(j) => put(
            out,
            j.map(|j| [&[1u8][..], j.as_bytes()].concat()).as_deref(),
        ),
    }
}

/// A `date` as PostgreSQL's binary format holds it.
fn days_since_2000(d: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    // chrono dates span ±262,143 years: the day count fits i32.
    d.signed_duration_since(epoch).num_days() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::columns::{EQUITY_BARS, EQUITY_DATA, LATEST_QUOTES, OPTION_DATA};

    #[test]
    fn every_table_fits_the_field_count_and_names_its_columns() {
        assert!(EQUITY_DATA.columns.len() < i16::MAX as usize);
        assert!(OPTION_DATA.columns.len() < i16::MAX as usize);
        assert!(EQUITY_BARS.columns.len() < i16::MAX as usize);
        assert!(LATEST_QUOTES.columns.len() < i16::MAX as usize);
        assert!(copy_sql(&EQUITY_DATA).starts_with("COPY equity_data (ticker, \"timestamp\""));
    }

    #[test]
    fn dates_count_days_from_2000() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).expect("a date");
        assert_eq!(days_since_2000(d(2000, 1, 1)), 0);
        assert_eq!(days_since_2000(d(2000, 1, 2)), 1);
        assert_eq!(days_since_2000(d(1999, 12, 31)), -1);
    }

    #[test]
    fn a_type_mismatch_is_described() {
        let mut actual: Vec<(String, String)> = EQUITY_DATA
            .columns
            .iter()
            .map(|c| (c.name.to_string(), pg_type_name(c.ty).to_string()))
            .collect();
        assert_eq!(check_types(&EQUITY_DATA, &actual), Ok(()));
        actual[2].1 = "numeric".into();
        let err = check_types(&EQUITY_DATA, &actual).expect_err("differs");
        assert!(err.contains("numeric"), "{err}");
        actual.remove(2);
        assert!(check_types(&EQUITY_DATA, &actual).is_err());
    }
}
