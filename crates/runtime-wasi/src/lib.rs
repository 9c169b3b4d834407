//! The WASI p2 host of the runtime, above the call kernel: WASI for guests,
//! deny by default: no arguments, environment, stdin, directories, sockets
//! or outgoing HTTP unless the manifest's `[wasi]` grants them (see
//! [`WasiGrants`]); clocks and random allowed; stdout and stderr discarded,
//! captured (capped) or inherited. The context is the store's
//! [`StoreExtension`](runtime_core::StoreExtension), built on the guest's
//! first WASI call, so a component that never calls WASI pays nothing for
//! it; the kernel knows it only through that trait.
//!
//! ```
//! use runtime_core::{Allocation, ComponentLoader, LoadedComponent, RuntimeEngine, StoreState};
//! use runtime_limits::ResourceLimits;
//! use runtime_manifest::{ComponentManifest, HostPolicy};
//! use runtime_wasi::{WasiGrants, add_wasi_to_linker};
//! use wasmtime::component::Linker;
//!
//! let engine = RuntimeEngine::new(HostPolicy::default(), Allocation::OnDemand)?;
//! let mut linker = Linker::<StoreState>::new(engine.engine());
//! add_wasi_to_linker(&mut linker)?;
//! let manifest: ComponentManifest = "[component]\nname = \"tool\"\nversion = \"0.1.0\"\n\
//!     [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n\
//!     [wasi]\nargs = [\"--verbose\"]\n".parse()?;
//! // The manifest's grants, resolved for this host (directories opened and pinned).
//! let grants = WasiGrants::resolve(&manifest.wasi, std::path::Path::new("."), engine.policy().grants())?;
//! assert_eq!(grants.config().args, ["--verbose"]);
//! // Every store of the component reads them back when its guest first calls WASI.
//! let capabilities = grants.into_capabilities();
//! assert!(WasiGrants::of(&capabilities).is_some());
//! let compiled = ComponentLoader::new(engine.clone()).load_bytes(b"(component)")?;
//! let limits = ResourceLimits::new(&manifest.resources, engine.policy())?;
//! let component = LoadedComponent::new(&engine, compiled, &linker, limits)?.with_capabilities(capabilities);
//! assert!(WasiGrants::of(component.capabilities()).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod disk;
mod fs;
mod grant_dir;
mod grants;
mod listing;
mod output;
mod p3;
mod replay;
mod sockets;

pub use grants::WasiGrants;
pub use p3::add_to_linker as add_wasi_p3_to_linker;

pub use output::{MAX_QUEUED_OUTPUT_BYTES, MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS, flush_inherited_output};

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use runtime_manifest::{HttpGrant, NetworkGrant, Stdin, Stdio};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsCtxView};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttp, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};

use crate::grants::Capability;
use runtime_core::{CapabilityDenied, HostFunction, StoreExtension, StoreState};
use sockets::CappedSockets;

// The accessors below (`clocks()`, `cli()`, ...) come from these views,
// which wasmtime-wasi implements for every `WasiView`.
use wasmtime_wasi::{cli::WasiCliView as _, clocks::WasiClocksView as _, random::WasiRandomView as _};

/// Host objects one instance's WASI table may hold at once: descriptors,
/// streams, pollables, sockets, HTTP fields, requests and bodies. Each HTTP
/// object is sized so that this many of them fit the host-memory budget.
pub const MAX_WASI_OBJECTS: usize = 1024;

/// The most bytes of stdout (and, separately, of stderr) kept per call when
/// output is captured; writes past it fail in the guest.
pub const MAX_CAPTURED_OUTPUT_BYTES: usize = 64 * 1024;

/// One store's WASI context and, when captured, its output pipes.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    captured: Option<(MemoryOutputPipe, MemoryOutputPipe)>,
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
    /// The table an ungranted interface sees: empty and unable to hold
    /// anything, so the call makes nothing before it fails.
    denied: ResourceTable,
    /// Quotas of the read-write grants, owners of the open descriptors.
    pub(crate) disk: fs::DiskState,
    /// Whether the host handed this store an incoming HTTP request, which
    /// opens `wasi:http/types` to it whatever the outgoing grants say.
    serving: bool,
}

