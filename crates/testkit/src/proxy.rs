//! A TCP proxy on 127.0.0.1 for network tests of the PostgreSQL writer: it delays every
//! chunk by a fixed time each way (a WAN), counts the client's turns (bursts of
//! client-to-server data that follow an answer from the server: one per network round trip
//! the client waits for), can cut every connection, and can swallow traffic (a dead peer) or
//! only the server's answers (requests arrive and are acted on, the client never hears).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

#[derive(Debug)]
struct Shared {
    delay: Duration,
    turns: AtomicU64,
    connections: AtomicU64,
    blackhole: AtomicBool,
    /// Drop server-to-client data only.
    drop_answers: AtomicBool,
    cut: watch::Sender<u64>,
}

/// A running proxy; dropping it stops accepting (open connections end when cut or closed).
#[derive(Debug)]
pub struct DelayProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

impl DelayProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:upstream_port`, each
    /// chunk `delay` later in each direction (chunks keep their order and overlap in flight).
    pub async fn start(upstream_port: u16, delay: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (cut, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            delay,
            turns: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            blackhole: AtomicBool::new(false),
            drop_answers: AtomicBool::new(false),
            cut,
        });
        let accept_shared = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await {
                        shared.connections.fetch_add(1, Ordering::Relaxed);
                        relay(client, server, shared).await;
                    }
                });
            }
        });
        Ok(Self {
            port,
            shared,
            accept,
        })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` (a `postgres://…@127.0.0.1:PORT/…` URL of the upstream) pointed at the proxy.
    pub fn url(&self, url: &str, upstream_port: u16) -> String {
        url.replace(
            &format!("127.0.0.1:{upstream_port}"),
            &format!("127.0.0.1:{}", self.port),
        )
    }

    /// Client turns so far, over every connection.
    pub fn turns(&self) -> u64 {
        self.shared.turns.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Closes every open connection (both sides), as a network failure would.
    pub fn cut_all(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// While on, data in both directions is read and dropped: the peer looks alive to TCP
    /// but never answers.
    pub fn set_blackhole(&self, on: bool) {
        self.shared.blackhole.store(on, Ordering::SeqCst);
    }

    /// While on, the server's answers are read and dropped while requests still reach it: a
    /// `COMMIT` goes through and commits, but the client never learns it (the ambiguous
    /// failure of a WAN link that dies at the wrong moment).
    pub fn set_drop_answers(&self, on: bool) {
        self.shared.drop_answers.store(on, Ordering::SeqCst);
    }
}

/// Which way a pump copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Set when server data reached the client; the next client chunk starts a new turn.
    let server_spoke = Arc::new(AtomicBool::new(true));
    let mut cut = shared.cut.subscribe();
    let up = pump(
        client_read,
        server_write,
        shared.clone(),
        Direction::Up,
        {
            let server_spoke = server_spoke.clone();
            let shared = shared.clone();
            move || {
                if server_spoke.swap(false, Ordering::SeqCst) {
                    shared.turns.fetch_add(1, Ordering::SeqCst);
                }
            }
        },
        || {},
    );
    let down = pump(
        server_read,
        client_write,
        shared.clone(),
        Direction::Down,
        || {},
        move || server_spoke.store(true, Ordering::SeqCst),
    );
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.changed() => {}
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read; `on_read` runs when a chunk
/// is read, `on_written` when it has been delivered.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    direction: Direction,
    on_read: impl Fn() + Send + 'static,
    on_written: impl Fn() + Send + 'static,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let delay = shared.delay;
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if shared.blackhole.load(Ordering::SeqCst)
                        || (direction == Direction::Down
                            && shared.drop_answers.load(Ordering::SeqCst))
                    {
                        continue;
                    }
                    on_read();
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
            on_written();
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
