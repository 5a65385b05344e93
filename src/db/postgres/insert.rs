//! The batch statements and the pipelined flush.
//!
//! One `INSERT ... SELECT FROM UNNEST(arrays)` per table, whatever the batch size, generated
//! from the table's column list ([`crate::db::columns`]). Quotes use `ON CONFLICT DO
//! NOTHING`; candles are upserted; `latest_quotes` keeps the newest merged quote per ticker.
//!
//! A flush sends `BEGIN`, every table's statement and `COMMIT` together on one tokio-postgres
//! connection (Realtime is sent at its own cadence, after the commit:
//! [`super::live_cadence`]): the requests are queued before any answer is
//! awaited, so they leave in one write and the flush costs one network round trip plus the
//! server's time. The statements are prepared once per connection ([`Prepared`]), and their
//! parameter types are checked against the column lists then, so no value can fail to encode
//! on the client after `BEGIN` went out (which would let `COMMIT` commit a partial batch).
//!
//! Exactly once: right after `BEGIN` the flush records the batch's id in `batch_ledger`. A
//! batch already committed (an attempt whose answer was lost, or a spool replayed after a
//! crash) fails that insert with `unique_violation`, which aborts the transaction before any
//! row is touched; the flush reports it as already committed.
//!
//! Large batches ([`COPY_MIN_ROWS`] quotes or more of a table) go into the tick tables by
//! binary `COPY` ([`super::copy`]): the `COPY` has to wait for the server's go-ahead, so such
//! a flush costs two round trips (three with both tick tables), but the server loads rows
//! several times faster than an `INSERT ... ON CONFLICT`. `COPY` cannot skip rows already
//! stored under their natural key (the same recording replayed twice): when it hits one, the
//! batch is written again with the conflict-tolerant `UNNEST` insert.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::SinkExt;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Statement};

use super::copy;

use crate::db::SinkError;
use crate::db::columns::{
    ACCOUNT_ACTIVITY, BOOK_SNAPSHOTS, EQUITY_BARS, EQUITY_DATA, FOREX_DATA, FUTURES_BARS,
    FUTURES_DATA, FUTURES_OPTION_DATA, LATEST_QUOTES, OPTION_DATA, SCREENER_SNAPSHOTS, TableSpec,
    Ty, Value,
};
use crate::db::error::DbError;
use crate::rows::{Batch, EquityRow, FuturesBarRow};

/// `INSERT INTO t (cols) SELECT * FROM UNNEST($1::type[], …) ON CONFLICT …`; a table with
/// JSON columns selects `c1, …, cN::jsonb` from the named `UNNEST` columns instead (JSON is
/// bound as text).
pub fn unnest_sql<R>(spec: &TableSpec<R>) -> String {
    let params: Vec<String> = spec
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.ty.pg_array()))
        .collect();
    let select = if spec.columns.iter().any(|c| c.ty == Ty::Json) {
        let (names, casts): (Vec<String>, Vec<String>) = spec
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cast = if c.ty == Ty::Json { "::jsonb" } else { "" };
                (format!("c{}", i + 1), format!("c{}{cast}", i + 1))
            })
            .unzip();
        format!(
            "SELECT {} FROM UNNEST({}) AS u({})",
            casts.join(", "),
            params.join(", "),
            names.join(", ")
        )
    } else {
        format!("SELECT * FROM UNNEST({})", params.join(", "))
    };
    format!(
        "INSERT INTO {} {select} {}",
        spec.insert_target(),
        spec.conflict_clause("now()")
    )
}

static EQUITY_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&EQUITY_DATA));
static OPTION_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&OPTION_DATA));
static EQUITY_BARS_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&EQUITY_BARS));
pub(crate) static LATEST_QUOTES_SQL: LazyLock<String> =
    LazyLock::new(|| unnest_sql(&LATEST_QUOTES));
static FUTURES_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&FUTURES_DATA));
static FUTURES_OPTION_DATA_SQL: LazyLock<String> =
    LazyLock::new(|| unnest_sql(&FUTURES_OPTION_DATA));
