//! The batch statements: one `INSERT ... SELECT FROM UNNEST(arrays)` per table, whatever the
//! batch size, generated from the table's column list ([`crate::db::columns`]). Quotes use
//! `ON CONFLICT DO NOTHING`; candles are upserted; `latest_quotes` keeps the newest merged
//! quote per ticker.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};

use crate::db::SinkError;
use crate::db::columns::{
    EQUITY_BARS, EQUITY_DATA, LATEST_QUOTES, OPTION_DATA, TableSpec, Ty, Value,
};
use crate::rows::{Batch, EquityRow};

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// `INSERT INTO t (cols) SELECT * FROM UNNEST($1::type[], …) ON CONFLICT …`.
fn unnest_sql<R>(spec: &TableSpec<R>) -> String {
    let params: Vec<String> = spec
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.ty.pg_array()))
        .collect();
    format!(
        "INSERT INTO {} SELECT * FROM UNNEST({}) {}",
        spec.insert_target(),
        params.join(", "),
        spec.conflict_clause("now()")
    )
}

static EQUITY_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&EQUITY_DATA));
static OPTION_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&OPTION_DATA));
static EQUITY_BARS_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&EQUITY_BARS));
static LATEST_QUOTES_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&LATEST_QUOTES));

/// Binds one array per column of `spec`, in column order.
fn bind_columns<'q, R: 'static>(
    mut query: PgQuery<'q>,
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'q R> + Clone,
) -> PgQuery<'q> {
    for column in &spec.columns {
        let get = column.get;
        let values = rows.clone().map(get);
        // A value of another variant than the column's type cannot happen (a test checks
        // every column list); it would be stored as NULL.
        query = match column.ty {
            Ty::Text => query.bind(
                values
                    .map(|v| match v {
                        Value::Text(t) => t,
                        _ => None,
                    })
                    .collect::<Vec<Option<&str>>>(),
            ),
            Ty::Time => query.bind(
                values
                    .map(|v| match v {
                        Value::Time(t) => t,
                        _ => None,
                    })
                    .collect::<Vec<Option<DateTime<Utc>>>>(),
            ),
            Ty::Date => query.bind(
                values
                    .map(|v| match v {
                        Value::Date(d) => d,
                        _ => None,
                    })
                    .collect::<Vec<Option<NaiveDate>>>(),
            ),
            Ty::Int4 => query.bind(
                values
                    .map(|v| match v {
                        Value::Int4(n) => n,
                        _ => None,
                    })
                    .collect::<Vec<Option<i32>>>(),
            ),
            Ty::Int8 => query.bind(
                values
                    .map(|v| match v {
                        Value::Int8(n) => n,
                        _ => None,
                    })
                    .collect::<Vec<Option<i64>>>(),
            ),
            Ty::Float8 => query.bind(
                values
                    .map(|v| match v {
                        Value::Float8(x) => x,
                        _ => None,
                    })
                    .collect::<Vec<Option<f64>>>(),
            ),
        };
    }
    query
}

/// Runs the statement `sql` of `spec` over `rows`; returns the rows it inserted or updated.
async fn write_rows<'q, R: 'static>(
    tx: &mut Transaction<'_, Postgres>,
    sql: &'static str,
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'q R> + Clone,
    action: &str,
) -> Result<u64, SinkError> {
    let query = bind_columns(sqlx::query(sql), spec, rows);
    let result = query
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new(action, e))?;
    Ok(result.rows_affected())
}

pub async fn insert_equities(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.equities.is_empty() {
        return Ok(0);
    }
    let rows = batch.equities.iter();
    write_rows(
        tx,
        &EQUITY_DATA_SQL,
        &EQUITY_DATA,
        rows,
        "insert into equity_data",
    )
    .await
}

pub async fn insert_options(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.options.is_empty() {
        return Ok(0);
    }
    let rows = batch.options.iter();
    write_rows(
        tx,
        &OPTION_DATA_SQL,
        &OPTION_DATA,
        rows,
        "insert into option_data",
    )
    .await
}

pub async fn upsert_bars(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.bars.is_empty() {
        return Ok(0);
    }
    // An upsert may not touch one row twice in a statement: keep the last copy of each candle.
    let mut deduped = Batch {
        bars: batch.bars.clone(),
        ..Batch::default()
    };
    deduped.dedup_bars();
    let rows = deduped.bars.iter();
    write_rows(
        tx,
        &EQUITY_BARS_SQL,
        &EQUITY_BARS,
        rows,
        "upsert into equity_bars",
    )
    .await
}

/// Upserts the newest merged quote per ticker; an older row never overwrites a newer one
/// (a retried batch may arrive after a later one).
pub async fn upsert_latest_quotes(
    tx: &mut Transaction<'_, Postgres>,
    latest: &[&EquityRow],
) -> Result<u64, SinkError> {
    if latest.is_empty() {
        return Ok(0);
    }
    let rows = latest.iter().copied();
    write_rows(
        tx,
        &LATEST_QUOTES_SQL,
        &LATEST_QUOTES,
        rows,
        "upsert into latest_quotes",
    )
    .await
}