impl WasiState {
    /// The context `grants` allow; `max_random_bytes` caps one
    /// `get-random-bytes` request and each HTTP body (the guest could not
    /// hold more anyway); `stdout_to_stderr` sends an inherited stdout to
    /// the host's stderr.
    pub(crate) fn new(grants: &WasiGrants, max_bytes: u64, host_bytes: u64, stdout_to_stderr: bool) -> Self {
        let config = &grants.config;
        let mut builder = WasiCtxBuilder::new();
        builder.max_random_size(max_bytes);
        builder.arg(&grants.program_name).args(&config.args);
        let env: Vec<(&String, &String)> = config.env.iter().collect();
        builder.envs(&env);
        if config.stdin == Stdin::Inherit {
            builder.inherit_stdin();
        }
        // The preopens are not the builder's (it opens each by name for
        // every instance): `fs` hands out duplicates of the descriptors
        // pinned when the component was loaded.
        grant_network(&mut builder, &config.network);
        if let Some(seed) = grants.replay_seed {
            replay::deterministic(&mut builder, seed);
        }
        let captured = match config.stdio {
            Stdio::Capture => {
                let pipes = (
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                );
                builder.stdout(pipes.0.clone()).stderr(pipes.1.clone());
                Some(pipes)
            }
            // Writes of either WASI version go through `output`'s bounded
            // queues, one account per stream for the instance, ended with
            // its context; `terminal-*` answers as the host's streams are.
            Stdio::Inherit => {
                use std::io::IsTerminal as _;
                let stderr = output::InstanceOutput::new(output::drain(true));
                let (stdout, stdout_terminal) = if stdout_to_stderr {
                    (stderr.shared(), std::io::stderr().is_terminal())
                } else {
                    (output::InstanceOutput::new(output::drain(false)), std::io::stdout().is_terminal())
                };
                builder.stdout(output::InheritedOutput::new(stdout, stdout_terminal));
                builder.stderr(output::InheritedOutput::new(stderr, std::io::stderr().is_terminal()));
                None
            }
            // The builder's default stdout and stderr drop what is written.
            _ => None,
        };
        // One HTTP object (a `fields`, an outgoing body's buffered chunks)
        // holds at most its share of the host-memory budget.
        let per_object = usize::try_from(host_bytes / MAX_WASI_OBJECTS as u64).unwrap_or(usize::MAX);
        let http_hooks = HttpHooks {
            grant: Arc::new(config.http.clone()),
            max_body_bytes: max_bytes,
            chunk_bytes: (per_object / 2).max(1),
            in_flight: Arc::new(AtomicUsize::new(0)),
            descriptors: 0,
            max_descriptors: grants.max_descriptors as usize,
            started: 0,
            max_started: grants.max_outgoing_requests as usize,
            hops: 0,
            deadline: None,
        };
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(per_object.min(128 * 1024));
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_OBJECTS);
        let mut denied = ResourceTable::new();
        denied.set_max_capacity(0);
        Self {
            ctx: builder.build(),
            table,
            captured,
            http,
            http_hooks,
            denied,
            disk: fs::DiskState::new(&grants.dirs, grants.max_descriptors),
            serving: false,
        }
    }

    fn filesystem(&mut self) -> fs::QuotaFs<'_> {
        let elsewhere = self.http_hooks.in_flight.load(Ordering::Acquire);
        let inner = WasiFilesystemCtxView { ctx: self.ctx.filesystem(), table: &mut self.table };
        fs::QuotaFs { inner, disk: &mut self.disk, elsewhere }
    }

    fn sockets(&mut self, allowed: bool) -> WasiSocketsCtxView<'_> {
        let table = if allowed { &mut self.table } else { &mut self.denied };
        WasiSocketsCtxView { ctx: self.ctx.sockets(), table }
    }

    /// `sockets` under the descriptor cap, which counts the instance's
    /// files, listings, sockets and outgoing HTTP connections.
    fn capped_sockets(&mut self, allowed: bool) -> sockets::CappedSocketsView<'_> {
        let table = if allowed { &mut self.table } else { &mut self.denied };
        sockets::CappedSocketsView {
            inner: WasiSocketsCtxView { ctx: self.ctx.sockets(), table },
            disk: &mut self.disk,
            in_flight: self.http_hooks.in_flight.load(Ordering::Acquire),
        }
    }

    fn http(&mut self, allowed: bool) -> WasiHttpCtxView<'_> {
        let table = if allowed { &mut self.table } else { &mut self.denied };
        WasiHttpCtxView { ctx: &mut self.http, table, hooks: &mut self.http_hooks }
    }

    /// Captured stdout and stderr past `since` (bytes of each written
    /// before the call began), as (lossy) UTF-8.
    pub(crate) fn captured(&self, since: (usize, usize)) -> Option<(String, String)> {
        let (stdout, stderr) = self.captured.as_ref()?;
        let text = |pipe: &MemoryOutputPipe, from: usize| {
            String::from_utf8_lossy(pipe.contents().get(from..).unwrap_or_default()).into_owned()
        };
        Some((text(stdout, since.0), text(stderr, since.1)))
    }

    /// Bytes captured so far on stdout and stderr.
    pub(crate) fn captured_lengths(&self) -> (usize, usize) {
        self.captured.as_ref().map_or((0, 0), |(stdout, stderr)| (stdout.contents().len(), stderr.contents().len()))
    }
}