static FOREX_DATA_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&FOREX_DATA));
static FUTURES_BARS_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&FUTURES_BARS));
static BOOK_SNAPSHOTS_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&BOOK_SNAPSHOTS));
static SCREENER_SNAPSHOTS_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&SCREENER_SNAPSHOTS));
static ACCOUNT_ACTIVITY_SQL: LazyLock<String> = LazyLock::new(|| unnest_sql(&ACCOUNT_ACTIVITY));

/// The ledger entry every flush makes right after `BEGIN`.
pub const LEDGER_SQL: &str = "INSERT INTO batch_ledger (batch_id, row_count) VALUES ($1, $2)";

/// A tick table with at least this many rows in a batch is written by binary `COPY`
/// (two round trips, fastest per row); smaller ones by `UNNEST` (one round trip).
pub const COPY_MIN_ROWS: usize = 1000;

static COPY_EQUITY_DATA_SQL: LazyLock<String> = LazyLock::new(|| copy::copy_sql(&EQUITY_DATA));
static COPY_OPTION_DATA_SQL: LazyLock<String> = LazyLock::new(|| copy::copy_sql(&OPTION_DATA));

/// The PostgreSQL array type tokio-postgres binds for a column of type `ty`.
pub(crate) fn array_type(ty: Ty) -> Type {
    match ty {
        Ty::Text => Type::TEXT_ARRAY,
        Ty::Time => Type::TIMESTAMPTZ_ARRAY,
        Ty::Date => Type::DATE_ARRAY,
        Ty::Int4 => Type::INT4_ARRAY,
        Ty::Int8 => Type::INT8_ARRAY,
        Ty::Float8 => Type::FLOAT8_ARRAY,
        // JSON goes as text and is cast in the statement ([`unnest_sql`]).
        Ty::Json => Type::TEXT_ARRAY,
        Ty::Bool => Type::BOOL_ARRAY,
    }
}

/// The inserts of the futures, forex, book, screener and account activity tables (always by
/// `UNNEST`: their batches are small).
struct MarketStatements {
    futures_data: Statement,
    futures_option_data: Statement,
    forex_data: Statement,
    futures_bars: Statement,
    book_snapshots: Statement,
    screener_snapshots: Statement,
    account_activity: Statement,
}

impl MarketStatements {
    /// Prepares them together (one round trip with the rest of [`Prepared::new`]) and checks
    /// their parameter types.
    async fn new(client: &Client) -> Result<Self, SinkError> {
        let prepare = |what: &'static str, sql: &'static str| async move {
            client.prepare(sql).await.map_err(|e| {
                SinkError::new(
                    format!("prepare the {what} insert (is the schema migrated?)"),
                    e,
                )
            })
        };
        let (
            futures_data,
            futures_option_data,
            forex_data,
            futures_bars,
            book_snapshots,
            screener_snapshots,
            account_activity,
        ) = futures::try_join!(
            prepare("futures_data", &FUTURES_DATA_SQL),
            prepare("futures_option_data", &FUTURES_OPTION_DATA_SQL),
            prepare("forex_data", &FOREX_DATA_SQL),
            prepare("futures_bars", &FUTURES_BARS_SQL),
            prepare("book_snapshots", &BOOK_SNAPSHOTS_SQL),
            prepare("screener_snapshots", &SCREENER_SNAPSHOTS_SQL),
            prepare("account_activity", &ACCOUNT_ACTIVITY_SQL),
        )?;
        check_params(&futures_data, &FUTURES_DATA)?;
        check_params(&futures_option_data, &FUTURES_OPTION_DATA)?;
        check_params(&forex_data, &FOREX_DATA)?;
        check_params(&futures_bars, &FUTURES_BARS)?;
        check_params(&book_snapshots, &BOOK_SNAPSHOTS)?;
        check_params(&screener_snapshots, &SCREENER_SNAPSHOTS)?;
        check_params(&account_activity, &ACCOUNT_ACTIVITY)?;
        Ok(Self {
            futures_data,
            futures_option_data,
            forex_data,
            futures_bars,
            book_snapshots,
            screener_snapshots,
            account_activity,
        })
    }

