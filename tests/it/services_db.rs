//! Issue 15, the database side: frames of every service replayed into SQLite and PostgreSQL,
//! grants, retention.