/// Sockets as `network` grants: each use of an address is checked against
/// its list by wasmtime-wasi before the OS sees it.
fn grant_network(builder: &mut WasiCtxBuilder, network: &NetworkGrant) {
    let tcp = !network.tcp_connect.is_empty() || !network.tcp_bind.is_empty();
    builder.allow_tcp(tcp).allow_udp(!network.udp.is_empty()).allow_ip_name_lookup(network.ip_name_lookup);
    let network = Arc::new(network.clone());
    builder.socket_addr_check(move |address, use_| {
        let allowed = address_allowed(&network, address, use_);
        Box::pin(async move { allowed })
    });
}

fn address_allowed(network: &NetworkGrant, address: SocketAddr, use_: SocketAddrUse) -> bool {
    // Connecting and sending bind implicitly to the wildcard address first.
    let implicit = address.ip().is_unspecified() && address.port() == 0;
    let any = |patterns: &[runtime_manifest::AddressPattern]| patterns.iter().any(|pattern| pattern.matches(address));
    match use_ {
        SocketAddrUse::TcpConnect => any(&network.tcp_connect),
        SocketAddrUse::TcpBind => any(&network.tcp_bind) || (implicit && !network.tcp_connect.is_empty()),
        SocketAddrUse::TcpListen => any(&network.tcp_bind),
        SocketAddrUse::TcpAccept => !network.tcp_bind.is_empty(),
        SocketAddrUse::UdpBind => any(&network.udp) || (implicit && !network.udp.is_empty()),
        _ => any(&network.udp),
    }
}

/// Where a TCP socket of `family` that listens unbound is bound first, if
/// not where wasmtime-wasi binds it: it binds to the unspecified address
/// (every interface), which a loopback-only grant refuses; there it is
/// bound to the family's loopback, which the grant allows. `None` leaves it
/// to wasmtime-wasi.
fn implicit_listen_address(network: &NetworkGrant, ipv6: bool) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    let (unspecified, loopback) = match ipv6 {
        false => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::LOCALHOST.into()),
        true => (Ipv6Addr::UNSPECIFIED.into(), Ipv6Addr::LOCALHOST.into()),
    };
    let listens = |ip| address_allowed(network, SocketAddr::new(ip, 0), SocketAddrUse::TcpListen);
    (!listens(unspecified) && listens(loopback)).then(|| SocketAddr::new(loopback, 0))
}