    /// The steps writing the batch's rows of these tables (none for an empty table).
    fn steps<'a>(&self, batch: &'a Batch, futures_bars: &'a [&'a FuturesBarRow]) -> Vec<Step<'a>> {
        fn step<'a, R: 'static>(
            action: &'static str,
            role: Role,
            statement: &Statement,
            spec: &TableSpec<R>,
            rows: impl Iterator<Item = &'a R> + Clone,
        ) -> Step<'a> {
            Step {
                action,
                role,
                statement: statement.clone(),
                params: column_arrays(spec, rows),
            }
        }
        let mut steps = Vec::new();
        if !batch.futures.is_empty() {
            steps.push(step(
                "insert into futures_data",
                Role::Quotes,
                &self.futures_data,
                &FUTURES_DATA,
                batch.futures.iter(),
            ));
        }
        if !batch.futures_options.is_empty() {
            steps.push(step(
                "insert into futures_option_data",
                Role::Quotes,
                &self.futures_option_data,
                &FUTURES_OPTION_DATA,
                batch.futures_options.iter(),
            ));
        }
        if !batch.forex.is_empty() {
            steps.push(step(
                "insert into forex_data",
                Role::Quotes,
                &self.forex_data,
                &FOREX_DATA,
                batch.forex.iter(),
            ));
        }
        if !futures_bars.is_empty() {
            steps.push(step(
                "upsert into futures_bars",
                Role::Plain,
                &self.futures_bars,
                &FUTURES_BARS,
                futures_bars.iter().copied(),
            ));
        }
        if !batch.books.is_empty() {
            steps.push(step(
                "insert into book_snapshots",
                Role::Quotes,
                &self.book_snapshots,
                &BOOK_SNAPSHOTS,
                batch.books.iter(),
            ));
        }
        if !batch.screeners.is_empty() {
            steps.push(step(
                "insert into screener_snapshots",
                Role::Quotes,
                &self.screener_snapshots,
                &SCREENER_SNAPSHOTS,
                batch.screeners.iter(),
            ));
        }
        if !batch.account_activity.is_empty() {
            steps.push(step(
                "insert into account_activity",
                Role::Quotes,
                &self.account_activity,
                &ACCOUNT_ACTIVITY,
                batch.account_activity.iter(),
            ));
        }
        steps
    }
}

/// The statements of a flush, prepared on one connection.
pub struct Prepared {
    begin: Statement,
    commit: Statement,
    rollback: Statement,
    ledger: Statement,
    /// `None` when the table's column types differ from the column list (then `UNNEST`).
    copy_equity_data: Option<Statement>,
    copy_option_data: Option<Statement>,
    equity_data: Statement,
    option_data: Statement,
    equity_bars: Statement,
    latest_quotes: Statement,
    market: MarketStatements,
    /// Set when a flush left the connection out of step (a `COPY` that failed to start):
    /// the caller drops the connection.
    pub unusable: bool,
}

impl Prepared {
    /// Prepares every statement of a flush in one round trip and checks their parameter types
    /// (and, for `COPY`, the tables' column types).
    pub async fn new(client: &Client) -> Result<Self, SinkError> {
        let prepare = |what: &'static str, sql: &'static str| async move {
            client
                .prepare(sql)
                .await
                .map_err(|e| SinkError::new(format!("prepare the {what} statement"), e))
        };
        let ledger = async {
            client
                .prepare_typed(LEDGER_SQL, &[Type::INT8, Type::INT4])
                .await
                .map_err(|e| {
                    SinkError::new(
                        "prepare the batch_ledger insert (is the schema migrated?)",
                        e,
                    )
                })
        };
        let (
            (begin, commit, rollback, ledger),
            (equity_data, option_data, equity_bars, latest_quotes),
            (copy_equity_data, copy_option_data),
            market,
        ) = futures::try_join!(
            futures::future::try_join4(
                prepare("BEGIN", "BEGIN"),
                prepare("COMMIT", "COMMIT"),
                prepare("ROLLBACK", "ROLLBACK"),
                ledger,
            ),
            futures::future::try_join4(
                prepare("equity_data", &EQUITY_DATA_SQL),
                prepare("option_data", &OPTION_DATA_SQL),
                prepare("equity_bars", &EQUITY_BARS_SQL),
                prepare("latest_quotes", &LATEST_QUOTES_SQL),
            ),
            futures::future::try_join(
                prepare_copy(client, &EQUITY_DATA, &COPY_EQUITY_DATA_SQL),
                prepare_copy(client, &OPTION_DATA, &COPY_OPTION_DATA_SQL),
            ),
            MarketStatements::new(client),
        )?;
        check_params(&equity_data, &EQUITY_DATA)?;
        check_params(&option_data, &OPTION_DATA)?;
        check_params(&equity_bars, &EQUITY_BARS)?;
        check_params(&latest_quotes, &LATEST_QUOTES)?;
        Ok(Self {
            begin,
            commit,
            rollback,
            ledger,
            copy_equity_data,
            copy_option_data,
            equity_data,
            option_data,
            equity_bars,
            latest_quotes,
            market,
            unusable: false,
        })
    }
}

