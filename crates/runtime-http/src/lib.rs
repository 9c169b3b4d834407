//! Serves `wasi:http/proxy` components over HTTP/1.1. Every request runs in a
//! fresh instance of the component, admitted like any call of the runtime
//! (the component's `resources.instances`, then a pool slot, in a bounded
//! queue), under the manifest's memory budget and fuel and one deadline that
//! covers instantiation, reading the request body, the handler and writing
//! the response body. What the request used goes to the runtime's observer,
//! to this crate's Prometheus metrics and to one `tracing` line.
//!
//! The HTTP contract: a guest that fails is `500` with the header
//! `x-wasm-runtime-kind` naming the kind (`out-of-fuel`,
//! `deadline-exceeded`, ...); overload is `503` with `retry-after` and kind
//! `busy`: no slot within the queue's wait or within half the request's
//! deadline (which starts when the request comes, so a request that waited
//! instantiates in what is left, at least half its time); a declared body
//! over the limit is `413`; a
//! client's malformed request is `400`; a guest's informational status
//! (1xx, 101 included) is `502` with kind `invalid-response`; a deadline
//! hit after the response head went out ends the connection abruptly,
//! never with a clean end of a truncated body, and a [`Server`] closes the
//! connection itself half a second past the deadline whether or not its
//! client reads. A client that goes away (closes its connection before the
//! answer, or before the end of a response body) cancels its request's
//! work at once: the guest is stopped as at a deadline and the request is
//! counted and logged with kind `cancelled`, unless the manifest says
//! `[wasi.http] on-client-gone = "finish"`: then the guest runs on to its
//! end or its deadline and its answer is read and thrown away.
//!
//! ```
//! use runtime::{ByteSize, ComponentManifest, Fuel, Resources, Runtime, Timeout};
//! use runtime_http::{HttpService, ServeOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().build()?;
//! // A component that exports no `wasi:http/incoming-handler` is refused
//! // with the list of what it does export.
//! let wat = r#"(component (core module $m (func (export "f"))) (core instance $i (instantiate $m))
//!   (func (export "f") (canon lift (core func $i "f"))))"#;
//! let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_millis(100));
//! let manifest = ComponentManifest::from_resources("app".parse()?, resources);
//! let component = runtime.load_bytes(wat.as_bytes(), &manifest)?;
//! let refused = HttpService::new(component, ServeOptions::default()).unwrap_err();
//! assert!(refused.to_string().contains("wasi:http/incoming-handler"));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod body;
mod handler;
mod metrics;
mod request_body;
mod server;
mod service;

use std::time::Duration;

pub use body::{BodyError, ResponseBody};
pub use handler::{HttpService, KIND_HEADER};
pub use metrics::ServeMetrics;
pub use server::{
    DEFAULT_METRICS_MAX_CONNECTIONS, EDGE_BUDGET, MetricsOptions, Server, serve_metrics, serve_metrics_with,
};

/// How long a connection may take to send a complete request head (and how
/// long a kept-alive connection may sit idle) before it is closed.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections a server keeps at most, by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How the server treats connections and requests; the component's manifest
/// sets the limits of each request's instance.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Open connections at most: past it, new connections wait in the
    /// kernel's backlog until one closes.
    pub max_connections: usize,
    /// The largest request body; `None`: the component's memory budget. A
    /// request that declares a longer one is `413` before any instance is
    /// made; a chunked body that grows past it fails the guest's read
    /// (`HttpRequestBodySize`), and the request is `413` whatever the guest
    /// answers if that happened before the guest's answer came. A guest
    /// that answers before reading that far keeps its answer: its read past
    /// the limit fails all the same, and the connection is not reused
    /// (its request body was never read to the end).
    pub max_request_body: Option<u64>,
    /// See [`DEFAULT_HEADER_TIMEOUT`].
    pub header_timeout: Duration,
    /// The `retry-after` a `503` carries, in whole seconds.
    pub retry_after: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request_body: None,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            retry_after: Duration::from_secs(1),
        }
    }
}

impl ServeOptions {
    /// At most `max` open connections.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Request bodies of at most `bytes`.
    pub fn with_max_request_body(mut self, bytes: u64) -> Self {
        self.max_request_body = Some(bytes);
        self
    }

    /// Close a connection that sends no complete request head within `timeout`.
    pub fn with_header_timeout(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self
    }
}

/// Why a component cannot be served, or the server cannot run.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum ServeError {
    /// The component exports neither `wasi:http/incoming-handler@0.2.x`
    /// nor `wasi:http/handler@0.3.x`.
    #[error(
        "the component does not export `wasi:http/incoming-handler@0.2.x` or `wasi:http/handler@0.3.x`, so it cannot serve HTTP"
    )]
    #[diagnostic(
        code(runtime::serve::not_a_proxy),
        help(
            "its exports: {exports}; build it for the `wasi:http/proxy` world (WASI 0.2) or `wasi:http/service` (0.3)"
        )
    )]
    NotAProxy {
        /// What it exports instead, comma-separated.
        exports: String,
    },

    /// The address cannot be bound or the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    #[diagnostic(code(runtime::serve::listen))]
    Listen {
        /// The address asked for.
        addr: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}