/// Outgoing HTTP as `[wasi.http]` grants: a request to any other origin
/// fails with `HTTP-request-denied`, which the guest sees as its error code;
/// request and response bodies are cut at the memory budget.
struct HttpHooks {
    grant: Arc<HttpGrant>,
    max_body_bytes: u64,
    /// The largest write to an outgoing body; one chunk is buffered.
    chunk_bytes: usize,
    /// Requests whose connection is open, each a socket the host holds.
    in_flight: Arc<AtomicUsize>,
    /// The instance's other descriptors, as of its last outgoing call.
    descriptors: usize,
    /// The instance's descriptor cap, which in-flight requests share.
    max_descriptors: usize,
    /// Requests the instance started, and how many it may.
    started: usize,
    max_started: usize,
    /// Hops of the served request this instance answers (0 when it serves none).
    hops: u32,
    /// The deadline of the call in progress, which every request carries.
    deadline: Option<runtime_limits::clock::Instant>,
}

/// The header that counts how many served requests led to a request: the
/// server sets it on every outgoing request (one more than its own) and
/// answers `508 Loop Detected` past [`MAX_HOPS`].
pub const HOPS_HEADER: &str = "x-wasm-runtime-hops";
/// The header that carries, in milliseconds, what is left of the deadline
/// of the request that caused an outgoing request; a server of this runtime
/// gives the request no longer than that.
pub const DEADLINE_HEADER: &str = "x-wasm-runtime-deadline-ms";
/// How many served requests may lead to one another.
pub const MAX_HOPS: u32 = 8;
/// Outgoing requests all instances of the process may have in flight.
pub const MAX_OUTGOING_REQUESTS_PER_PROCESS: usize = 1024;

/// Outgoing requests in flight in the process.
static OUTGOING_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One outgoing request's place among the instance's and the process's
/// in-flight requests, given back when its connection ends (or the request
/// is dropped).
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        OUTGOING_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The timeouts of `options`, each cut to what is left before `deadline`.
fn within(
    options: Option<wasmtime_wasi_http::RequestOptions>,
    left: std::time::Duration,
) -> wasmtime_wasi_http::RequestOptions {
    let mut options = options.unwrap_or_default();
    for timeout in [&mut options.connect_timeout, &mut options.first_byte_timeout, &mut options.between_bytes_timeout] {
        *timeout = Some(timeout.map_or(left, |own| own.min(left)));
    }
    options
}

type HttpFuture<T> = Box<dyn Future<Output = Result<T, wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for HttpHooks {
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        1
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.chunk_bytes
    }

    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: HttpFuture<()>,
    ) -> HttpFuture<(http::Response<wasmtime_wasi_http::WasiBody>, HttpFuture<()>)> {
        drop(fut);
        let uri = request.uri();
        let allowed = match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => self.grant.allows(scheme, authority.as_str()),
            _ => false,
        };
        if !allowed {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // Work stays bounded by the request that caused it: a count of
        // requests per instance, the call's deadline carried along, a hop
        // count that a server of this runtime refuses past `MAX_HOPS`.
        let left = self.deadline.map(|at| at.saturating_duration_since(runtime_limits::clock::Instant::now()));
        if left.is_some_and(|left| left.is_zero()) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionTimeout) });
        }
        if self.started >= self.max_started {
            return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionLimitReached) });
        }
        if self.in_flight.fetch_add(1, Ordering::AcqRel) + self.descriptors >= self.max_descriptors {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionLimitReached) });
        }
        if OUTGOING_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_OUTGOING_REQUESTS_PER_PROCESS {
            OUTGOING_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Box::new(async { Err(wasmtime_wasi_http::Error::ConnectionLimitReached) });
        }
        self.started += 1;
        let place = InFlight(self.in_flight.clone());
        let mut request = request;
        let headers = request.headers_mut();
        headers.insert(HOPS_HEADER, http::HeaderValue::from(self.hops.saturating_add(1)));
        let options = match left {
            Some(left) => {
                let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                headers.insert(DEADLINE_HEADER, http::HeaderValue::from(millis));
                Some(within(options, left))
            }
            None => options,
        };
        let limit = usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX);
        let request = request.map(|body| {
            http_body_util::Limited::new(body, limit)
                .map_err(move |_| wasmtime_wasi_http::Error::HttpRequestBodySize(Some(limit as u64)))
                .boxed_unsync()
        });
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io = async move {
                let _place = place;
                io.await
            };
            let response = response.map(|body| {
                http_body_util::Limited::new(body, limit)
                    .map_err(move |_| wasmtime_wasi_http::Error::HttpResponseBodySize(Some(limit as u64)))
                    .boxed_unsync()
            });
            Ok((response, Box::new(io) as HttpFuture<()>))
        })
    }
}