/// Prepares a table's binary `COPY` after checking its column types; `None` (with a warning)
/// when they differ from the column list, so the table is written by `UNNEST`.
async fn prepare_copy<R>(
    client: &Client,
    spec: &TableSpec<R>,
    sql: &'static str,
) -> Result<Option<Statement>, SinkError> {
    let (types, statement) = futures::try_join!(
        async {
            client
                .query(copy::TYPES_SQL, &[&spec.name])
                .await
                .map_err(|e| SinkError::new(format!("read the column types of {}", spec.name), e))
        },
        async {
            client
                .prepare(sql)
                .await
                .map_err(|e| SinkError::new(format!("prepare the COPY into {}", spec.name), e))
        },
    )?;
    let mut actual = Vec::with_capacity(types.len());
    for row in &types {
        let name: String = row
            .try_get(0)
            .map_err(|e| SinkError::new("read a column name", e))?;
        let ty: String = row
            .try_get(1)
            .map_err(|e| SinkError::new("read a column type", e))?;
        actual.push((name, ty));
    }
    match copy::check_types(spec, &actual) {
        Ok(()) => Ok(Some(statement)),
        Err(why) => {
            tracing::warn!(table = spec.name, mismatch = %why, "binary COPY disabled for this table (column types differ from what the writer sends; rerun the migrations or restore the column types): it is written with INSERT instead");
            Ok(None)
        }
    }
}

/// The server must expect exactly the array types the column list binds.
pub(crate) fn check_params<R>(statement: &Statement, spec: &TableSpec<R>) -> Result<(), SinkError> {
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

/// One bound value of a statement.
pub(crate) type Param<'a> = Box<dyn ToSql + Sync + Send + 'a>;

/// One array per column of `spec`, in column order.
pub(crate) fn column_arrays<'a, R: 'static>(
    spec: &TableSpec<R>,
    rows: impl Iterator<Item = &'a R> + Clone,
) -> Vec<Param<'a>> {
    spec.columns
        .iter()
        .map(|column| {
            let get = column.get;
            let values = rows.clone().map(get);
            // One typed array of the values matching `$pattern` (`x in Value::Int8(x)`). A
            // value of another variant than the column's type cannot happen (a test checks
            // every column list); it would be stored as NULL.
            macro_rules! array {
                ($t:ty, $x:ident in $($pattern:pat_param)|+) => {
                    Box::new(
                        values
                            .map(|v| match v {
                                $($pattern)|+ => $x,
                                _ => None,
                            })
                            .collect::<Vec<Option<$t>>>(),
                    )
                };
            }
            let array: Param<'a> = match column.ty {
                Ty::Text | Ty::Json => array!(&'a str, x in Value::Text(x) | Value::Json(x)),
                Ty::Time => array!(DateTime<Utc>, x in Value::Time(x)),
                Ty::Date => array!(NaiveDate, x in Value::Date(x)),
                Ty::Int4 => array!(i32, x in Value::Int4(x)),
                Ty::Int8 => array!(i64, x in Value::Int8(x)),
                Ty::Float8 => array!(f64, x in Value::Float8(x)),
                Ty::Bool => array!(bool, x in Value::Bool(x)),
            };
            array
        })
        .collect()
}

