//! The listener: at most `max_connections` open connections, each closed
//! when it sends no request head within the header timeout, and a graceful
//! drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;

use crate::{HttpService, ServeError, ServeMetrics};

/// How long, past the longest deadline, a shutdown waits for requests in
/// flight before it closes their connections anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

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
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let Some(stream) = accept(&listener, &mut shutdown).await else { break };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            let handler = service_fn(move |request: Request<Incoming>| {
                let service = service.clone();
                async move { Ok::<_, Infallible>(service.handle(request).await) }
            });
            let connection = http1_connections(options.header_timeout).serve_connection(TokioIo::new(stream), handler);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _permit = permit;
                if let Err(error) = connection.await {
                    tracing::debug!(target: "wasm_runtime::serve", "connection ended: {error}");
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

/// Serves `GET /metrics` from `metrics` on `listener` until `shutdown`.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<ServeMetrics>, shutdown: impl Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some(stream) = accept(&listener, &mut shutdown).await {
        let metrics = metrics.clone();
        let handler = service_fn(move |request: Request<Incoming>| {
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(metrics_response(&request, &metrics)) }
        });
        let connection =
            http1_connections(crate::DEFAULT_HEADER_TIMEOUT).serve_connection(TokioIo::new(stream), handler);
        tokio::spawn(connection);
    }
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
/// within `header_timeout`.
fn http1_connections(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    builder
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
