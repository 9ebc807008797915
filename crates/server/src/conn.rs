//! Connections: how the node and the transcryptor accept and keep them.
//!
//! `axum::serve` sets no timer and no cap: a silent or slow client kept its
//! connection (and a file descriptor) for ever, and with `ulimit -n 1024` about
//! a thousand idle connections made the server unable to accept `/healthz`.
//! Here every connection is a hyper HTTP/1 connection with:
//!
//! * a **header timeout** (hyper's `header_read_timeout`, with a tokio timer):
//!   a request's head must arrive within it of the connection being ready for
//!   one (after accept, and after each answer on a kept-alive connection), so
//!   a connection that sends nothing, or trickles its headers, is closed;
//! * an **idle timeout**: while no request is being handled, a connection on
//!   which no byte moves either way is closed (a client that stops reading
//!   its answer holds nothing for long);
//! * a **request timeout** ([`request_timeout_layer`]): handling one request,
//!   its body read included, answers `503 request_timeout` after it;
//! * a **cap** on open connections, below the open-file limit (raised to the
//!   hard limit at start, see [`raise_open_file_limit`]). At the cap a new
//!   connection is still accepted, and the oldest connection that has no
//!   request in progress is closed to make room: idle connections cannot lock
//!   the server out. Only when every connection is busy is the new one closed.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// File descriptors kept free of connections: the database (SQLite's files or
/// PostgreSQL's sockets), links to transcryptors, logs, the listener.
pub const RESERVED_FDS: u64 = 128;

/// Timeouts and the connection cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// A request's head must arrive within this of the connection being ready.
    pub header_timeout: Duration,
    /// No byte either way while no request is handled: the connection closes.
    pub idle_timeout: Duration,
    /// Handling one request (body read included); then `503 request_timeout`.
    pub request_timeout: Duration,
    /// Most connections open at once (lowered to fit the open-file limit).
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            max_connections: 4096,
        }
    }
}

/// The open-file limit at start: what it was, what it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub soft: u64,
    pub hard: u64,
    /// Whether the soft limit was raised (to the hard limit).
    pub raised_from: Option<u64>,
}

/// Raises the soft open-file limit (`RLIMIT_NOFILE`) to the hard limit where
/// the system allows it, and logs what it is: one line, a warning when the
/// limit is too low for `wanted` connections. `None` where the platform has
/// no such limit or it cannot be read.
pub fn raise_open_file_limit(wanted: usize) -> Option<OpenFiles> {
    let (before, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, soft = before, hard, "cannot raise the open-file limit");
            before
        }
    };
    let need = wanted as u64 + RESERVED_FDS;
    if soft < need {
        tracing::warn!(
            soft,
            hard,
            connections = soft.saturating_sub(RESERVED_FDS),
            wanted,
            "the open-file limit is too low for max_connections and cannot be raised further: fewer connections will be served; raise the hard limit (`ulimit -Hn`, or LimitNOFILE= in a systemd unit)"
        );
    } else if soft > before {
        tracing::info!(from = before, to = soft, "raised the open-file limit");
    }
    Some(OpenFiles {
        soft,
        hard,
        raised_from: (soft > before).then_some(before),
    })
}

/// The connection cap for `limits` under the open-file limit `files`.
pub fn connection_cap(limits: &ConnLimits, files: Option<OpenFiles>) -> usize {
    let by_files = files.map_or(usize::MAX, |f| {
        usize::try_from(f.soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX)
    });
    limits.max_connections.min(by_files).max(1)
}

/// The layer that bounds handling one request: `503 request_timeout` (JSON,
/// like every error) after `limit`. The handler's future is dropped: work it
/// committed stays committed (each step is its own durable write, as after a
/// crash); the client is told it may or may not have happened.
pub fn request_timeout_layer<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limit: Duration,
) -> Router<S> {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| async move {
            match tokio::time::timeout(limit, next.run(req)).await {
                Ok(resp) => resp,
                Err(_) => {
                    tracing::warn!(seconds = limit.as_secs_f64(), "request timed out");
                    crate::ApiError::new(
        crate::error::ErrorCode::RequestTimeout,
                        "the request took longer than the server allows; it may or may not have taken effect",
                    )
                    .into_response()
                }
            }
        },
    ))
}

/// What one connection's task and the acceptor share.
#[derive(Debug)]
struct ConnShared {
    /// Requests of this connection being handled.
    in_flight: AtomicUsize,
    /// Milliseconds since `born` of the last byte read or written.
    last_io_ms: AtomicU64,
    born: Instant,
    /// Closes the connection (it is the oldest idle one at the cap).
    evict: Notify,
}

impl ConnShared {
    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_io_ms.store(ms, Ordering::Relaxed);
    }
    fn last_io(&self) -> Instant {
        self.born + Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed))
    }
}

/// Decrements `in_flight` when a request's handling ends (or is dropped).
struct InFlight(Arc<ConnShared>);