/// The WASI context of `state`'s store, made on its first WASI call from
/// its component's grants (none: a component loaded without them).
fn wasi_state<T>(state: &mut StoreState<T>) -> &mut WasiState {
    static NO_GRANTS: std::sync::LazyLock<WasiGrants> = std::sync::LazyLock::new(WasiGrants::default);
    state.extension_or_insert_with(|state| {
        let grants = state.capabilities().layer::<WasiGrants>().unwrap_or(&NO_GRANTS);
        WasiState::new(grants, state.memory_limit_bytes(), state.host_memory_bytes(), state.stdout_to_stderr())
    })
}

/// `wasi:http` for a store the host serves an incoming request to.
pub trait IncomingHttp {
    /// The store's `wasi:http` state, for a host that serves it an incoming
    /// request: `new_incoming_request` and `new_response_outparam` put the
    /// request and the response's slot in its table. From this call on the
    /// guest may use `wasi:http/types` (to read the request and answer it)
    /// without an outgoing grant; `wasi:http/outgoing-handler` still needs
    /// one. Everything the request holds counts against the store's caps.
    fn incoming_http(&mut self) -> WasiHttpCtxView<'_> {
        self.incoming_http_after(0)
    }

    /// [`incoming_http`](Self::incoming_http) for a request that `hops`
    /// served requests led to (its [`HOPS_HEADER`]): every request the guest
    /// sends carries one more.
    fn incoming_http_after(&mut self, hops: u32) -> WasiHttpCtxView<'_>;

    /// The `wasi:http` state of a store already serving a request, as it
    /// is: for the accessors wasmtime-wasi-http calls while a WASI 0.3
    /// response streams (its table holds the response's body and trailers).
    fn served_http(&mut self) -> WasiHttpCtxView<'_>;
}

impl<T> IncomingHttp for StoreState<T> {
    fn incoming_http_after(&mut self, hops: u32) -> WasiHttpCtxView<'_> {
        let state = wasi_state(self);
        state.http_hooks.hops = hops;
        state.serving = true;
        state.http(true)
    }

    fn served_http(&mut self) -> WasiHttpCtxView<'_> {
        let state = wasi_state(self);
        state.http(state.serving)
    }
}

impl WasiView for WasiState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

impl StoreExtension for WasiState {
    fn captured_output(&self, since: (usize, usize)) -> Option<(String, String)> {
        self.captured(since)
    }

    fn captured_lengths(&self) -> (usize, usize) {
        WasiState::captured_lengths(self)
    }

    fn disk_usage(&self) -> Vec<runtime_core::DiskUsage> {
        self.disk.usage()
    }

    fn exit_status(&self, error: &wasmtime::Error) -> Option<i32> {
        error.downcast_ref::<wasmtime_wasi::I32Exit>().map(|exit| exit.0)
    }

