//! Each request's contract: the guest's answer, or a status and a kind.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use runtime::{ComponentManifest, Runtime};
use runtime_http::{HttpService, ServeError, ServeOptions};

use crate::client::{get, send};
use crate::{LIMITS, TestResult, serve};

/// One runtime for these tests: engines are costly to create.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::builder().build().unwrap_or_else(|error| panic!("cannot build the runtime: {error}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_answers_hello_and_echoes_the_request() -> TestResult {
    let running = serve(runtime(), LIMITS, ServeOptions::default()).await?;
    let hello = get(running.addr, "/hello").await?;
    assert_eq!((hello.status, hello.text().as_str()), (StatusCode::OK, "hello from rust\n"));
    assert_eq!(hello.kind(), None, "a guest's own answer carries no kind");

    let request = Request::post("/echo?a=1&b=two")
        .header("host", running.addr.to_string())
        .header("x-test", "yes")
        .body(Full::new(Bytes::from_static(b"the body")))?;
    let echo = send(running.addr, request).await?;
    let text = echo.text();
    assert_eq!(echo.status, StatusCode::OK, "{text}");
    for line in ["method: POST", "path: /echo", "query: a=1&b=two", "header x-test: yes", "body: the body"] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }
    let missing = get(running.addr, "/nowhere").await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "the guest's own status passes through");
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_guest_is_500_naming_its_kind_and_the_server_keeps_serving() -> TestResult {
    let running = serve(runtime(), LIMITS, ServeOptions::default()).await?;
    for (path, kind) in
        [("/spin", "out-of-fuel"), ("/alloc?mib=16", "memory-limit-exceeded"), ("/panic", "unreachable")]
    {
        let failed = get(running.addr, path).await?;
        assert_eq!((failed.status, failed.kind()), (StatusCode::INTERNAL_SERVER_ERROR, Some(kind)), "{path}");
        let hello = get(running.addr, "/hello").await?;
        assert_eq!(hello.status, StatusCode::OK, "after {path}");
    }
    // Under the budget the same route succeeds.
    let allocated = get(running.addr, "/alloc?mib=1").await?;
    assert_eq!(allocated.status, StatusCode::OK, "{}", allocated.text());
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deadline_covers_the_guest_and_its_blocked_host_calls() -> TestResult {
    let limits = "memory = \"4MiB\"\nfuel = 10_000_000_000\ntimeout = \"300ms\"";
    let running = serve(runtime(), limits, ServeOptions::default()).await?;
    for path in ["/spin", "/sleep?ms=5000"] {
        let started = std::time::Instant::now();
        let failed = get(running.addr, path).await?;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {}", failed.text());
        assert_eq!(failed.kind(), Some("deadline-exceeded"), "{path}");
        assert!(started.elapsed() < std::time::Duration::from_secs(4), "{path} was not stopped at its deadline");
    }
    let slept = get(running.addr, "/sleep?ms=10").await?;
    assert_eq!((slept.status, slept.text().as_str()), (StatusCode::OK, "slept 10 ms\n"));
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_another_caused_gets_what_its_cause_had_left_and_a_chain_ends() -> TestResult {
    let limits = "memory = \"4MiB\"\nfuel = 10_000_000_000\ntimeout = \"10s\"";
    let running = serve(runtime(), limits, ServeOptions::default()).await?;
    let caused = |path: &str, hops: u32, left_ms: u64| {
        Request::get(path)
            .header("host", running.addr.to_string())
            .header(runtime::wasi::HOPS_HEADER, hops)
            .header(runtime::wasi::DEADLINE_HEADER, left_ms)
            .body(Full::new(Bytes::new()))
    };
    // 300 ms left of its cause's deadline: stopped then, not at its own 10 s.
    let started = std::time::Instant::now();
    let slept = send(running.addr, caused("/sleep?ms=5000", 1, 300)?).await?;
    assert_eq!(slept.kind(), Some("deadline-exceeded"), "{}", slept.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "it ran past what its cause had left");
    // Within the hop limit it is served; past it, refused before any instance.
    let within = send(running.addr, caused("/hello", runtime::wasi::MAX_HOPS, 5_000)?).await?;
    assert_eq!(within.status, StatusCode::OK, "{}", within.text());
    let looped = send(running.addr, caused("/hello", runtime::wasi::MAX_HOPS + 1, 5_000)?).await?;
    assert_eq!((looped.status, looped.kind()), (StatusCode::LOOP_DETECTED, Some("loop-detected")));
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_over_the_limit_is_413_and_one_under_it_is_served() -> TestResult {
    let running = serve(runtime(), LIMITS, ServeOptions::default().with_max_request_body(1024)).await?;
    let post = |size: usize| {
        Request::post("/echo").header("host", running.addr.to_string()).body(Full::new(Bytes::from(vec![b'a'; size])))
    };
    let refused = send(running.addr, post(2048)?).await?;
    assert_eq!((refused.status, refused.kind()), (StatusCode::PAYLOAD_TOO_LARGE, Some("request-too-large")));
    let served = send(running.addr, post(1000)?).await?;
    assert_eq!(served.status, StatusCode::OK);
    assert!(served.text().contains(&"a".repeat(1000)));
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_over_the_limit_is_413_whatever_the_guest_answers() -> TestResult {
    let options = ServeOptions::default().with_max_request_body(64 * 1024);
    let service = HttpService::new(crate::guest(runtime(), LIMITS)?, options)?;
    let metrics = service.metrics();
    let running = crate::Running::start(service).await?;
    let refused = send(running.addr, chunked_post(running.addr, "/echo", 72 * 1024, false)?).await?;
    assert_eq!((refused.status, refused.kind()), (StatusCode::PAYLOAD_TOO_LARGE, Some("request-too-large")));
    let served = send(running.addr, chunked_post(running.addr, "/echo", 32 * 1024, false)?).await?;
    assert_eq!(served.status, StatusCode::OK);
    assert!(served.text().contains(&"a".repeat(32 * 1024)));
    wait_until_ended(&metrics).await;
    // The metrics name the same kind as the header.
    assert_eq!((metrics.requests("request-too-large"), metrics.requests("ok")), (1, 1));
    running.stop(std::time::Duration::from_secs(5)).await
}

/// `size` bytes to `path` in 4 KiB chunks, then, with `stall`, never the end.
fn chunked_post(
    addr: std::net::SocketAddr,
    path: &str,
    size: usize,
    stall: bool,
) -> Result<Request<http_body_util::StreamBody<impl futures::Stream<Item = ChunkResult> + use<>>>, http::Error> {
    use futures::StreamExt as _;
    let chunks = (0..size / 4096).map(|_| Ok(hyper::body::Frame::data(Bytes::from(vec![b'a'; 4096]))));
    let end = if stall { futures::stream::pending().left_stream() } else { futures::stream::empty().right_stream() };
    let body = http_body_util::StreamBody::new(futures::stream::iter(chunks).chain(end));
    Request::post(path).header("host", addr.to_string()).body(body)
}

type ChunkResult = Result<hyper::body::Frame<Bytes>, std::convert::Infallible>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_answers_before_reading_its_chunked_body_still_gets_413_past_the_limit() -> TestResult {
    let options = ServeOptions::default().with_max_request_body(64 * 1024);
    let service = HttpService::new(crate::guest(runtime(), LIMITS)?, options)?;
    let metrics = service.metrics();
    let running = crate::Running::start(service).await?;
    // `/hello` answers without reading the body at all. Just past the limit,
    // so the client has written it all before the server answers and closes.
    let refused = send(running.addr, chunked_post(running.addr, "/hello", 72 * 1024, false)?).await?;
    assert_eq!((refused.status, refused.kind()), (StatusCode::PAYLOAD_TOO_LARGE, Some("request-too-large")));
    let served = send(running.addr, chunked_post(running.addr, "/hello", 32 * 1024, false)?).await?;
    assert_eq!((served.status, served.text().as_str()), (StatusCode::OK, "hello from rust\n"));
    // A body whose end never comes: the answer waits for it until the deadline.
    let started = std::time::Instant::now();
    let late = send(running.addr, chunked_post(running.addr, "/hello", 8 * 1024, true)?).await?;
    assert_eq!((late.status, late.kind()), (StatusCode::REQUEST_TIMEOUT, Some("request-timeout")));
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "answered {:?} after", started.elapsed());
    // A client that waits for `100 Continue` has sent nothing the guest did
    // not ask for: its answer goes out at once.
    let mut declined = chunked_post(running.addr, "/hello", 0, true)?;
    declined.headers_mut().insert(http::header::EXPECT, http::HeaderValue::from_static("100-continue"));
    let started = std::time::Instant::now();
    let answered = send(running.addr, declined).await?;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert!(started.elapsed() < std::time::Duration::from_millis(800), "answered {:?} after", started.elapsed());
    wait_until_ended(&metrics).await;
    let counted = (metrics.requests("request-too-large"), metrics.requests("ok"), metrics.requests("request-timeout"));
    assert_eq!(counted, (1, 2, 1));
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_streaming_at_the_deadline_ends_the_connection_abruptly() -> TestResult {
    let limits = "memory = \"4MiB\"\nfuel = 10_000_000_000\ntimeout = \"300ms\"";
    let running = serve(runtime(), limits, ServeOptions::default()).await?;
    // 4 GiB cannot be written in 300 ms: the head went out, the body cannot end cleanly.
    let cut = get(running.addr, "/stream?mib=4096").await?;
    assert_eq!(cut.status, StatusCode::OK);
    assert!(cut.body.is_err(), "a truncated body ended cleanly");
    // A short stream ends whole.
    let whole = get(running.addr, "/stream?mib=1").await?;
    assert_eq!(whole.body.as_ref().map(Bytes::len).ok(), Some(1 << 20));
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_that_is_not_text_is_the_clients_400() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let service = HttpService::new(crate::guest(runtime(), LIMITS)?, ServeOptions::default())?;
    let metrics = service.metrics();
    let running = crate::Running::start(service).await?;
    let mut stream = tokio::net::TcpStream::connect(running.addr).await?;
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: \xff\xfe.example\r\nconnection: close\r\n\r\n").await?;
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await??;
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 400"), "{text}");
    assert!(text.contains("x-wasm-runtime-kind: bad-request"), "{text}");
    wait_until_ended(&metrics).await;
    assert_eq!((metrics.requests("bad-request"), metrics.requests("usage")), (1, 0));
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    running.stop(std::time::Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_without_an_incoming_handler_is_refused_with_its_exports() -> TestResult {
    let wat = r#"(component (core module $m (func (export "f"))) (core instance $i (instantiate $m))
      (func (export "greet") (canon lift (core func $i "f"))))"#;
    let manifest: ComponentManifest =
        format!("[component]\nname = \"plain\"\nversion = \"0.1.0\"\n[resources]\n{LIMITS}").parse()?;
    let component = runtime().load_bytes(wat.as_bytes(), &manifest)?;
    match HttpService::new(component, ServeOptions::default()) {
        Err(ServeError::NotAProxy { exports }) => assert_eq!(exports, "greet"),
        other => panic!("served a component without a handler: {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_kind_and_are_served_as_prometheus_text() -> TestResult {
    let service = HttpService::new(crate::guest(runtime(), LIMITS)?, ServeOptions::default())?;
    let metrics = service.metrics();
    let running = crate::Running::start(service).await?;
    get(running.addr, "/hello").await?;
    get(running.addr, "/hello").await?;
    get(running.addr, "/spin").await?;
    wait_until_ended(&metrics).await;
    assert_eq!((metrics.requests("ok"), metrics.requests("out-of-fuel")), (2, 1));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = tokio::spawn(runtime_http::serve_metrics(listener, metrics, async move {
        let _ = stopped.await;
    }));
    let scraped = get(addr, "/metrics").await?;
    let text = scraped.text();
    assert_eq!(scraped.status, StatusCode::OK);
    for line in [
        "wasm_runtime_requests_total{kind=\"ok\"} 2",
        "wasm_runtime_requests_total{kind=\"out-of-fuel\"} 1",
        "wasm_runtime_requests_in_flight 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in:\n{text}");
    }
    assert!(text.contains("wasm_runtime_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("wasm_runtime_queue_wait_seconds_count 3"), "{text}");
    let _ = stop.send(());
    exporter.await?;
    running.stop(std::time::Duration::from_secs(5)).await
}

/// Waits (at most a second) until no request is in flight: a call's end is
/// counted once its task ends, just after its response.
async fn wait_until_ended(metrics: &runtime_http::ServeMetrics) {
    for _ in 0..100 {
        if metrics.in_flight() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A request's host state, which records that its instance ended with it.
#[derive(Default)]
struct Tenant {
    id: u32,
    ended: Arc<std::sync::Mutex<Vec<u32>>>,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if let Ok(mut ended) = self.ended.lock() {
            ended.push(self.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_gives_each_request_its_own_host_state() -> TestResult {
    let runtime = runtime::RuntimeBuilder::<Tenant>::new().build()?;
    let manifest: ComponentManifest =
        format!("[component]\nname = \"rust-http\"\nversion = \"0.1.0\"\n[resources]\n{LIMITS}").parse()?;
    let component = runtime.load_file(crate::guest_path(), &manifest, ".")?;
    let service = HttpService::new(component, ServeOptions::default())?;
    let ended = Arc::new(std::sync::Mutex::new(Vec::new()));
    let count = |ended: &Arc<std::sync::Mutex<Vec<u32>>>| ended.lock().map(|ended| ended.len()).unwrap_or(0);
    for id in [7, 8] {
        let request = Request::get("/sleep?ms=300").header("host", "x").body(Full::new(Bytes::new()))?;
        let handled = tokio::spawn({
            let (service, tenant) = (service.clone(), Tenant { id, ended: ended.clone() });
            async move { service.handle_with(request, tenant).await }
        });
        // The state lives in the request's instance while its guest sleeps.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(count(&ended), usize::try_from(id - 7)?, "tenant {id} was let go before its request ended");
        let response = handled.await?;
        assert_eq!(response.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(response.into_body()).await?.to_bytes();
        assert_eq!(&body[..], b"slept 300 ms\n");
    }
    // Each request's instance held its own state, and let it go when done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count(&ended) < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(ended.lock().map(|ended| ended.clone()).unwrap_or_default(), [7, 8]);
    Ok(())
}
