//! The live page on the health port: `GET /` serves one embedded HTML file (inline CSS and
//! JavaScript, nothing loaded from elsewhere, so it works offline and through an SSH tunnel),
//! and `GET /live` streams the [`LiveView`] to it as server-sent events.
//!
//! Each client gets a full view first (`event: view`, `"full": true`), then at most one event
//! per publication (every [`super::live::PUBLISH_EVERY`]) with the symbols that changed since
//! the last one it got, the list of symbols on the page (so a removed one leaves), and the
//! status. A slow client never holds anything up: it reads the
//! latest view from a watch channel and skips the ones it missed (the symbols changed in
//! between are still sent, by version). The browser's `EventSource` reconnects by itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use futures::Stream;
use serde::Serialize;
use tokio::sync::watch;

use super::live::{LiveView, StatusView, SymbolView};

/// The page, compiled in.
pub const PAGE_HTML: &str = include_str!("page.html");

/// Comment lines sent on an idle stream so proxies and tunnels keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /`.
pub async fn index() -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Everything is inline: nothing may be fetched from anywhere else.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        Html(PAGE_HTML),
    )
        .into_response()
}

/// One event's body.
#[derive(Debug, Serialize)]
struct ViewEvent<'a> {
    /// True for the first event of a connection: every symbol is in it.
    full: bool,
    /// Every symbol on the page, in order (a row not listed was removed: the watchlist
    /// dropped its symbol).
    shown: Vec<&'a str>,
    symbols: Vec<&'a SymbolView>,
    status: Option<&'a StatusView>,
}

/// The event for `view` given the newest symbol version the client already has.
fn event_for(view: &LiveView, seen: u64, full: bool) -> (Event, u64) {
    let symbols: Vec<&SymbolView> = view
        .symbols
        .iter()
        .map(Arc::as_ref)
        .filter(|s| full || s.version > seen)
        .collect();
    let newest = view
        .symbols
        .iter()
        .map(|s| s.version)
        .max()
        .unwrap_or(0)
        .max(seen);
    let body = ViewEvent {
        full,
        shown: view.symbols.iter().map(|s| s.symbol.as_str()).collect(),
        symbols,
        status: view.status.as_deref(),
    };
    let data = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
    (Event::default().event("view").data(data), newest)
}

/// The event stream of one client.
pub fn stream(
    view: watch::Receiver<Arc<LiveView>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((view, None::<u64>), |(mut view, seen)| async move {
        match seen {
            None => {
                let current = view.borrow_and_update().clone();
                let (event, newest) = event_for(&current, 0, true);
                Some((Ok(event), (view, Some(newest))))
            }
            Some(seen) => {
                // The page task stopped: end the stream (the browser reconnects).
                view.changed().await.ok()?;
                let current = view.borrow_and_update().clone();
                let (event, newest) = event_for(&current, seen, false);
                Some((Ok(event), (view, Some(newest))))
            }
        }
    })
}

/// `GET /live`.
pub fn events(view: watch::Receiver<Arc<LiveView>>) -> Response {
    let mut response = Sse::new(stream(view))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
