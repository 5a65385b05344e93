-- The session tables under the same rules as the market tables:
-- stream_gaps is market metadata the front end may read (where data is missing);
-- schwab_tokens is readable by no API role (again, in case default privileges granted it).
SELECT market_admin.grant_read_only('stream_gaps'::regclass),
       market_admin.read_only_policy('stream_gaps'::regclass);
SELECT market_admin.revoke_api_access('schwab_tokens'::regclass);
ALTER TABLE schwab_tokens ENABLE ROW LEVEL SECURITY;
