-- refinery's migration history table (`refinery_schema_history`, created by the migrator
-- before the first migration runs) is nobody else's business either: on projects whose default
-- privileges grant new tables to the API roles, take that back.
SELECT market_admin.revoke_api_access('refinery_schema_history'::regclass);
