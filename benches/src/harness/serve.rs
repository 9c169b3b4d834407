//! `cargo xtask bench serve`: `wasm-runtime serve`'s library against a bare
//! server built from hyper and wasmtime-wasi-http's `Proxy` bindings with the
//! same engine configuration (what `wasmtime serve` does, pooling on), both
//! in this process, driven by the same load generator, interleaved round by
//! round. With a `wasmtime` binary on `PATH` (or `WASMTIME=path`), its
//! `serve` is measured on the same guest too.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use runtime::{ComponentManifest, Runtime};
use runtime_http::{HttpService, ServeOptions, Server};
use wasmtime::component::Component;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use super::bare::BareHost;
use super::{Row, row};

/// How long each load round lasts, per server.
const ROUND: Duration = Duration::from_millis(1500);
/// Rounds per concurrency, alternating the servers.
const ROUNDS: usize = 3;

fn guest() -> PathBuf {
    attacks::support::workspace_root().join("fixtures/guests/rust-http.wasm")
}

/// The rows of `cargo xtask bench serve`.
pub(super) fn serve_rows() -> Result<Vec<Row>, String> {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    tokio.block_on(async {
        let ours = start_ours(4).await?;
        let bare = start_bare().await?;
        let wasmtime = WasmtimeServe::start().await?;
        let mut rows = Vec::new();
        for concurrency in [1, 16, 64] {
            let (o, b, w) = interleave(concurrency, "/hello", ours, bare, wasmtime.as_ref().map(|w| w.addr)).await?;
            rows.push(row(label("req/s", concurrency), o.per_second, Some(b.per_second), ">= 1.00x bare", |r| {
                r >= 1.0
            }));
            rows.push(row(label("p50 µs", concurrency), o.p50_us, Some(b.p50_us), "report only", |_| true));
            rows.push(row(label("p99 µs", concurrency), o.p99_us, Some(b.p99_us), "<= 1.10x bare", |r| r <= 1.1));
            if let Some(w) = w {
                rows.push(row(
                    label("req/s vs wasmtime serve", concurrency),
                    o.per_second,
                    Some(w.per_second),
                    "report only",
                    |_| true,
                ));
            }
        }
        rows.push(rss_per_in_flight().await?);
        rows.extend(sleeping_thousand().await?);
        Ok(rows)
    })
}

fn label(what: &str, concurrency: usize) -> String {
    format!("serve /hello {what}, concurrency {concurrency}")
}

/// Throughput and latency of one load round.
#[derive(Clone, Copy)]
struct Load {
    per_second: f64,
    p50_us: f64,
    p99_us: f64,
    non_200: usize,
}

async fn interleave(
    concurrency: usize,
    path: &'static str,
    ours: SocketAddr,
    bare: SocketAddr,
    wasmtime: Option<SocketAddr>,
) -> Result<(Load, Load, Option<Load>), String> {
    let (mut o, mut b, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        o.push(load(ours, path, concurrency, ROUND).await?);
        b.push(load(bare, path, concurrency, ROUND).await?);
        if let Some(addr) = wasmtime {
            w.push(load(addr, path, concurrency, ROUND).await?);
        }
    }
    let best = |loads: Vec<Load>| loads.into_iter().max_by(|x, y| x.per_second.total_cmp(&y.per_second));
    let (o, b) = (best(o).ok_or("no rounds")?, best(b).ok_or("no rounds")?);
    Ok((o, b, best(w)))
}

/// `concurrency` clients, each on its own kept-alive connection, sending
/// `GET path` back to back for `duration`.
async fn load(addr: SocketAddr, path: &'static str, concurrency: usize, duration: Duration) -> Result<Load, String> {
    let until = Instant::now() + duration;
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        clients.spawn(async move {
            let mut latencies = Vec::new();
            let mut non_200 = 0;
            let mut sender = connect(addr).await?;
            while Instant::now() < until {
                let started = Instant::now();
                let request = hyper::Request::get(path)
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let response = match sender.send_request(request).await {
                    Ok(response) => response,
                    // The server closed the connection (a 503 may): reconnect.
                    Err(_) => {
                        non_200 += 1;
                        sender = connect(addr).await?;
                        continue;
                    }
                };
                let ok = response.status() == http::StatusCode::OK;
                let _ = response.into_body().collect().await;
                if ok {
                    latencies.push(started.elapsed().as_secs_f64() * 1e6);
                } else {
                    non_200 += 1;
                }
            }
            Ok::<_, String>((latencies, non_200))
        });
    }
    let (mut latencies, mut non_200) = (Vec::new(), 0);
    while let Some(joined) = clients.join_next().await {
        let (mut some, failed) = joined.map_err(|e| e.to_string())??;
        latencies.append(&mut some);
        non_200 += failed;
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(f64::NAN);
    Ok(Load {
        per_second: latencies.len() as f64 / duration.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        non_200,
    })
}

async fn connect(addr: SocketAddr) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(sender)
}

fn manifest(timeout: &str) -> Result<ComponentManifest, String> {
    let text = format!(
        "[component]\nname = \"rust-http\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"{timeout}\"\n"
    );
    text.parse().map_err(|e: runtime::manifest::Error| e.to_string())
}

