-- Schwab session: the OAuth token store (TOKEN_STORE=database) and the record of stream gaps.

-- One row per Schwab app (client_id = the App Key). Holds live credentials: nobody but the
-- service's own database user may read it. Supabase exposes tables in `public` through its
-- Data API, so every grant to its API roles is removed (the roles exist only on Supabase,
-- hence the guard) and row-level security is on without any policy.
CREATE TABLE IF NOT EXISTS schwab_tokens (
    client_id          text        PRIMARY KEY,
    access_token       text        NOT NULL,
    refresh_token      text        NOT NULL,
    access_expires_at  timestamptz NOT NULL,
    refresh_issued_at  timestamptz NOT NULL,   -- the browser login; refreshing never moves it
    updated_at         timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE schwab_tokens ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON TABLE schwab_tokens FROM PUBLIC;
DO $$
DECLARE
    api_role text;
BEGIN
    FOREACH api_role IN ARRAY ARRAY['anon', 'authenticated', 'service_role'] LOOP
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api_role) THEN
            EXECUTE format('REVOKE ALL ON TABLE schwab_tokens FROM %I', api_role);
        END IF;
    END LOOP;
END
$$;

-- One row per interruption of the stream: data between gap_start and gap_end is missing.
-- gap_start is the last frame before the disconnect, gap_end the moment the new session was
-- streaming again (or the service stopped). reason: server_close, stall, login_denied,
-- kicked, stop_streaming, network_error, response_timeout.
CREATE TABLE IF NOT EXISTS stream_gaps (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gap_start    timestamptz NOT NULL,
    gap_end      timestamptz NOT NULL,
    reason       text        NOT NULL,
    detail       text        NOT NULL DEFAULT '',
    inserted_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (gap_end >= gap_start)
);
CREATE INDEX IF NOT EXISTS stream_gaps_gap_start_idx ON stream_gaps (gap_start);