impl InFlight {
    fn enter(c: &Arc<ConnShared>) -> Self {
        c.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(c.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// A TCP stream that notes when bytes move.
struct Watched {
    inner: TcpStream,
    shared: Arc<ConnShared>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.shared.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.shared.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.shared.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open connections, oldest first.
#[derive(Debug, Default)]
struct Registry {
    next_id: u64,
    open: BTreeMap<u64, Arc<ConnShared>>,
}

impl Registry {
    /// Makes room for one more connection under `cap`: closes the oldest
    /// connection with no request in progress. False if every one is busy.
    fn make_room(&mut self, cap: usize) -> bool {
        if self.open.len() < cap {
            return true;
        }
        let idle = self
            .open
            .iter()
            .find(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| self.open.remove(&id)) {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` completes; then
/// stops accepting, lets requests in flight finish (each bounded by the
/// request timeout) and closes every connection.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    cap: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router_with(listener, app, limits, cap, None, shutdown).await
}

/// [`serve_router`], over TLS when `tls` is given: the handshake must finish
/// within the header-read timeout.
pub async fn serve_router_with(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    cap: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut shed_logged: Option<Instant> = None;
    let mut accept_err_logged: Option<Instant> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: the cap keeps this rare; wait a
                    // moment rather than spin, and say so at most every 10 s.
                    if accept_err_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        accept_err_logged = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = {
            let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
            if !reg.make_room(cap) {
                drop(reg);
                if shed_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        cap,
                        "every connection has a request in progress: closing new connections"
                    );
                    shed_logged = Some(Instant::now());
                }
                drop(stream);
                continue;
            }
            let shared = Arc::new(ConnShared {
                in_flight: AtomicUsize::new(0),
                last_io_ms: AtomicU64::new(0),
                born: Instant::now(),
                evict: Notify::new(),
            });
            let id = reg.next_id;
            reg.next_id += 1;
            reg.open.insert(id, shared.clone());
            (id, shared)
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            stream,
            tls.clone(),
            peer,
            app.clone(),
            builder.clone(),
            limits,
            shared,
            registry.clone(),
            stop_rx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection now finishes its request in flight (bounded by the
    // request and idle timeouts) and closes; past that bound, they are cut.
    let bound = limits.request_timeout + limits.idle_timeout;
    if tokio::time::timeout(bound, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            "closing connections still open at shutdown"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    peer: SocketAddr,
    app: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: ConnLimits,
    (id, shared): (u64, Arc<ConnShared>),
    registry: Arc<Mutex<Registry>>,
    stop: watch::Receiver<bool>,
) {
    let watched = Watched {
        inner: stream,
        shared: shared.clone(),
    };
    match tls {
        None => {
            let io = hyper_util::rt::TokioIo::new(watched);
            drive(io, peer, app, builder, limits, shared.clone(), stop).await;
        }
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(watched)).await {
                Ok(Ok(tls_stream)) => {
                    let io = hyper_util::rt::TokioIo::new(tls_stream);
                    drive(io, peer, app, builder, limits, shared.clone(), stop).await;
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
    registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .open
        .remove(&id);
}

/// Serves HTTP/1 on one connection until it ends, goes idle, is evicted, or
/// the server stops.
async fn drive<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    builder: Arc<hyper::server::conn::http1::Builder>,
    limits: ConnLimits,
    shared: Arc<ConnShared>,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc_shared = shared.clone();
    let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        let guard = InFlight::enter(&svc_shared);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(guard);
            resp
        }
    });
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut draining = *stop.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let idle_check = match shared.in_flight.load(Ordering::Acquire) {
            0 => shared.last_io() + limits.idle_timeout,
            _ => Instant::now() + limits.idle_timeout,
        };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = tokio::time::sleep_until(idle_check) => {
                let idle = shared.in_flight.load(Ordering::Acquire) == 0
                    && shared.last_io().elapsed() >= limits.idle_timeout;
                if idle {
                    tracing::debug!("closing an idle connection");
                    break;
                }
            }
            () = shared.evict.notified() => {
                tracing::debug!("closing the oldest idle connection to make room");
                break;
            }
            r = stop.changed(), if !draining => {
                draining = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(in_flight: usize) -> Arc<ConnShared> {
        Arc::new(ConnShared {
            in_flight: AtomicUsize::new(in_flight),
            last_io_ms: AtomicU64::new(0),
            born: Instant::now(),
            evict: Notify::new(),
        })
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let mut reg = Registry::default();
        let (busy, idle_old, idle_new) = (shared(1), shared(0), shared(0));
        reg.open.insert(1, busy.clone());
        reg.open.insert(2, idle_old.clone());
        reg.open.insert(3, idle_new.clone());
        assert!(reg.make_room(4), "below the cap: nothing closes");
        assert_eq!(reg.open.len(), 3);
        assert!(reg.make_room(3));
        assert_eq!(reg.open.keys().copied().collect::<Vec<_>>(), [1, 3]);
        assert!(reg.make_room(2));
        assert_eq!(reg.open.keys().copied().collect::<Vec<_>>(), [1]);
        assert!(!reg.make_room(1), "every connection busy: no room");
    }

    #[test]
    fn the_cap_fits_under_the_open_file_limit() {
        let limits = ConnLimits::default();
        let files = |soft| {
            Some(OpenFiles {
                soft,
                hard: soft,
                raised_from: None,
            })
        };
        assert_eq!(connection_cap(&limits, files(1024)), 1024 - 128);
        assert_eq!(connection_cap(&limits, files(1_000_000)), 4096);
        assert_eq!(connection_cap(&limits, files(64)), 1);
        assert_eq!(connection_cap(&limits, None), 4096);
    }
}
