//! A tokio-postgres client for test assertions against a [`crate::TestPostgres`] database
//! (plain TCP: the test cluster has no TLS unless a test asks for it), with its connection
//! driven on the current runtime.

/// Connects to `url` (`postgres://…`, `sslmode=disable` or `prefer`).
pub async fn pg_client(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the test sees the latter
        // on its next query.
        let _ = connection.await;
    });
    Ok(client)
}

/// The first column of the single row `sql` returns, as a bigint (`count(*)`, sums, …).
pub async fn pg_i64(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<i64, tokio_postgres::Error> {
    client.query_one(sql, &[]).await?.try_get(0)
}
