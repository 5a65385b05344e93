//! A test database set up like a Supabase project (`../shared/supabase.md` §7): the API roles,
//! a non-superuser owner that runs the migrations and the service, the `supabase_realtime`
//! publication owned by it, and a stub `realtime.send` that records each call in
//! `realtime.send_calls`.

use super::{TestPostgres, TestkitError};

/// The owner role the service connects as (NOSUPERUSER, like `postgres` on Supabase).
pub const OWNER: &str = "app_owner";

/// URLs of a Supabase-like database.
#[derive(Debug, Clone)]
pub struct SupabaseLike {
    pub database: String,
    /// The service's `DATABASE_URL`: the non-superuser owner.
    pub owner_url: String,
    /// The bootstrap superuser (test assertions, replication slots).
    pub superuser_url: String,
}

/// Creates `database` with Supabase's roles, grants, publication and a `realtime.send` stub.
/// With `legacy_default_grants`, tables the owner creates get ALL for the API roles by
/// default, as on projects from before the 2026 grant change: the migrations must revoke.
pub fn prepare(
    pg: &TestPostgres,
    database: &str,
    legacy_default_grants: bool,
) -> Result<SupabaseLike, TestkitError> {
    // Roles are cluster-wide: create them once.
    pg.psql(
        "postgres",
        r#"
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
            CREATE ROLE anon NOLOGIN;
            CREATE ROLE authenticated NOLOGIN;
            CREATE ROLE service_role NOLOGIN BYPASSRLS;
            CREATE ROLE authenticator LOGIN NOINHERIT;
            GRANT anon, authenticated, service_role TO authenticator;
            ALTER ROLE anon SET statement_timeout = '3s';
            ALTER ROLE authenticated SET statement_timeout = '8s';
            ALTER ROLE authenticator SET statement_timeout = '8s';
            ALTER ROLE authenticator SET lock_timeout = '8s';
            CREATE ROLE app_owner LOGIN NOSUPERUSER CREATEROLE REPLICATION BYPASSRLS;
            GRANT anon, authenticated, service_role TO app_owner;
          END IF;
        END $$;
        "#,
    )?;
    let superuser_url = pg.create_database(database)?;
    let mut setup = format!(
        r#"
        GRANT CREATE ON DATABASE "{database}" TO app_owner;
        GRANT USAGE, CREATE ON SCHEMA public TO app_owner;
        GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
        CREATE SCHEMA IF NOT EXISTS realtime;
        CREATE TABLE realtime.send_calls (
          id        bigint generated always as identity primary key,
          called_at timestamptz not null default clock_timestamp(),
          topic     text not null,
          event     text not null,
          payload   jsonb not null,
          private   boolean not null
        );
        CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean default true)
        RETURNS void LANGUAGE plpgsql AS $f$
        BEGIN
          PERFORM set_config('realtime.topic', send.topic, true);
          INSERT INTO realtime.send_calls (topic, event, payload, private)
          VALUES (send.topic, send.event, send.payload, send.private);
        EXCEPTION WHEN others THEN
          RAISE WARNING 'realtime.send (stub) failed: %', sqlerrm;
        END
        $f$;
        GRANT USAGE ON SCHEMA realtime TO anon, authenticated, service_role, app_owner;
        GRANT INSERT ON realtime.send_calls TO service_role, app_owner;
        SET ROLE app_owner;
        CREATE PUBLICATION supabase_realtime;
        RESET ROLE;
        "#
    );
    if legacy_default_grants {
        setup.push_str(
            "ALTER DEFAULT PRIVILEGES FOR ROLE app_owner IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;\n",
        );
    }
    pg.psql(database, &setup)?;
    Ok(SupabaseLike {
        database: database.to_string(),
        owner_url: format!("postgres://{OWNER}@127.0.0.1:{}/{database}", pg.port()),
        superuser_url,
    })
}
