//! The batch statements and the pipelined flush.
//!
//! One `INSERT ... SELECT FROM UNNEST(arrays)` per table, whatever the batch size, generated
//! from the table's column list ([`crate::db::columns`]). Quotes use `ON CONFLICT DO
//! NOTHING`; candles are upserted; `latest_quotes` keeps the newest merged quote per ticker.
//!
//! A flush sends `BEGIN`, every table's statement, `realtime.send` (Broadcast) and `COMMIT`
//! together on one tokio-postgres connection: the requests are queued before any answer is
//! awaited, so they leave in one write and the flush costs one network round trip plus the
//! server's time. The statements are prepared once per connection ([`Prepared`]), and their
//! parameter types are checked against the column lists then, so no value can fail to encode
//! on the client after `BEGIN` went out (which would let `COMMIT` commit a partial batch).

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use crate::db::SinkError;
use crate::db::columns::{
    EQUITY_BARS, EQUITY_DATA, LATEST_QUOTES, OPTION_DATA, TableSpec, Ty, Value,
};
use crate::db::error::DbError;
use crate::rows::{Batch, EquityRow};

/// `INSERT INTO t (cols) SELECT * FROM UNNEST($1::type[], …) ON CONFLICT …`.
pub fn unnest_sql<R>(spec: &TableSpec<R>) -> String {
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

/// The Broadcast call; `realtime.send` turns its own errors into warnings.
pub const REALTIME_SEND_SQL: &str = "SELECT realtime.send($1, $2, $3, false)";

/// The PostgreSQL array type tokio-postgres binds for a column of type `ty`.
fn array_type(ty: Ty) -> Type {
    match ty {
        Ty::Text => Type::TEXT_ARRAY,
        Ty::Time => Type::TIMESTAMPTZ_ARRAY,
        Ty::Date => Type::DATE_ARRAY,
        Ty::Int4 => Type::INT4_ARRAY,
        Ty::Int8 => Type::INT8_ARRAY,
        Ty::Float8 => Type::FLOAT8_ARRAY,
    }
}

/// The statements of a flush, prepared on one connection.
pub struct Prepared {
    begin: Statement,
    commit: Statement,
    equity_data: Statement,
    option_data: Statement,
    equity_bars: Statement,
    latest_quotes: Statement,
    /// Prepared on the first flush that broadcasts.
    realtime_send: Option<Statement>,
}

impl Prepared {
    /// Prepares every statement of a flush in one round trip and checks their parameter types.
    pub async fn new(client: &Client) -> Result<Self, SinkError> {
        let prepare = |what: &'static str, sql: &'static str| async move {
            client
                .prepare(sql)
                .await
                .map_err(|e| SinkError::new(format!("prepare the {what} statement"), e))
        };
        let (begin, commit, equity_data, option_data, equity_bars, latest_quotes) = futures::try_join!(
            prepare("BEGIN", "BEGIN"),
            prepare("COMMIT", "COMMIT"),
            prepare("equity_data", &EQUITY_DATA_SQL),
            prepare("option_data", &OPTION_DATA_SQL),
            prepare("equity_bars", &EQUITY_BARS_SQL),
            prepare("latest_quotes", &LATEST_QUOTES_SQL),
        )?;
        check_params(&equity_data, &EQUITY_DATA)?;
        check_params(&option_data, &OPTION_DATA)?;
        check_params(&equity_bars, &EQUITY_BARS)?;
        check_params(&latest_quotes, &LATEST_QUOTES)?;
        Ok(Self {
            begin,
            commit,
            equity_data,
            option_data,
            equity_bars,
            latest_quotes,
            realtime_send: None,
        })
    }

    /// Prepares `realtime.send` (once per connection).
    async fn realtime_send(&mut self, client: &Client) -> Result<Statement, SinkError> {
        if let Some(s) = &self.realtime_send {
            return Ok(s.clone());
        }
        let s = client
            .prepare_typed(REALTIME_SEND_SQL, &[Type::JSONB, Type::TEXT, Type::TEXT])
            .await
            .map_err(|e| SinkError::new("prepare realtime.send", e))?;
        self.realtime_send = Some(s.clone());
        Ok(s)
    }
}

/// The server must expect exactly the array types the column list binds.
fn check_params<R>(statement: &Statement, spec: &TableSpec<R>) -> Result<(), SinkError> {
    let expected: Vec<Type> = spec.columns.iter().map(|c| array_type(c.ty)).collect();
    if statement.params() == expected.as_slice() {
        return Ok(());
    }
    Err(SinkError::new(
        format!("prepare the {} insert", spec.name),
        DbError::Config(format!(
            "the server expects parameters {:?}, the column list binds {:?}; this is a bug, please report it",
            statement.params(),
            expected
        )),
    ))
}

type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// One array per column of `spec`, in column order.
fn column_arrays<'a, R: 'static>(
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'a R> + Clone,
) -> Vec<Param<'a>> {
    spec.columns
        .iter()
        .map(|column| {
            let get = column.get;
            let values = rows.clone().map(get);
            // A value of another variant than the column's type cannot happen (a test checks
            // every column list); it would be stored as NULL.
            let array: Param<'a> = match column.ty {
                Ty::Text => Box::new(
                    values
                        .map(|v| match v {
                            Value::Text(t) => t,
                            _ => None,
                        })
                        .collect::<Vec<Option<&'a str>>>(),
                ),
                Ty::Time => Box::new(
                    values
                        .map(|v| match v {
                            Value::Time(t) => t,
                            _ => None,
                        })
                        .collect::<Vec<Option<DateTime<Utc>>>>(),
                ),
                Ty::Date => Box::new(
                    values
                        .map(|v| match v {
                            Value::Date(d) => d,
                            _ => None,
                        })
                        .collect::<Vec<Option<NaiveDate>>>(),
                ),
                Ty::Int4 => Box::new(
                    values
                        .map(|v| match v {
                            Value::Int4(n) => n,
                            _ => None,
                        })
                        .collect::<Vec<Option<i32>>>(),
                ),
                Ty::Int8 => Box::new(
                    values
                        .map(|v| match v {
                            Value::Int8(n) => n,
                            _ => None,
                        })
                        .collect::<Vec<Option<i64>>>(),
                ),
                Ty::Float8 => Box::new(
                    values
                        .map(|v| match v {
                            Value::Float8(x) => x,
                            _ => None,
                        })
                        .collect::<Vec<Option<f64>>>(),
                ),
            };
            array
        })
        .collect()
}