    /// wasmtime-wasi-http traps when a `fields` would outgrow its share of
    /// the host-memory budget (the field size limit set from it) or hold
    /// more entries than `http::HeaderMap` can.
    fn overdrew_host_budget(&self, error: &wasmtime::Error) -> bool {
        use wasmtime_wasi_http::FieldMapError;
        matches!(
            error.downcast_ref::<FieldMapError>(),
            Some(FieldMapError::TotalSizeTooBig | FieldMapError::TooManyFields)
        )
    }
}

/// The resource table of WASI's `wasi:io` interfaces.
struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// The longest `wasi:io/error.to-debug-string` the host formats, in bytes.
pub const MAX_DEBUG_STRING_BYTES: usize = 4 * 1024;

/// `wasi:io/error` with a bounded `to-debug-string`: wasmtime-wasi formats
/// the error with `{:?}`, which symbolizes the host's own backtrace when
/// `RUST_BACKTRACE` is set (about 200 MB from one call on a release build).
/// Here it is the error's message chain, cut at [`MAX_DEBUG_STRING_BYTES`].
struct IoErrors;

impl HasData for IoErrors {
    type Data<'a> = IoErrorsView<'a>;
}

struct IoErrorsView<'a>(&'a mut ResourceTable);

impl bindings::io::error::Host for IoErrorsView<'_> {}

impl bindings::io::error::HostError for IoErrorsView<'_> {
    fn to_debug_string(&mut self, error: Resource<wasmtime::Error>) -> wasmtime::Result<String> {
        let mut text = format!("{:#}", self.0.get(&error)?);
        if text.len() > MAX_DEBUG_STRING_BYTES {
            let mut end = MAX_DEBUG_STRING_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Ok(text)
    }

    fn drop(&mut self, error: Resource<wasmtime::Error>) -> wasmtime::Result<()> {
        self.0.delete(error)?;
        Ok(())
    }
}

/// `state`, told that the guest now calls `interface`.
fn enter<'a, T>(state: &'a mut StoreState<T>, interface: &'static str) -> &'a mut StoreState<T> {
    state.enter_host_function(HostFunction::Wasi(interface));
    state
}

// An interface that needs a grant the manifest lacks sees an empty table
// that holds nothing, and the call hook fails the call when it returns.
fn gate<'a, T>(state: &'a mut StoreState<T>, interface: &'static str, needs: Capability) -> Gated<'a> {
    state.enter_host_function(HostFunction::Wasi(interface));
    let serving = needs == Capability::HttpTypes && state.extension::<WasiState>().is_some_and(|wasi| wasi.serving);
    let allowed = serving || state.capabilities().layer::<WasiGrants>().is_some_and(|grants| grants.allows(needs));
    if !allowed {
        state.deny(CapabilityDenied::new(interface, needs.grant()));
    }
    let deadline = state.deadline_instant();
    let wasi = wasi_state(state);
    wasi.http_hooks.deadline = Some(deadline);
    Gated { wasi, allowed }
}

