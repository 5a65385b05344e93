//! Stop signals: SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd) both start a graceful drain.

/// Installs the SIGINT and SIGTERM handlers now and returns a future that resolves at the
/// first of them. Installing at the call, not at the first poll, means a signal that comes
/// before the future is awaited (say, right after the "listening" line was printed) is kept
/// instead of killing the process. Call it inside the tokio runtime. A handler that cannot be
/// installed (unusual) is logged and only the other signal stops the process gracefully.
pub fn signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            match (int, term) {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => log_ctrl_c(Ok(())),
                    _ = term.recv() => log_term(),
                },
                (Ok(mut int), Err(e)) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the service gracefully");
                    int.recv().await;
                    log_ctrl_c(Ok(()));
                }
                (Err(e), Ok(mut term)) => {
                    log_ctrl_c(Err(e));
                    term.recv().await;
                    log_term();
                }
                (Err(int), Err(term)) => {
                    tracing::warn!(sigint = %int, sigterm = %term, "cannot listen for SIGINT or SIGTERM; the process can only be killed");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        log_ctrl_c(tokio::signal::ctrl_c().await);
    }
}

fn log_term() {
    tracing::info!("SIGTERM received: draining and stopping");
}

/// Resolves when the service's stop flag `stop` is set (or its sender is gone).
pub async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn log_ctrl_c(result: std::io::Result<()>) {
    match result {
        Ok(()) => tracing::info!("SIGINT received: draining and stopping"),
        Err(e) => tracing::warn!(error = %e, "cannot listen for Ctrl-C"),
    }
}
