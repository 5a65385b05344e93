//! The health endpoint's accept loop: HTTP/1.1 connections served by hyper with a
//! header-read timeout and a cap on open connections, so clients that connect and send
//! nothing (or trickle a request) cannot pile up and grow memory: a connection that has not
//! sent a complete request head within [`HEADER_READ_TIMEOUT`] is closed, and beyond
//! [`MAX_CONNECTIONS`] open connections new ones are closed at once.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::shutdown::stopped;

/// Open connections served at once (health checks, scrapes and live pages are few).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a client may take to send a request's head (also between keep-alive requests).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves `app` on `listener` until `stop` is set; then asks every open connection to finish
/// its request and close, and returns when they have (the caller bounds the wait).
pub async fn serve(listener: TcpListener, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                tracing::warn!(error = %e, "health endpoint: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Full: closed at once (dropping the socket).
            let now = Instant::now();
            if last_refusal_log.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                last_refusal_log = Some(now);
                tracing::warn!(
                    open = MAX_CONNECTIONS,
                    "health endpoint: too many open connections; new ones are closed until some end"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut conn_stop = stop.clone();
        connections.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                // A connection error (timeout, reset) just ends the connection.
                _ = conn.as_mut() => {}
                () = stopped(&mut conn_stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn get(addr: std::net::SocketAddr) -> std::io::Result<String> {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    /// Reads until the server closes the socket (or `within` passes: `None`).
    async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut buf = [0u8; 64];
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => Some(started.elapsed()),
            Ok(Ok(_)) | Err(_) => None,
        }
    }

    #[tokio::test]
    async fn idle_connections_are_capped_and_timed_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(serve(listener, app, stop));
        assert!(get(addr).await.expect("GET").ends_with("ok"));

        // Connections that never send a byte: the first MAX_CONNECTIONS are held until the
        // header-read timeout; the rest are closed at once.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS + 20 {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        let mut refused = 0;
        for s in idle.iter_mut().skip(MAX_CONNECTIONS) {
            if closed_within(s, Duration::from_secs(1)).await.is_some() {
                refused += 1;
            }
        }
        assert_eq!(refused, 20, "connections over the cap are closed at once");
        for s in idle.iter_mut().take(MAX_CONNECTIONS) {
            let closed = closed_within(s, HEADER_READ_TIMEOUT + Duration::from_secs(3))
                .await
                .expect("an idle connection is closed after the header-read timeout");
            assert!(closed <= HEADER_READ_TIMEOUT + Duration::from_secs(3));
        }
        assert!(
            get(addr).await.expect("GET after").ends_with("ok"),
            "served again"
        );

        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stops")
            .expect("join");
    }
}