/// What a statement of a flush is, for its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `BEGIN`, candles, `latest_quotes`, `COMMIT`.
    Plain,
    /// The `batch_ledger` insert: `unique_violation` means the batch is already committed.
    Ledger,
    /// A tick insert: its affected rows count as newly inserted ([`Flushed::inserted`]).
    Quotes,
    /// The end of a tick table's `COPY`: `unique_violation` means a row is already stored.
    Copy,
}

/// One statement of a flush: what it is, for errors, and its bound values.
struct Step<'a> {
    action: &'static str,
    role: Role,
    statement: Statement,
    params: Vec<Param<'a>>,
}

impl<'a> Step<'a> {
    fn plain(action: &'static str, statement: &Statement) -> Self {
        Self {
            action,
            role: Role::Plain,
            statement: statement.clone(),
            params: Vec::new(),
        }
    }
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Quote rows newly inserted.
    pub inserted: u64,
    /// The ledger already held the batch: an earlier attempt committed it, nothing was
    /// written now.
    pub already_committed: bool,
    /// Quote rows written by binary `COPY` (part of `inserted`).
    pub copied_rows: u64,
}

impl Flushed {
    const ALREADY_COMMITTED: Self = Self {
        inserted: 0,
        already_committed: true,
        copied_rows: 0,
    };
}

/// How a flush attempt failed.
enum Failure {
    /// A `COPY` hit a row already stored under its natural key: the transaction is rolled
    /// back, write the batch again with `UNNEST`.
    CopyConflict(SinkError),
    Other(SinkError),
}

/// Writes `batch` in one transaction: by binary `COPY` for large tick tables, else all by
/// `UNNEST` in one pipelined round trip. On error the server has rolled the transaction back
/// (a failed statement aborts it and `COMMIT` then rolls back) unless the connection itself
/// failed, in which case the caller drops the connection. `latest_quotes` is upserted unless
/// `latest_quotes` is false (the live cadence keeps it for postgres_changes).
pub async fn flush(
    client: &Client,
    prepared: &mut Prepared,
    batch: &Batch,
    latest_quotes: bool,
) -> Result<Flushed, SinkError> {
    let copy_equities =
        batch.equities.len() >= COPY_MIN_ROWS && prepared.copy_equity_data.is_some();
    let copy_options = batch.options.len() >= COPY_MIN_ROWS && prepared.copy_option_data.is_some();
    if copy_equities || copy_options {
        match flush_once(
            client,
            prepared,
            batch,
            latest_quotes,
            (copy_equities, copy_options),
        )
        .await
        {
            Ok(done) => return Ok(done),
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::CopyConflict(e)) => {
                tracing::debug!(batch = %batch.id, error = %e, "COPY found rows already stored (a recording replayed?); writing the batch with INSERT ... ON CONFLICT DO NOTHING");
            }
        }
    }
    match flush_once(client, prepared, batch, latest_quotes, (false, false)).await {
        Ok(done) => Ok(done),
        Err(Failure::Other(e) | Failure::CopyConflict(e)) => Err(e),
    }
}

type Pending<'c> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'c>>;

