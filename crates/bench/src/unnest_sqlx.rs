//! The sink's `UNNEST` statements bound through sqlx, for the strategy comparison of the
//! ingest bench (the service itself sends them pipelined on tokio-postgres). The SQL comes
//! from the service's column lists, so both measure the same statements.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Postgres, Transaction};

use market_streamer::db::SinkError;
use market_streamer::db::columns::{EQUITY_DATA, LATEST_QUOTES, TableSpec, Ty, Value};
use market_streamer::db::postgres::insert::unnest_sql;
use market_streamer::rows::{Batch, EquityRow};

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds one array per column of `spec`, in column order.
fn bind_columns<'q, R: 'static>(
    mut query: PgQuery<'q>,
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'q R> + Clone,
) -> PgQuery<'q> {
    for column in &spec.columns {
        let values = rows.clone().map(column.get);
        query = match column.ty {
            Ty::Text => query.bind(
                values
                    .map(|v| if let Value::Text(t) = v { t } else { None })
                    .collect::<Vec<Option<&str>>>(),
            ),
            Ty::Time => query.bind(
                values
                    .map(|v| if let Value::Time(t) = v { t } else { None })
                    .collect::<Vec<Option<DateTime<Utc>>>>(),
            ),
            Ty::Date => query.bind(
                values
                    .map(|v| if let Value::Date(d) = v { d } else { None })
                    .collect::<Vec<Option<NaiveDate>>>(),
            ),
            Ty::Int4 => query.bind(
                values
                    .map(|v| if let Value::Int4(n) = v { n } else { None })
                    .collect::<Vec<Option<i32>>>(),
            ),
            Ty::Int8 => query.bind(
                values
                    .map(|v| if let Value::Int8(n) = v { n } else { None })
                    .collect::<Vec<Option<i64>>>(),
            ),
            Ty::Float8 => query.bind(
                values
                    .map(|v| if let Value::Float8(x) = v { x } else { None })
                    .collect::<Vec<Option<f64>>>(),
            ),
        };
    }
    query
}

async fn write_rows<'q, R: 'static>(
    tx: &mut Transaction<'_, Postgres>,
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'q R> + Clone,
    action: &str,
) -> Result<u64, SinkError> {
    let sql = unnest_sql(spec);
    let query = bind_columns(sqlx::query(sqlx::AssertSqlSafe(sql)), spec, rows);
    let result = query
        .execute(&mut **tx)
        .await
        .map_err(|e| SinkError::new(action, e))?;
    Ok(result.rows_affected())
}

/// The sink's `equity_data` insert.
pub async fn insert_equities(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
) -> Result<u64, SinkError> {
    if batch.equities.is_empty() {
        return Ok(0);
    }
    write_rows(
        tx,
        &EQUITY_DATA,
        batch.equities.iter(),
        "insert into equity_data",
    )
    .await
}

/// The sink's `latest_quotes` upsert.
pub async fn upsert_latest_quotes(
    tx: &mut Transaction<'_, Postgres>,
    latest: &[&EquityRow],
) -> Result<u64, SinkError> {
    if latest.is_empty() {
        return Ok(0);
    }
    write_rows(
        tx,
        &LATEST_QUOTES,
        latest.iter().copied(),
        "upsert into latest_quotes",
    )
    .await
}