/// What to broadcast with a flush: the topic (the payload is built from the batch).
pub struct Broadcast<'a> {
    pub topic: &'a str,
}

/// One statement of a flush: what it is, for errors, and its bound values.
struct Step<'a> {
    action: &'static str,
    /// Its affected rows count as newly inserted quotes ([`Flushed::inserted`]).
    counts_inserted: bool,
    statement: Statement,
    params: Vec<Param<'a>>,
}

/// Quote rows newly inserted by one flush.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub inserted: u64,
}

/// Writes `batch` in one transaction, pipelined: `BEGIN`, the table statements, Broadcast
/// and `COMMIT` go out together and the answers are read once. On error the server has
/// rolled the transaction back (a failed statement aborts it and `COMMIT` then rolls back)
/// unless the connection itself failed, in which case the caller drops the connection.
pub async fn flush(
    client: &Client,
    prepared: &mut Prepared,
    batch: &Batch,
    broadcast: Option<Broadcast<'_>>,
) -> Result<Flushed, SinkError> {
    let bars = batch.latest_bars();
    let latest: Vec<&EquityRow> = batch.latest_equities();
    let send = match &broadcast {
        Some(_) if !latest.is_empty() => Some(prepared.realtime_send(client).await?),
        _ => None,
    };

    let mut steps: Vec<Step<'_>> = Vec::with_capacity(7);
    steps.push(Step {
        action: "begin transaction",
        counts_inserted: false,
        statement: prepared.begin.clone(),
        params: Vec::new(),
    });
    if !batch.equities.is_empty() {
        steps.push(Step {
            action: "insert into equity_data",
            counts_inserted: true,
            statement: prepared.equity_data.clone(),
            params: column_arrays(&EQUITY_DATA, batch.equities.iter()),
        });
    }
    if !batch.options.is_empty() {
        steps.push(Step {
            action: "insert into option_data",
            counts_inserted: true,
            statement: prepared.option_data.clone(),
            params: column_arrays(&OPTION_DATA, batch.options.iter()),
        });
    }
    if !bars.is_empty() {
        steps.push(Step {
            action: "upsert into equity_bars",
            counts_inserted: false,
            statement: prepared.equity_bars.clone(),
            params: column_arrays(&EQUITY_BARS, bars.iter().copied()),
        });
    }
    if !latest.is_empty() {
        // An older row never overwrites a newer one (a retried batch may arrive after a
        // later one).
        steps.push(Step {
            action: "upsert into latest_quotes",
            counts_inserted: false,
            statement: prepared.latest_quotes.clone(),
            params: column_arrays(&LATEST_QUOTES, latest.iter().copied()),
        });
    }
    if let (Some(statement), Some(b)) = (send, &broadcast) {
        steps.push(Step {
            action: "broadcast with realtime.send",
            counts_inserted: false,
            statement,
            params: vec![
                Box::new(crate::db::broadcast::quotes_payload(&latest)),
                Box::new(crate::db::broadcast::QUOTES_EVENT),
                Box::new(b.topic.to_owned()),
            ],
        });
    }
    steps.push(Step {
        action: "commit",
        counts_inserted: false,
        statement: prepared.commit.clone(),
        params: Vec::new(),
    });

    let refs: Vec<Vec<&(dyn ToSql + Sync)>> = steps
        .iter()
        .map(|s| {
            s.params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect()
        })
        .collect();
    // Polled together: each request is queued on the connection before any answer is
    // awaited, in this order, so they leave in one write.
    let results = futures::future::join_all(
        steps
            .iter()
            .zip(&refs)
            .map(|(step, params)| client.execute(&step.statement, params)),
    )
    .await;

    let mut inserted = 0;
    let mut first_error: Option<SinkError> = None;
    for (step, result) in steps.iter().zip(results) {
        match result {
            Ok(n) if step.counts_inserted => inserted += n,
            Ok(_) => {}
            Err(e) => {
                // The first failure is the cause; later ones are "transaction is aborted".
                if first_error.is_none() {
                    first_error = Some(SinkError::new(step.action, e));
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(Flushed { inserted }),
    }
}