/// One attempt: `BEGIN` and the ledger entry, then each `COPY` (one round trip each), then
/// the remaining statements and `COMMIT` pipelined together.
async fn flush_once(
    client: &Client,
    prepared: &mut Prepared,
    batch: &Batch,
    latest_quotes: bool,
    (copy_equities, copy_options): (bool, bool),
) -> Result<Flushed, Failure> {
    let bars = batch.latest_bars();
    let futures_bars = batch.latest_futures_bars();
    let latest: Vec<std::borrow::Cow<'_, EquityRow>> = if latest_quotes {
        batch.latest_quotes()
    } else {
        Vec::new()
    };

    let id = batch.id.get();
    let row_count = i32::try_from(batch.len()).unwrap_or(i32::MAX);
    let mut head: Vec<Step<'_>> = vec![
        Step::plain("begin transaction", &prepared.begin),
        Step {
            action: "record the batch in batch_ledger",
            role: Role::Ledger,
            statement: prepared.ledger.clone(),
            params: vec![Box::new(id), Box::new(row_count)],
        },
    ];
    // The tables that go by COPY, in order, with their data.
    let mut copies: Vec<(&'static str, Statement, Bytes)> = Vec::new();
    let mut steps: Vec<Step<'_>> = Vec::with_capacity(6);
    if copy_equities && let Some(statement) = &prepared.copy_equity_data {
        copies.push((
            "COPY into equity_data",
            statement.clone(),
            Bytes::from(copy::encode(&EQUITY_DATA, batch.equities.iter())),
        ));
    } else if !batch.equities.is_empty() {
        steps.push(Step {
            action: "insert into equity_data",
            role: Role::Quotes,
            statement: prepared.equity_data.clone(),
            params: column_arrays(&EQUITY_DATA, batch.equities.iter()),
        });
    }
    if copy_options && let Some(statement) = &prepared.copy_option_data {
        copies.push((
            "COPY into option_data",
            statement.clone(),
            Bytes::from(copy::encode(&OPTION_DATA, batch.options.iter())),
        ));
    } else if !batch.options.is_empty() {
        steps.push(Step {
            action: "insert into option_data",
            role: Role::Quotes,
            statement: prepared.option_data.clone(),
            params: column_arrays(&OPTION_DATA, batch.options.iter()),
        });
    }
    if !bars.is_empty() {
        steps.push(Step {
            action: "upsert into equity_bars",
            role: Role::Plain,
            statement: prepared.equity_bars.clone(),
            params: column_arrays(&EQUITY_BARS, bars.iter().copied()),
        });
    }
    steps.extend(prepared.market.steps(batch, &futures_bars));
    if !latest.is_empty() {
        // An older row never overwrites a newer one (a retried batch may arrive after a
        // later one).
        steps.push(Step {
            action: "upsert into latest_quotes",
            role: Role::Plain,
            statement: prepared.latest_quotes.clone(),
            params: column_arrays(&LATEST_QUOTES, latest.iter().map(AsRef::as_ref)),
        });
    }
    steps.push(Step::plain("commit", &prepared.commit));

    let mut done = Flushed::default();
    let mut results = Results::default();
    if copies.is_empty() {
        // Everything in one round trip.
        head.append(&mut steps);
        let outcome = run_pipelined(client, &head, Vec::new()).await;
        results.collect(&head, outcome.into_iter(), &mut done);
        return results.finish(done);
    }

    // Round trip 1: BEGIN, the ledger entry and the start of the first COPY.
    let mut copies = copies.into_iter();
    let Some((mut action, statement, mut data)) = copies.next() else {
        return Err(Failure::Other(SinkError::new(
            "plan the flush",
            DbError::Config("no COPY planned; this is a bug, please report it".into()),
        )));
    };
    let (head_results, started) = tokio::join!(
        run_pipelined(client, &head, Vec::new()),
        client.copy_in::<_, Bytes>(&statement),
    );
    results.collect(&head, head_results.into_iter(), &mut done);
    let mut sink = match started {
        Ok(sink) if results.first.is_none() => Box::pin(sink),
        Ok(sink) => {
            // Cannot happen (a failed BEGIN or ledger entry aborts the transaction, so the
            // COPY cannot start); dropping the sink aborts the COPY.
            drop(sink);
            prepared.unusable = true;
            return results.finish(done);
        }
        Err(e) => {
            // A COPY that fails to start leaves an extra answer on the connection
            // (tokio-postgres ends it with CopyFail and Sync), so the connection is not reused:
            // dropping it rolls the transaction back. Only on rare paths: a batch already
            // committed, a failed BEGIN, or a COPY the server refuses.
            prepared.unusable = true;
            results.fail(action, Role::Plain, e);
            return results.finish(done);
        }
    };
    // Then per COPY: its data and end, pipelined for the last one with every other
    // statement and COMMIT. A further COPY starts only after the previous one succeeded
    // (one more round trip), so a failed COPY never leaves a started one behind.
    loop {
        if let Err(e) = sink.send(std::mem::take(&mut data)).await {
            results.fail(action, Role::Plain, e);
            return rollback(client, prepared, results).await;
        }
        match copies.next() {
            Some((next_action, next_statement, next_data)) => {
                match sink.as_mut().finish().await {
                    Ok(n) => {
                        done.inserted += n;
                        done.copied_rows += n;
                    }
                    Err(e) => {
                        results.fail(action, Role::Copy, e);
                        return rollback(client, prepared, results).await;
                    }
                }
                match client.copy_in::<_, Bytes>(&next_statement).await {
                    Ok(next) => sink = Box::pin(next),
                    Err(e) => {
                        prepared.unusable = true;
                        results.fail(next_action, Role::Plain, e);
                        return results.finish(done);
                    }
                }
                action = next_action;
                data = next_data;
            }
            None => {
                let finish: Pending<'_> = Box::pin(sink.as_mut().finish());
                let mut outcome = run_pipelined(client, &steps, vec![finish])
                    .await
                    .into_iter();
                match outcome.next() {
                    Some(Ok(n)) => {
                        done.inserted += n;
                        done.copied_rows += n;
                    }
                    Some(Err(e)) => results.fail(action, Role::Copy, e),
                    None => {}
                }
                // COMMIT was in the pipeline: after a failure it rolled back.
                results.collect(&steps, outcome, &mut done);
                return results.finish(done);
            }
        }
    }
}

