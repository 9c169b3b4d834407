//! The listener: at most `max_connections` open connections, each closed
//! when it sends no request head within the header timeout, or when the
//! request it serves outlives its deadline whether or not the client reads,
//! and a graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::{HttpService, ResponseBody, ServeError, ServeMetrics};

/// How long, past the longest deadline, a shutdown waits for requests in
/// flight before it closes their connections anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Past a request's deadline, how long the answer made at the deadline (a
/// `500 deadline-exceeded`) has to go out before the connection is closed.
const DEADLINE_SLACK: Duration = Duration::from_millis(500);

/// Once the guest's response body has ended, how long at least the client
/// has to take what the server still holds for it (the rest of the
/// deadline if that is longer) before a connection whose writes are
/// blocked is closed.
const WRITE_GRACE: Duration = Duration::from_secs(1);

/// Bytes the request-head buffers of all connections may hold together:
/// each connection's hyper buffer is this divided by `max_connections`
/// (64 KiB at the default 1,024), between hyper's floor and its default.
pub const EDGE_BUDGET: usize = 64 << 20;

/// hyper's smallest `max_buf_size` (it panics below).
const MIN_BUF_SIZE: usize = 8 * 1024;

/// hyper's own default `max_buf_size` (about 400 KiB): never loosened.
const MAX_BUF_SIZE: usize = 8192 + 4096 * 100;

/// A bound listener serving one [`HttpService`].
#[derive(Debug)]
pub struct Server<T: 'static = ()> {
    service: HttpService<T>,
    listener: TcpListener,
}

impl<T: Default + Send + 'static> Server<T> {
    /// Binds `addr` (port 0 picks a free port). With `reuse_port`, several
    /// processes may bind the same address and the kernel spreads
    /// connections among them (`SO_REUSEPORT`, Unix only).
    pub fn bind(service: HttpService<T>, addr: SocketAddr, reuse_port: bool) -> Result<Self, ServeError> {
        let listener =
            listen(addr, reuse_port).map_err(|source| ServeError::Listen { addr: addr.to_string(), source })?;
        Ok(Self { service, listener })
    }

    /// The address it listens on, with the real port.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// requests in flight finish within their deadlines.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self { service, listener } = self;
        let options = service.options().clone();
        let slots = Arc::new(Semaphore::new(options.max_connections));
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        while let Some((permit, stream)) = admit(&slots, &listener, &mut shutdown).await {
            let _ = stream.set_nodelay(true);
            let (io, blocked) = WriteWatch::new(TokioIo::new(stream));
            let clock = Arc::new(watch::Sender::new(Clock::Idle));
            let ticks = clock.subscribe();
            let service = service.clone();
            let handler = service_fn(move |request: Request<Incoming>| {
                let service = service.clone();
                let clock = clock.clone();
                async move {
                    let deadline = Instant::now() + service.timeout() + DEADLINE_SLACK;
                    clock.send_replace(Clock::Serving(deadline));
                    let response = service.handle(request).await;
                    Ok::<_, Infallible>(response.map(|body| ClockedBody { inner: body, clock, deadline }))
                }
            });
            let connection = http1_connections(options.header_timeout, buf_size(options.max_connections))
                .serve_connection(io, handler);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _permit = permit;
                match on_the_clock(connection, ticks, &blocked).await {
                    Some(Ok(())) => {}
                    Some(Err(error)) => tracing::debug!(target: "wasm_runtime::serve", "connection ended: {error}"),
                    None => {
                        tracing::debug!(target: "wasm_runtime::serve", "connection closed at its request's deadline")
                    }
                }
            });
        }
        drop(listener);
        let longest = service.timeout() + DRAIN_GRACE;
        if tokio::time::timeout(longest, graceful.shutdown()).await.is_err() {
            tracing::warn!(target: "wasm_runtime::serve", "requests still in flight after {longest:?}: closing them");
        }
    }
}

fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(reuse_port)?;
    #[cfg(not(unix))]
    if reuse_port {
        return Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "SO_REUSEPORT needs a Unix host"));
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Open connections the metrics listener keeps at most, by default: a
/// scraper needs one or two.
pub const DEFAULT_METRICS_MAX_CONNECTIONS: usize = 64;

/// The limits of the metrics listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MetricsOptions {
    /// Open connections at most; past it, connections wait in the backlog.
    pub max_connections: usize,
    /// See [`DEFAULT_HEADER_TIMEOUT`](crate::DEFAULT_HEADER_TIMEOUT).
    pub header_timeout: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self { max_connections: DEFAULT_METRICS_MAX_CONNECTIONS, header_timeout: crate::DEFAULT_HEADER_TIMEOUT }
    }
}

impl MetricsOptions {
    /// At most `max` open connections.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Close a connection that sends no complete request head within `timeout`.
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }
}

/// Serves `GET /metrics` from `metrics` on `listener` until `shutdown`,
/// with [`MetricsOptions::default`].
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<ServeMetrics>, shutdown: impl Future<Output = ()>) {
    serve_metrics_with(listener, metrics, MetricsOptions::default(), shutdown).await;
}

