//! Stop signals: SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd) both start a graceful drain.

/// Resolves at the first SIGINT or SIGTERM. If a handler cannot be installed (unusual), the
/// error is logged and only the other signal stops the service.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => log_ctrl_c(r),
                    _ = term.recv() => tracing::info!("SIGTERM received: draining and stopping"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the service gracefully");
                log_ctrl_c(tokio::signal::ctrl_c().await);
            }
        }
    }
    #[cfg(not(unix))]
    log_ctrl_c(tokio::signal::ctrl_c().await);
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
