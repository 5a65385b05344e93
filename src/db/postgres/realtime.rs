//! Supabase Realtime wiring, per `REALTIME_MODE`.
//!
//! - postgres_changes: `latest_quotes` is put in the `supabase_realtime` publication (created
//!   if missing and allowed); with other modes it is taken out.
//! - broadcast: the live cadence ([`super::live_cadence`]) calls `realtime.send(payload,
//!   'quotes', topic, false)` at most once per `REALTIME_INTERVAL`. Where `realtime.send` does
//!   not exist (plain PostgreSQL) this is logged once and skipped.

use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::db::RealtimeMode;
use crate::db::SinkError;
use crate::db::error::DbError;

/// The publication Supabase Realtime reads.
pub const PUBLICATION: &str = "supabase_realtime";

/// Brings the publication membership of `latest_quotes` in line with the mode and says
/// whether Broadcast can be sent. Problems that only limit Realtime are logged, not fatal.
pub async fn prepare(client: &Client, mode: RealtimeMode) -> Result<bool, SinkError> {
    let flag = async |sql: &str, params: &[(&(dyn tokio_postgres::types::ToSql + Sync), Type)]| {
        client
            .query_typed_one(sql, params)
            .await
            .and_then(|row| row.try_get::<_, bool>(0))
    };
    let publication_exists = flag(
        "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)",
        &[(&PUBLICATION, Type::TEXT)],
    )
    .await
    .map_err(|e| SinkError::new("look up the supabase_realtime publication", e))?;
    let member = flag(
        "SELECT EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = 'public' AND tablename = 'latest_quotes')",
        &[(&PUBLICATION, Type::TEXT)],
    )
    .await
    .map_err(|e| SinkError::new("look up the publication's tables", e))?;

    if mode.postgres_changes() {
        if !publication_exists
            && let Err(e) = client
                .batch_execute("CREATE PUBLICATION supabase_realtime")
                .await
        {
            tracing::warn!(error = %DbError::from(e), "REALTIME_MODE wants postgres_changes but the supabase_realtime publication is missing and cannot be created; create it or grant CREATE on the database");
        }
        if !member {
            match client
                .batch_execute("ALTER PUBLICATION supabase_realtime ADD TABLE public.latest_quotes")
                .await
            {
                Ok(_) => tracing::info!(
                    "latest_quotes added to the supabase_realtime publication (postgres_changes)"
                ),
                Err(e) => {
                    tracing::warn!(error = %DbError::from(e), "cannot add latest_quotes to the supabase_realtime publication; on Supabase, toggle Realtime for latest_quotes in the dashboard or run the migrations as the postgres user")
                }
            }
        }
    } else if member {
        match client
            .batch_execute("ALTER PUBLICATION supabase_realtime DROP TABLE public.latest_quotes")
            .await
        {
            Ok(_) => tracing::info!(
                ?mode,
                "latest_quotes removed from the supabase_realtime publication"
            ),
            Err(e) => {
                tracing::warn!(error = %DbError::from(e), "cannot remove latest_quotes from the supabase_realtime publication")
            }
        }
    }

    if !mode.broadcast() {
        return Ok(false);
    }
    let send_exists = flag(
        "SELECT to_regprocedure('realtime.send(jsonb,text,text,boolean)') IS NOT NULL",
        &[],
    )
    .await
    .map_err(|e| SinkError::new("look up realtime.send", e))?;
    if !send_exists {
        tracing::info!(
            "REALTIME_MODE includes broadcast, but this database has no realtime.send (not Supabase): broadcast skipped"
        );
    }
    Ok(send_exists)
}