/// Serves `GET /metrics` from `metrics` on `listener` until `shutdown`.
pub async fn serve_metrics_with(
    listener: TcpListener,
    metrics: Arc<ServeMetrics>,
    options: MetricsOptions,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some((permit, stream)) = admit(&slots, &listener, &mut shutdown).await {
        let metrics = metrics.clone();
        let handler = service_fn(move |request: Request<Incoming>| {
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(metrics_response(&request, &metrics)) }
        });
        let connection = http1_connections(options.header_timeout, buf_size(options.max_connections))
            .serve_connection(TokioIo::new(stream), handler);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
}

/// A free connection slot, then the next connection in it; `None` once
/// `shutdown` completes. Past the cap, connections wait in the backlog.
async fn admit(
    slots: &Arc<Semaphore>,
    listener: &TcpListener,
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
) -> Option<(OwnedSemaphorePermit, TcpStream)> {
    let permit = tokio::select! {
        permit = slots.clone().acquire_owned() => permit.ok()?,
        () = shutdown.as_mut() => return None,
    };
    let stream = accept(listener, shutdown).await?;
    Some((permit, stream))
}

/// The next connection, or `None` once `shutdown` completes. A failed
/// accept (out of descriptors, most likely) waits for some to close.
async fn accept(listener: &TcpListener, shutdown: &mut Pin<&mut impl Future<Output = ()>>) -> Option<TcpStream> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => return Some(stream),
                Err(error) => {
                    tracing::warn!(target: "wasm_runtime::serve", "cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// HTTP/1.1 connections that close when no complete request head arrives
/// within `header_timeout`, and whose buffers hold at most `max_buf_size`.
fn http1_connections(header_timeout: Duration, max_buf_size: usize) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(max_buf_size);
    builder
}

/// Each connection's share of [`EDGE_BUDGET`].
fn buf_size(max_connections: usize) -> usize {
    (EDGE_BUDGET / max_connections.max(1)).clamp(MIN_BUF_SIZE, MAX_BUF_SIZE)
}

/// Where a connection's request stands, for the task that owns the
/// connection: hyper polls a response body only when the socket has room,
/// so a client that never reads must be cut from outside hyper.
#[derive(Clone, Copy, Debug)]
enum Clock {
    /// No request: hyper's header timeout applies.
    Idle,
    /// A request is being served: at this instant its connection is
    /// closed, whatever it has written.
    Serving(Instant),
    /// Its response body has ended: at this instant the connection is
    /// closed if hyper still cannot write what it holds.
    Draining(Instant),
}

/// Drives `connection` to its end, or drops it (closing its socket, and
/// so returning its permit) when `clock` runs out: `None`.
async fn on_the_clock<F: Future>(
    connection: F,
    mut clock: watch::Receiver<Clock>,
    blocked: &AtomicBool,
) -> Option<F::Output> {
    let mut connection = std::pin::pin!(connection);
    loop {
        let (at, serving) = match *clock.borrow_and_update() {
            Clock::Idle => (None, false),
            Clock::Serving(at) => (Some(at), true),
            Clock::Draining(at) => (Some(at), false),
        };
        tokio::select! {
            ended = connection.as_mut() => return Some(ended),
            changed = clock.changed() => if changed.is_err() {
                return Some(connection.await);
            },
            () = sleep_until(at) => {
                if serving || blocked.load(Ordering::Relaxed) {
                    return None;
                }
                // Everything went out: idle until the next request.
                tokio::select! {
                    ended = connection.as_mut() => return Some(ended),
                    changed = clock.changed() => if changed.is_err() {
                        return Some(connection.await);
                    },
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A response body that tells its connection's clock when it is done
/// (hyper drops it at its end, or when the connection fails).
struct ClockedBody {
    inner: ResponseBody,
    clock: Arc<watch::Sender<Clock>>,
    deadline: Instant,
}

impl Drop for ClockedBody {
    fn drop(&mut self) {
        let until = self.deadline.max(Instant::now() + WRITE_GRACE);
        self.clock.send_replace(Clock::Draining(until));
    }
}

impl Body for ClockedBody {
    type Data = Bytes;
    type Error = crate::BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The connection's socket, noting whether its last write found it full.
struct WriteWatch<I> {
    inner: I,
    blocked: Arc<AtomicBool>,
}

impl<I> WriteWatch<I> {
    fn new(inner: I) -> (Self, Arc<AtomicBool>) {
        let blocked = Arc::new(AtomicBool::new(false));
        (Self { inner, blocked: blocked.clone() }, blocked)
    }

    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.blocked.store(poll.is_pending(), Ordering::Relaxed);
        poll
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for WriteWatch<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for WriteWatch<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn metrics_response(
    request: &Request<Incoming>,
    metrics: &ServeMetrics,
) -> Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    let (status, content_type, text) = if request.uri().path() == "/metrics" {
        (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", metrics.encode())
    } else {
        (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", String::from("only /metrics is served here\n"))
    };
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}
