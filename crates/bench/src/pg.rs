//! A plain tokio-postgres connection to the benchmark's throwaway cluster (no TLS: loopback).

use tokio::task::AbortHandle;
use tokio_postgres::{Client, NoTls};

use super::BenchError;

/// A connection; its driver task ends when this is dropped.
pub struct Conn {
    pub client: Client,
    driver: AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Conn {
    /// Connects to `url` (`what` names the database in errors).
    pub async fn open(url: &str, what: &str) -> Result<Self, BenchError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| BenchError::sql(format!("connect to {what}"), e))?;
        let driver = tokio::spawn(connection).abort_handle();
        Ok(Self { client, driver })
    }

    /// The first column of the one row `sql` returns, as a bigint.
    pub async fn count(&self, sql: &str) -> Result<i64, BenchError> {
        let row = self
            .client
            .query_one(sql, &[])
            .await
            .map_err(|e| BenchError::sql(format!("run {sql}"), e))?;
        row.try_get(0)
            .map_err(|e| BenchError::sql(format!("read the answer of {sql}"), e))
    }
}