/// Adds WASI p2 to `linker` as `wasmtime_wasi::p2::add_to_linker_async`
/// does, interface by interface from wasmtime-wasi's own bindings, with one
/// difference: each interface's accessor first tells the store which
/// interface is called. That is how WASI calls enter the host-call phase
/// (so the deadline covers a guest blocked in `poll`), are counted and timed
/// in the report, and how a WASI failure is reported as `host-error` naming
/// its interface rather than as a guest's fault. [`add_wasi_p3_to_linker`]
/// links the WASI 0.3 interfaces beside them the same way.
pub fn add_wasi_to_linker<T: Send + 'static>(linker: &mut Linker<StoreState<T>>) -> wasmtime::Result<()> {
    use bindings::{cli, clocks, filesystem, io, random, sockets};

    use Capability::{Http, HttpTypes, Network};
    let l = linker;
    io::error::add_to_linker::<_, IoErrors>(l, |t| IoErrorsView(wasi_state(enter(t, "wasi:io/error")).ctx().table))?;
    io::poll::add_to_linker::<_, Io>(l, |t| wasi_state(enter(t, "wasi:io/poll")).ctx().table)?;
    io::streams::add_to_linker::<_, Io>(l, |t| wasi_state(enter(t, "wasi:io/streams")).ctx().table)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |t| wasi_state(enter(t, "wasi:clocks/wall-clock")).clocks())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |t| {
        wasi_state(enter(t, "wasi:clocks/monotonic-clock")).clocks()
    })?;
    filesystem::preopens::add_to_linker::<_, fs::QuotaFilesystem>(l, |t| {
        wasi_state(enter(t, "wasi:filesystem/preopens")).filesystem()
    })?;
    filesystem::types::add_to_linker::<_, fs::QuotaFilesystem>(l, |t| {
        wasi_state(enter(t, "wasi:filesystem/types")).filesystem()
    })?;
    random::random::add_to_linker::<_, WasiRandom>(l, |t| wasi_state(enter(t, "wasi:random/random")).random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |t| wasi_state(enter(t, "wasi:random/insecure")).random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |t| {
        wasi_state(enter(t, "wasi:random/insecure-seed")).random()
    })?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/exit")).cli())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/environment")).cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stdin")).cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stdout")).cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stderr")).cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-input")).cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-output")).cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-stdin")).cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-stdout")).cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-stderr")).cli())?;
    sockets::tcp_create_socket::add_to_linker::<_, CappedSockets>(l, |t| {
        gate(t, "wasi:sockets/tcp-create-socket", Network).capped_sockets()
    })?;
    sockets::instance_network::add_to_linker::<_, WasiSockets>(l, |t| {
        gate(t, "wasi:sockets/instance-network", Network).sockets()
    })?;
    sockets::network::add_to_linker::<_, WasiSockets>(l, &Default::default(), |t| {
        gate(t, "wasi:sockets/network", Network).sockets()
    })?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, |t| {
        gate(t, "wasi:sockets/ip-name-lookup", Network).sockets()
    })?;
    sockets::tcp::add_to_linker::<_, CappedSockets>(l, |t| gate(t, "wasi:sockets/tcp", Network).capped_sockets())?;
    sockets::udp::add_to_linker::<_, WasiSockets>(l, |t| gate(t, "wasi:sockets/udp", Network).sockets())?;
    sockets::udp_create_socket::add_to_linker::<_, CappedSockets>(l, |t| {
        gate(t, "wasi:sockets/udp-create-socket", Network).capped_sockets()
    })?;
    use wasmtime_wasi_http::p2::bindings::{LinkOptions, http};
    http::outgoing_handler::add_to_linker::<_, WasiHttp>(l, |t| {
        gate(t, "wasi:http/outgoing-handler", Http).outgoing_http()
    })?;
    http::types::add_to_linker::<_, WasiHttp>(l, &LinkOptions::default().into(), |t| {
        gate(t, "wasi:http/types", HttpTypes).http()
    })?;
    Ok(())
}

/// The WASI state as a gated interface's accessor sees it.
struct Gated<'a> {
    wasi: &'a mut WasiState,
    allowed: bool,
}

impl<'a> Gated<'a> {
    fn sockets(self) -> WasiSocketsCtxView<'a> {
        self.wasi.sockets(self.allowed)
    }

    fn http(self) -> WasiHttpCtxView<'a> {
        self.wasi.http(self.allowed)
    }

    /// `http`, with the descriptors the instance holds now, which its
    /// requests in flight share a cap with.
    fn outgoing_http(self) -> WasiHttpCtxView<'a> {
        self.wasi.http_hooks.descriptors = fs::open_descriptors(&mut self.wasi.table, &mut self.wasi.disk);
        self.wasi.http(self.allowed)
    }

    fn capped_sockets(self) -> sockets::CappedSocketsView<'a> {
        self.wasi.capped_sockets(self.allowed)
    }
}