/// The runtime's server with every limit on, on a free port.
async fn start_ours(queue_seconds: u64) -> Result<SocketAddr, String> {
    let runtime =
        Runtime::builder().queue(100_000, Duration::from_secs(queue_seconds)).build().map_err(|e| e.to_string())?;
    let component = runtime.load_file(guest(), &manifest("10s")?, ".").map_err(|e| e.to_string())?;
    let service = HttpService::new(component, ServeOptions::default()).map_err(|e| e.to_string())?;
    let server = Server::bind(service, "127.0.0.1:0".parse().map_err(|_| "addr")?, false).map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(server.run(std::future::pending()));
    Ok(addr)
}

/// hyper and wasmtime-wasi-http as `wasmtime serve -Scli` wires them: a
/// fresh store per request, all of WASI linked, fuel and an epoch deadline
/// set as the shared engine configuration requires, nothing else.
async fn start_bare() -> Result<SocketAddr, String> {
    let engine = super::bare::engine()?;
    let component = Component::from_file(&engine, guest()).map_err(|e| e.to_string())?;
    let linker = super::bare::wasi_linker(&engine)?;
    let pre =
        ProxyPre::new(linker.instantiate_pre(&component).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let pre = Arc::new((engine, pre));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let pre = pre.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let pre = pre.clone();
                async move { Ok::<_, Infallible>(bare_handle(&pre.0, &pre.1, request).await) }
            });
            tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    Ok(addr)
}

type BareBody = http_body_util::combinators::UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>;

async fn bare_handle(
    engine: &Engine,
    pre: &ProxyPre<BareHost>,
    request: hyper::Request<Incoming>,
) -> hyper::Response<BareBody> {
    let mut store = Store::new(engine, BareHost::new());
    let _ = store.set_fuel(10_000_000_000);
    store.set_epoch_deadline(1_000_000);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let pre = pre.clone();
    let task = tokio::spawn(async move {
        let proxy: Proxy = pre.instantiate_async(&mut store).await?;
        let request = store.data_mut().http().new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        proxy.wasi_http_incoming_handler().call_handle(&mut store, request, out).await
    });
    match receiver.await {
        Ok(Ok(response)) => response,
        _ => {
            let _ = task.await;
            let mut response = hyper::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// `wasmtime serve` on the same guest, when a binary is on `PATH`.
struct WasmtimeServe {
    child: std::process::Child,
    addr: SocketAddr,
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl WasmtimeServe {
    async fn start() -> Result<Option<Self>, String> {
        let binary = std::env::var("WASMTIME").unwrap_or_else(|_| "wasmtime".into());
        if std::process::Command::new(&binary).arg("--version").output().is_err() {
            eprintln!("(no `{binary}` to compare with: set WASMTIME=path to add `wasmtime serve`)");
            return Ok(None);
        }
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?;
        let child = std::process::Command::new(&binary)
            .args(["serve", "-Scli", "-Opooling-allocator", "--addr", &port.to_string()])
            .arg(guest())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        while std::net::TcpStream::connect(port).is_err() {
            if started.elapsed() > Duration::from_secs(60) {
                return Err("wasmtime serve did not start within 60 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(Self { child, addr: port }))
    }
}

/// Host RSS per request in flight: 500 requests sleeping in the guest.
async fn rss_per_in_flight() -> Result<Row, String> {
    const IN_FLIGHT: usize = 500;
    let addr = start_ours(30).await?;
    load(addr, "/hello", 4, Duration::from_millis(300)).await?;
    let before = super::own::rss_bytes()? / 1024;
    let mut sleepers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        sleepers.spawn(async move {
            let mut sender = connect(addr).await?;
            let request = hyper::Request::get("/sleep?ms=1500")
                .header("host", "bench")
                .body(Empty::new())
                .map_err(|e| e.to_string())?;
            let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
            let _ = response.into_body().collect().await;
            Ok::<_, String>(())
        });
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let during = super::own::rss_bytes()? / 1024;
    while let Some(joined) = sleepers.join_next().await {
        joined.map_err(|e| e.to_string())??;
    }
    let per_request = during.saturating_sub(before) as f64 / IN_FLIGHT as f64;
    Ok(row("serve: host RSS per in-flight request (KiB, 500 sleeping)", per_request, None, "report only", |_| true))
}

/// 1,000 clients calling a handler that sleeps 10 ms, bounded by the pool:
/// requests per second, and the share of 503s.
async fn sleeping_thousand() -> Result<[Row; 2], String> {
    let addr = start_ours(1).await?;
    let loaded = load(addr, "/sleep?ms=10", 1000, Duration::from_secs(3)).await?;
    let total = loaded.per_second * 3.0 + loaded.non_200 as f64;
    Ok([
        row("serve /sleep?ms=10 req/s, concurrency 1,000", loaded.per_second, None, "report only", |_| true),
        row(
            "serve /sleep?ms=10 share of 503 (%), concurrency 1,000",
            100.0 * loaded.non_200 as f64 / total.max(1.0),
            None,
            "report only",
            |_| true,
        ),
    ])
}