/// Sends `before` (already started futures, polled first) and then `steps`, all polled
/// together: each request is queued on the connection before any answer is awaited, in this
/// order, so they leave in one write. The results come back in the same order.
async fn run_pipelined<'c>(
    client: &'c Client,
    steps: &'c [Step<'_>],
    before: Vec<Pending<'c>>,
) -> Vec<Result<u64, tokio_postgres::Error>> {
    let mut futures = before;
    for step in steps {
        let params: Vec<&(dyn ToSql + Sync)> = step
            .params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let statement = &step.statement;
        futures.push(Box::pin(
            async move { client.execute(statement, &params).await },
        ));
    }
    futures::future::join_all(futures).await
}

/// The first failure of an attempt (later ones are "transaction is aborted").
#[derive(Default)]
struct Results {
    first: Option<(Role, SinkError, Option<SqlState>)>,
}

impl Results {
    fn fail(&mut self, action: &'static str, role: Role, e: tokio_postgres::Error) {
        if self.first.is_none() {
            let code = e.code().cloned();
            self.first = Some((role, SinkError::new(action, e), code));
        }
    }

    fn collect(
        &mut self,
        steps: &[Step<'_>],
        results: impl Iterator<Item = Result<u64, tokio_postgres::Error>>,
        done: &mut Flushed,
    ) {
        for (step, result) in steps.iter().zip(results) {
            match result {
                Ok(n) if step.role == Role::Quotes => done.inserted += n,
                Ok(_) => {}
                Err(e) => self.fail(step.action, step.role, e),
            }
        }
    }

    /// The attempt's outcome from its first failure, if any.
    fn finish(self, done: Flushed) -> Result<Flushed, Failure> {
        match self.first {
            None => Ok(done),
            Some((Role::Ledger, _, Some(SqlState::UNIQUE_VIOLATION))) => {
                Ok(Flushed::ALREADY_COMMITTED)
            }
            Some((Role::Copy, e, Some(SqlState::UNIQUE_VIOLATION))) => {
                Err(Failure::CopyConflict(e))
            }
            Some((_, e, _)) => Err(Failure::Other(e)),
        }
    }
}

/// Ends an attempt that failed before `COMMIT` was sent: `ROLLBACK` (one more round trip,
/// on failures only), then the attempt's outcome.
async fn rollback(
    client: &Client,
    prepared: &Prepared,
    results: Results,
) -> Result<Flushed, Failure> {
    if let Err(e) = client.execute(&prepared.rollback, &[]).await {
        // The connection is unusable; its error is the one to act on.
        return Err(Failure::Other(SinkError::new(
            "roll back a failed flush",
            e,
        )));
    }
    results.finish(Flushed::default())
}
