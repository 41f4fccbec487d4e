//! The accept loop: connections are HTTP/1.1 served by hyper with deadlines and a cap.
//!
//! `axum::serve` sets no timer, so a client that sends half its headers (or nothing) holds a
//! connection forever, and nothing bounds how many are open: tens of thousands of idle sockets
//! exhaust the process's file handles, and then the write-ahead log cannot open a segment.
//! Here every connection has a header deadline (which also closes idle keep-alive
//! connections: hyper starts it whenever it waits for a request), and at most
//! `max_connections` are served at once; one more is closed on accept.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Connection limits of `serve`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; more are closed as they are accepted.
    pub max_connections: usize,
    /// From the moment a connection waits for a request until its headers are complete
    /// (a slow or idle client is disconnected then).
    pub header_timeout: Duration,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
        }
    }
}

impl ConnectionLimits {
    /// The cap, lowered to leave file handles for the log, the lake and the catalog.
    pub fn effective_max_connections(&self) -> usize {
        const RESERVED_FILES: u64 = 256;
        match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            Some(files) if files > RESERVED_FILES => self
                .max_connections
                .min(usize::try_from(files - RESERVED_FILES).unwrap_or(usize::MAX)),
            Some(_) => 1,
            None => self.max_connections,
        }
    }
}

/// What the accept loop counts, for metrics.
pub trait ConnectionEvents: Send + Sync + 'static {
    fn refused(&self);
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish
/// their requests (for at most `drain`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    events: Arc<dyn ConnectionEvents>,
    shutdown: impl std::future::Future<Output = ()> + Send,
    drain: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.effective_max_connections()));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (_, std::net::SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            events.refused();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
}
