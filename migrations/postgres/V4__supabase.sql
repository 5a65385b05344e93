-- Supabase contract: daily range partitions for tick tables, latest_quotes, explicit grants
-- and read-only RLS policies. Runs as a non-superuser owner (as `postgres` on Supabase) and on
-- plain PostgreSQL, where the Supabase roles may not exist (role-specific parts are skipped).

-- Helper functions live in a schema the Data API does not expose; nobody else may call them.
CREATE SCHEMA IF NOT EXISTS market_admin;
REVOKE ALL ON SCHEMA market_admin FROM PUBLIC;

-- Grants API roles what a market table allows: SELECT for anon/authenticated, read-write for
-- service_role (server-side tools), nothing else. Skips roles that do not exist.
CREATE OR REPLACE FUNCTION market_admin.grant_read_only(tbl regclass)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        EXECUTE format('REVOKE ALL ON %s FROM anon', tbl);
        EXECUTE format('GRANT SELECT ON %s TO anon', tbl);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        EXECUTE format('REVOKE ALL ON %s FROM authenticated', tbl);
        EXECUTE format('GRANT SELECT ON %s TO authenticated', tbl);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        EXECUTE format('REVOKE ALL ON %s FROM service_role', tbl);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO service_role', tbl);
    END IF;
END
$fn$;

-- Takes every API role's access away (tables that must only be read through their parent,
-- or not at all).
CREATE OR REPLACE FUNCTION market_admin.revoke_api_access(tbl regclass)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE r text;
BEGIN
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    FOREACH r IN ARRAY ARRAY['anon', 'authenticated', 'service_role', 'authenticator'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, r);
        END IF;
    END LOOP;
END
$fn$;

-- RLS on, with a read-only policy for the API roles that exist.
CREATE OR REPLACE FUNCTION market_admin.read_only_policy(tbl regclass)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE roles text;
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    SELECT string_agg(quote_ident(rolname), ', ') INTO roles
    FROM pg_roles WHERE rolname IN ('anon', 'authenticated');
    IF roles IS NOT NULL THEN
        EXECUTE format('DROP POLICY IF EXISTS market_data_read ON %s', tbl);
        EXECUTE format('CREATE POLICY market_data_read ON %s FOR SELECT TO %s USING (true)', tbl, roles);
    END IF;
END
$fn$;

-- Creates the UTC-day partition `<parent>_pYYYYMMDD` if missing. Rows of that day that landed in
-- the DEFAULT partition move into it. Partitions get no API grants and RLS without policies:
-- the API reads through the parent, whose grants and policies apply. Returns true if created.
CREATE OR REPLACE FUNCTION market_admin.ensure_day_partition(parent regclass, day date)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    parent_name text := (SELECT relname FROM pg_class WHERE oid = parent);
    part_name   text := format('%s_p%s', parent_name, to_char(day, 'YYYYMMDD'));
    lo          timestamptz := day::timestamp AT TIME ZONE 'UTC';
    hi          timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
    default_part regclass;
BEGIN
    IF to_regclass(format('public.%I', part_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('market_admin.partition:' || part_name));
    IF to_regclass(format('public.%I', part_name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part_name, parent);
    SELECT c.oid::regclass INTO default_part
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
    IF default_part IS NOT NULL THEN
        EXECUTE format(
            'WITH moved AS (DELETE FROM %s WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *) '
            'INSERT INTO public.%I SELECT * FROM moved', default_part, part_name) USING lo, hi;
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION public.%I FOR VALUES FROM (%L) TO (%L)',
                   parent, part_name, lo, hi);
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', part_name);
    PERFORM market_admin.revoke_api_access(format('public.%I', part_name)::regclass);
    RETURN true;
END
$fn$;

-- Drops the day partitions of `parent` whose whole day is before `cutoff` (and deletes such
-- rows from the DEFAULT partition). Returns the number of partitions dropped.
CREATE OR REPLACE FUNCTION market_admin.drop_partitions_before(parent regclass, cutoff date)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.oid::regclass AS rel, c.relname,
               pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent
    LOOP
        IF part.is_default THEN
            EXECUTE format('DELETE FROM %s WHERE "timestamp" < $1', part.rel)
                USING cutoff::timestamp AT TIME ZONE 'UTC';
        ELSIF part.relname ~ '_p[0-9]{8}$'
              AND to_date(right(part.relname, 8), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE %s', part.rel);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$;

-- Turns a plain tick table into one range-partitioned by day on "timestamp", keeping its rows.
CREATE OR REPLACE FUNCTION market_admin.partition_by_day(tbl text, pk_columns text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    old_name text := tbl || '_unpartitioned';
    idx record;
    day date;
BEGIN
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', tbl, old_name);
    FOR idx IN SELECT indexrelid::regclass AS rel, c.relname
               FROM pg_index JOIN pg_class c ON c.oid = indexrelid
               WHERE indrelid = format('public.%I', old_name)::regclass
    LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO %I', idx.rel, 'old_' || idx.relname);
    END LOOP;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS) '
                   'PARTITION BY RANGE ("timestamp")', tbl, old_name);
    EXECUTE format('ALTER TABLE public.%I ADD PRIMARY KEY (%s)', tbl, pk_columns);
    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I DEFAULT', tbl || '_default', tbl);
    EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', tbl, old_name);
    FOR day IN EXECUTE format('SELECT DISTINCT ("timestamp" AT TIME ZONE ''UTC'')::date FROM public.%I', old_name) LOOP
        PERFORM market_admin.ensure_day_partition(format('public.%I', tbl)::regclass, day);
    END LOOP;
    EXECUTE format('DROP TABLE public.%I', old_name);
    PERFORM market_admin.revoke_api_access(format('public.%I', tbl || '_default')::regclass);
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', tbl || '_default');
END
$fn$;

SELECT market_admin.partition_by_day('equity_data', 'ticker, "timestamp", seq');
SELECT market_admin.partition_by_day('option_data', 'symbol, "timestamp", seq');
CREATE INDEX IF NOT EXISTS option_data_underlying_idx ON option_data (underlying, "timestamp");

-- One row per equity: the merged quote of its latest update, upserted on every flush. Small,
-- unpartitioned and keyed, so it can be in the supabase_realtime publication.
CREATE TABLE IF NOT EXISTS latest_quotes (
    ticker              text             PRIMARY KEY,
    "timestamp"         timestamptz      NOT NULL,
    price               double precision,
    volume              bigint,
    bid                 double precision,
    ask                 double precision,
    bid_size            bigint,
    ask_size            bigint,
    mark                double precision,
    high                double precision,
    low                 double precision,
    open                double precision,
    close               double precision,
    net_change          double precision,
    net_percent_change  double precision,
    security_status     text,
    updated_at          timestamptz      NOT NULL DEFAULT now()
);

SELECT market_admin.grant_read_only(t::regclass), market_admin.read_only_policy(t::regclass)
FROM unnest(ARRAY['equity_data', 'option_data', 'equity_bars', 'latest_quotes']) AS t;

-- The migration bookkeeping table is nobody else's business. Databases first migrated by
-- sqlx (releases before refinery) have `_sqlx_migrations`; refinery's own history table is
-- covered by V7.
SELECT market_admin.revoke_api_access(t)
FROM (SELECT to_regclass('_sqlx_migrations') AS t) AS sqlx_history
WHERE t IS NOT NULL;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA market_admin FROM PUBLIC;
