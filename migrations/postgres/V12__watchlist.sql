-- The watchlist (issue 16): symbols the front end adds and removes while the service runs.
-- The service subscribes the union of its configured lists and these rows, applies changes
-- within seconds (LISTEN/NOTIFY from the trigger below, plus a periodic re-read) and writes
-- each row's outcome back: `active`, or `rejected` with the reason.
--
-- Supabase: `anon` reads; `authenticated` users insert rows (only `service` and `symbol`;
-- `added_by` is their user id, `status` starts `pending`) and delete their own rows; the
-- service (the owner) does the rest.

CREATE TABLE IF NOT EXISTS watchlist (
    service     text        NOT NULL,            -- wire name: LEVELONE_EQUITIES, LEVELONE_FUTURES, ...
    symbol      text        NOT NULL,            -- the key, in the service's format
    added_by    uuid,                            -- auth.uid() of who added it (NULL: the owner)
    added_at    timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'active', 'rejected')),
    reason      text,                            -- why it was rejected (or a note)
    status_at   timestamptz,                     -- when the service last set the status
    PRIMARY KEY (service, symbol)
);

-- Wakes the service up: any insert, delete or change of what is asked for.
CREATE OR REPLACE FUNCTION market_admin.watchlist_notify()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('watchlist_changed', TG_OP);
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS watchlist_changed ON watchlist;
CREATE TRIGGER watchlist_changed
    AFTER INSERT OR DELETE OR UPDATE OF service, symbol ON watchlist
    FOR EACH STATEMENT EXECUTE FUNCTION market_admin.watchlist_notify();

-- Who added a row, from the API's JWT (Supabase's auth.uid(), when that function exists);
-- rows from the API roles always start `pending`.
CREATE OR REPLACE FUNCTION market_admin.watchlist_added_by()
RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF current_user IN ('anon', 'authenticated') THEN
        IF to_regprocedure('auth.uid()') IS NOT NULL THEN
            EXECUTE 'SELECT auth.uid()' INTO NEW.added_by;
        END IF;
        NEW.status := 'pending';
        NEW.reason := NULL;
        NEW.status_at := NULL;
    END IF;
    RETURN NEW;
END
$fn$;
DROP TRIGGER IF EXISTS watchlist_added_by ON watchlist;
CREATE TRIGGER watchlist_added_by BEFORE INSERT ON watchlist
    FOR EACH ROW EXECUTE FUNCTION market_admin.watchlist_added_by();

DO $$
DECLARE has_uid boolean := to_regprocedure('auth.uid()') IS NOT NULL;
BEGIN
    REVOKE ALL ON watchlist FROM PUBLIC;
    ALTER TABLE watchlist ENABLE ROW LEVEL SECURITY;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        REVOKE ALL ON watchlist FROM anon;
        GRANT SELECT ON watchlist TO anon;
        DROP POLICY IF EXISTS watchlist_read ON watchlist;
        CREATE POLICY watchlist_read ON watchlist FOR SELECT TO anon, authenticated USING (true);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        REVOKE ALL ON watchlist FROM authenticated;
        GRANT SELECT, DELETE ON watchlist TO authenticated;
        GRANT INSERT (service, symbol) ON watchlist TO authenticated;
        DROP POLICY IF EXISTS watchlist_insert ON watchlist;
        DROP POLICY IF EXISTS watchlist_delete ON watchlist;
        IF has_uid THEN
            -- A signed-in user adds rows as themselves and removes only their own.
            CREATE POLICY watchlist_insert ON watchlist FOR INSERT TO authenticated
                WITH CHECK (added_by IS NOT DISTINCT FROM auth.uid() AND status = 'pending');
            CREATE POLICY watchlist_delete ON watchlist FOR DELETE TO authenticated
                USING (added_by = auth.uid());
        ELSE
            CREATE POLICY watchlist_insert ON watchlist FOR INSERT TO authenticated
                WITH CHECK (status = 'pending');
            CREATE POLICY watchlist_delete ON watchlist FOR DELETE TO authenticated
                USING (true);
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        REVOKE ALL ON watchlist FROM service_role;
        GRANT SELECT, INSERT, UPDATE, DELETE ON watchlist TO service_role;
    END IF;
END $$;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA market_admin FROM PUBLIC;
