//! The listener: overload, slow and idle clients, connection caps, drain on
//! shutdown, and the host's memory and descriptors under load.

use std::time::Duration;

use http::StatusCode;
use runtime::{Allocation, Runtime};
use runtime_http::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::get;
use crate::{TestResult, serve};

/// A runtime whose admission queue holds `waiting` requests for `wait`.
fn runtime_with_queue(waiting: usize, wait: Duration) -> Result<Runtime, runtime::RuntimeError> {
    Runtime::builder().allocation(Allocation::OnDemand).queue(waiting, wait).build()
}

/// Sends `count` concurrent `path` requests; returns the statuses, each with
/// whether it carried `retry-after`.
async fn burst(addr: std::net::SocketAddr, path: &str, count: usize) -> Result<Vec<(StatusCode, bool)>, String> {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..count {
        let path = path.to_owned();
        requests.spawn(async move {
            let answer = get(addr, &path).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((answer.status, answer.headers.contains_key(http::header::RETRY_AFTER)))
        });
    }
    let mut statuses = Vec::with_capacity(count);
    while let Some(joined) = requests.join_next().await {
        statuses.push(joined.map_err(|e| e.to_string())??);
    }
    Ok(statuses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_slow_requests_get_200_or_503_with_retry_after() -> TestResult {
    let runtime = runtime_with_queue(1000, Duration::from_millis(100))?;
    let limits = "memory = \"4MiB\"\nfuel = 200_000_000\ntimeout = \"5s\"\ninstances = 20";
    let running = serve(&runtime, limits, ServeOptions::default()).await?;
    let statuses = burst(running.addr, "/sleep?ms=300", 300).await?;
    let ok = statuses.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    let unavailable: Vec<_> =
        statuses.iter().filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert_eq!(ok + unavailable.len(), 300, "only 200 and 503: {statuses:?}");
    assert!(ok >= 20, "the quota's 20 instances served: {ok}");
    assert!(!unavailable.is_empty(), "300 requests of 300 ms cannot all fit 20 slots within 100 ms of queueing");
    assert!(unavailable.iter().all(|(_, retry)| *retry), "every 503 carries retry-after");
    running.stop(Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spin_and_an_allocation_bomb_leave_healthy_requests_healthy() -> TestResult {
    let runtime = runtime_with_queue(1000, Duration::from_secs(5))?;
    let limits = "memory = \"4MiB\"\nfuel = 2_000_000_000\ntimeout = \"1s\"";
    let running = serve(&runtime, limits, ServeOptions::default()).await?;
    let addr = running.addr;
    let bombs = tokio::spawn(async move {
        let spins = burst(addr, "/spin", 4);
        let allocs = burst(addr, "/alloc?mib=64", 8);
        let (spins, allocs) = tokio::join!(spins, allocs);
        Ok::<_, String>((spins?, allocs?))
    });
    let healthy = burst(addr, "/hello", 50).await?;
    assert!(healthy.iter().all(|(status, _)| *status == StatusCode::OK), "{healthy:?}");
    let (spins, allocs) = bombs.await??;
    assert!(spins.iter().chain(&allocs).all(|(status, _)| *status == StatusCode::INTERNAL_SERVER_ERROR));
    running.stop(Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_do_not_block_a_request() -> TestResult {
    let _alone = measuring().await;
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let options = ServeOptions::default().with_header_timeout(Duration::from_millis(500));
    let running = serve(&runtime, crate::LIMITS, options).await?;
    // 500 client sockets and their 500 server sides in one process.
    runtime::cli_support::raise_descriptor_limit();
    let before = open_descriptors();
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(tokio::net::TcpStream::connect(running.addr).await?);
    }
    // One more that sends half a request head and stops.
    let mut partial = tokio::net::TcpStream::connect(running.addr).await?;
    partial.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n").await?;
    let hello = get(running.addr, "/hello").await?;
    assert_eq!(hello.status, StatusCode::OK, "a request beside 500 idle connections");
    // Each idle connection is closed by the server: reading sees the end.
    for stream in idle.iter_mut().chain(std::iter::once(&mut partial)) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await?;
        assert!(matches!(read, Ok(0) | Err(_)), "an idle connection was kept open");
    }
    drop(idle);
    drop(partial);
    // The server's side of them is gone too (the test shares its process).
    let mut after = open_descriptors();
    for _ in 0..50 {
        if after <= before + 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = open_descriptors();
    }
    assert!(after <= before + 8, "descriptors {before} before, {after} after");
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_trickled_a_byte_at_a_time_is_cut_at_the_header_timeout() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let options = ServeOptions::default().with_header_timeout(Duration::from_millis(500));
    let running = serve(&runtime, crate::LIMITS, options).await?;
    let mut stream = tokio::net::TcpStream::connect(running.addr).await?;
    stream.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\nx-slow: ").await?;
    let started = std::time::Instant::now();
    // A byte every 50 ms keeps the connection busy but never ends the head.
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if stream.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let mut byte = [0u8; 1];
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(1), stream.read(&mut byte)).await {
            closed = matches!(read, Ok(0) | Err(_));
            if closed {
                break;
            }
        }
    }
    assert!(closed, "a trickled head kept its connection for 10 s");
    assert!(started.elapsed() < Duration::from_secs(5), "cut after {:?}", started.elapsed());
    // A whole request still gets its answer.
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_of_too_many_or_too_large_fields_is_refused_before_any_instance() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let running = serve(&runtime, crate::LIMITS, ServeOptions::default()).await?;
    let many: String = (0..1_000).map(|i| format!("x-{i}: y\r\n")).collect();
    let large = format!("x-large: {}\r\n", "y".repeat(1 << 20));
    for (what, fields) in [("1,000 fields", many), ("a 1 MiB field", large)] {
        let mut stream = tokio::net::TcpStream::connect(running.addr).await?;
        let head = format!("GET /hello HTTP/1.1\r\nhost: x\r\n{fields}\r\n");
        // 431 (seen here), or a close if the server stops reading before the
        // head is all sent: either way no instance and no held connection.
        let _ = stream.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await?;
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "{what}: {text}");
    }
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let options = ServeOptions::default().with_max_connections(4).with_header_timeout(Duration::from_secs(30));
    let running = serve(&runtime, crate::LIMITS, options).await?;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(running.addr).await?);
    }
    let addr = running.addr;
    let mut fifth = tokio::spawn(async move { get(addr, "/hello").await.map(|a| a.status).map_err(|e| e.to_string()) });
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut fifth).await;
    assert!(waited.is_err(), "a fifth connection was served while four were open");
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(10), fifth).await???;
    assert_eq!(status, StatusCode::OK);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_lose_their_connections_at_the_deadline() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let options = ServeOptions::default().with_max_connections(4);
    // A one-second deadline (crate::LIMITS).
    let running = serve(&runtime, crate::LIMITS, options).await?;
    let started = std::time::Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        // A small receive window: the socket fills at once, and hyper stops
        // polling the body (and its deadline) however fast the host is.
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let mut stream = socket.connect(running.addr).await?;
        stream.write_all(b"GET /stream?mib=64 HTTP/1.1\r\nhost: x\r\n\r\n").await?;
        stalled.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fifth = tokio::time::timeout(Duration::from_secs(5), get(running.addr, "/hello")).await??;
    let waited = started.elapsed();
    assert_eq!(fifth.status, StatusCode::OK);
    assert!(waited < Duration::from_secs(2), "a fifth request waited {waited:?}, past the deadline + 1 s");
    assert!(waited > Duration::from_millis(900), "answered after {waited:?}: the four never held the cap");
    // Each stalled connection was closed by the server: what it holds ends.
    for stream in &mut stalled {
        let mut sink = Vec::new();
        // An end or a reset: only the timeout fails.
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink)).await?;
        assert!(sink.len() < 64 << 20, "a cut stream delivered all of its body");
    }
    // Normal requests are served whole afterwards.
    let whole = get(running.addr, "/stream?mib=1").await?;
    assert_eq!(whole.body.as_ref().map(bytes::Bytes::len).ok(), Some(1 << 20));
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_outlives_its_last_requests_deadline() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let running = serve(&runtime, crate::LIMITS, ServeOptions::default()).await?;
    let stream = tokio::net::TcpStream::connect(running.addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let host = running.addr.to_string();
    let request = || {
        http::Request::get("/hello").header("host", host.as_str()).body(http_body_util::Empty::<bytes::Bytes>::new())
    };
    for round in 0..2 {
        if round > 0 {
            // Past the deadline and the write grace, within the header timeout.
            tokio::time::sleep(Duration::from_millis(2_200)).await;
        }
        let response = sender.send_request(request()?).await?;
        assert_eq!(response.status(), StatusCode::OK, "round {round}");
        http_body_util::BodyExt::collect(response.into_body()).await?;
    }
    driver.abort();
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_holds_at_most_its_cap_and_still_answers() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let service = runtime_http::HttpService::new(crate::guest(&runtime, crate::LIMITS)?, ServeOptions::default())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let options = runtime_http::MetricsOptions::default().with_header_timeout(Duration::from_millis(500));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let exporter = tokio::spawn(runtime_http::serve_metrics_with(listener, service.metrics(), options, async move {
        let _ = stopped.await;
    }));
    runtime::cli_support::raise_descriptor_limit();
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(tokio::net::TcpStream::connect(addr).await?);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The server's side of the connections it took (the others wait in the
    // backlog), counted apart from what other tests of this process hold.
    let accepted = accepted_on(addr.port());
    let cap = runtime_http::DEFAULT_METRICS_MAX_CONNECTIONS;
    assert!(accepted <= cap + 4, "the metrics listener holds {accepted} connections, cap {cap}");
    assert!(accepted >= cap / 2, "it takes connections up to its cap: {accepted}");
    // Behind them in the backlog, a scrape is answered once idle ones time out.
    let started = std::time::Instant::now();
    let scraped = tokio::time::timeout(Duration::from_secs(10), get(addr, "/metrics")).await??;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5), "a scrape waited {:?}", started.elapsed());
    let _ = stop.send(());
    exporter.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unfinished_heads_stay_within_the_edge_budget() -> TestResult {
    let _alone = measuring().await;
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let running = serve(&runtime, crate::LIMITS, ServeOptions::default()).await?;
    runtime::cli_support::raise_descriptor_limit();
    // Warm up: the allocator's arenas for the server's connection tasks.
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    let before = resident_kib();
    // Just under each connection's share (64 KiB at 1,024 connections).
    let field = format!("x-pad: {}\r\n", "a".repeat(1_000));
    let head: String = std::iter::once(String::from("GET /hello HTTP/1.1\r\nhost: x\r\n"))
        .chain(std::iter::repeat_n(field, 60))
        .collect();
    let mut held = Vec::new();
    for _ in 0..1_000 {
        let mut stream = tokio::net::TcpStream::connect(running.addr).await?;
        stream.write_all(head.as_bytes()).await?;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grown = resident_kib().saturating_sub(before);
    let budget_kib = u64::try_from(runtime_http::EDGE_BUDGET / 1024)?;
    assert!(grown < budget_kib * 2, "1,000 unfinished heads of 60 KB grew the process by {grown} KiB");
    drop(held);
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_requests_in_flight_finish_and_accepts_no_more() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(1))?;
    let running = serve(&runtime, crate::LIMITS, ServeOptions::default()).await?;
    let addr = running.addr;
    let in_flight =
        tokio::spawn(async move { get(addr, "/sleep?ms=400").await.map(|a| a.text()).map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    running.stop(Duration::from_secs(10)).await?;
    assert_eq!(in_flight.await??, "slept 400 ms\n");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_memory_stays_bounded_over_many_requests() -> TestResult {
    let _alone = measuring().await;
    let runtime = runtime_with_queue(1000, Duration::from_secs(5))?;
    let running = serve(&runtime, crate::LIMITS, ServeOptions::default()).await?;
    // Warm up: allocator arenas and the first instances.
    burst(running.addr, "/alloc?mib=2", 20).await?;
    let before = resident_kib();
    for _ in 0..10 {
        let statuses = burst(running.addr, "/alloc?mib=2", 50).await?;
        assert!(statuses.iter().all(|(status, _)| *status == StatusCode::OK), "{statuses:?}");
    }
    let after = resident_kib();
    // 500 requests of 2 MiB each: what stays behind must be far less than what passed through.
    assert!(after.saturating_sub(before) < 100 * 1024, "RSS grew from {before} KiB to {after} KiB");
    running.stop(Duration::from_secs(5)).await
}

/// A service of the guest under `limits` on `runtime`, with its metrics.
async fn serve_counted(
    runtime: &Runtime,
    limits: &str,
) -> Result<(crate::Running, std::sync::Arc<runtime_http::ServeMetrics>), Box<dyn std::error::Error>> {
    let service = runtime_http::HttpService::new(crate::guest(runtime, limits)?, ServeOptions::default())?;
    let metrics = service.metrics();
    Ok((crate::Running::start(service).await?, metrics))
}

/// Waits (at most `within`) until `metrics` counted `count` requests of `kind`
/// and none is in flight; how long that took.
async fn counted(
    metrics: &runtime_http::ServeMetrics,
    kind: &'static str,
    count: u64,
    within: Duration,
) -> Result<Duration, String> {
    let started = std::time::Instant::now();
    while started.elapsed() < within {
        if metrics.requests(kind) >= count && metrics.in_flight() == 0 {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(format!("{} `{kind}` after {within:?} ({} in flight)", metrics.requests(kind), metrics.in_flight()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_gets_no_slot_by_its_deadline_is_503_then_not_500() -> TestResult {
    // The queue would wait 5 s; the request's deadline is what bounds it.
    let runtime = runtime_with_queue(1000, Duration::from_secs(5))?;
    let limits = "memory = \"4MiB\"\nfuel = 200_000_000\ntimeout = \"5s\"\ninstances = 1";
    let (running, metrics) = serve_counted(&runtime, limits).await?;
    let addr = running.addr;
    let occupant =
        tokio::spawn(async move { get(addr, "/sleep?ms=1500").await.map(|a| a.status).map_err(|e| e.to_string()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 300 ms left of a cause's deadline: no slot comes within it.
    let started = std::time::Instant::now();
    let mut waiting = tokio::task::JoinSet::new();
    for _ in 0..10 {
        waiting.spawn(async move {
            let request = http::Request::get("/hello")
                .header("host", addr.to_string())
                .header(runtime::wasi::DEADLINE_HEADER, 300)
                .body(http_body_util::Full::new(bytes::Bytes::new()))
                .map_err(|e| e.to_string())?;
            let answer = crate::client::send(addr, request).await.map_err(|e| e.to_string())?;
            let retry = answer.headers.contains_key(http::header::RETRY_AFTER);
            Ok::<_, String>((answer.status, answer.kind().map(str::to_owned), retry))
        });
    }
    while let Some(joined) = waiting.join_next().await {
        let (status, kind, retry) = joined??;
        assert_eq!((status, kind.as_deref(), retry), (StatusCode::SERVICE_UNAVAILABLE, Some("busy"), true));
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(900), "refused after {waited:?}, not at the 300 ms deadline");
    assert_eq!(occupant.await??, StatusCode::OK);
    assert_eq!(metrics.requests("deadline-exceeded"), 0);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_a_quota_of_one_is_200_or_503_with_retry_after_never_500() -> TestResult {
    let runtime = runtime_with_queue(1000, Duration::from_secs(5))?;
    // Waits of up to 5 s would outlast the 300 ms deadline many times over.
    let limits = "memory = \"4MiB\"\nfuel = 200_000_000\ntimeout = \"300ms\"\ninstances = 1";
    let (running, metrics) = serve_counted(&runtime, limits).await?;
    let started = std::time::Instant::now();
    let statuses = burst(running.addr, "/sleep?ms=40", 40).await?;
    let elapsed = started.elapsed();
    let ok = statuses.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    let unavailable = statuses.iter().filter(|(status, retry)| *status == StatusCode::SERVICE_UNAVAILABLE && *retry);
    assert_eq!(ok + unavailable.count(), 40, "only 200 and 503 with retry-after: {statuses:?}");
    assert!((1..40).contains(&ok), "{ok} of 40 served by one instance in 300 ms");
    assert!(elapsed < Duration::from_secs(2), "the burst took {elapsed:?}");
    counted(&metrics, "busy", 1, Duration::from_secs(2)).await?;
    assert_eq!(metrics.requests("deadline-exceeded"), 0);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_cancels_its_request_at_once_and_it_is_counted() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(10))?;
    let limits = "memory = \"4MiB\"\nfuel = 10_000_000_000\ntimeout = \"10s\"\ninstances = 1";
    let (running, metrics) = serve_counted(&runtime, limits).await?;
    // One waiting in its guest, one in the queue behind it, one reading a body.
    let mut sleeping = tokio::net::TcpStream::connect(running.addr).await?;
    sleeping.write_all(b"GET /sleep?ms=8000 HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut queued = tokio::net::TcpStream::connect(running.addr).await?;
    queued.write_all(b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Out of the queue at once, while the guest ahead of it still waits.
    drop(queued);
    let left = std::time::Instant::now();
    while metrics.requests("cancelled") < 1 && left.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(left.elapsed() < Duration::from_millis(500), "the queued request was cancelled {:?} after", left.elapsed());
    assert_eq!(metrics.in_flight(), 1, "the guest's request is still in flight");
    drop(sleeping);
    let took = counted(&metrics, "cancelled", 2, Duration::from_secs(2)).await?;
    assert!(took < Duration::from_millis(500), "the guest was cancelled {took:?} after its client left");
    // The slot is free: a streamed body whose reader leaves is cancelled too.
    let mut streaming = tokio::net::TcpStream::connect(running.addr).await?;
    streaming.write_all(b"GET /stream?mib=4096 HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut some = vec![0u8; 64 * 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), streaming.read(&mut some)).await??;
    assert!(read > 0, "no part of the body came");
    drop(streaming);
    let took = counted(&metrics, "cancelled", 3, Duration::from_secs(2)).await?;
    assert!(took < Duration::from_millis(500), "a stream cancelled {took:?} after its reader left");
    assert_eq!(metrics.requests("deadline-exceeded"), 0);
    // A client that stays gets its answer.
    assert_eq!(get(running.addr, "/hello").await?.status, StatusCode::OK);
    running.stop(Duration::from_secs(5)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_that_says_finish_lets_a_guest_whose_client_left_run_to_its_end() -> TestResult {
    let runtime = runtime_with_queue(100, Duration::from_secs(10))?;
    let limits =
        "memory = \"4MiB\"\nfuel = 10_000_000_000\ntimeout = \"10s\"\n[wasi.http]\non-client-gone = \"finish\"";
    let (running, metrics) = serve_counted(&runtime, limits).await?;
    let mut sleeping = tokio::net::TcpStream::connect(running.addr).await?;
    sleeping.write_all(b"GET /sleep?ms=600 HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = std::time::Instant::now();
    drop(sleeping);
    // It slept on: counted with its own end, not `cancelled`, after the rest of its 600 ms.
    let took = counted(&metrics, "ok", 1, Duration::from_secs(5)).await?;
    assert!(took > Duration::from_millis(300), "it ended {took:?} after its client left");
    // A stream whose reader leaves is read on to its end and thrown away.
    let mut streaming = tokio::net::TcpStream::connect(running.addr).await?;
    streaming.write_all(b"GET /stream?mib=8 HTTP/1.1\r\nhost: x\r\n\r\n").await?;
    let mut some = vec![0u8; 64 * 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), streaming.read(&mut some)).await??;
    assert!(read > 0, "no part of the body came");
    drop(streaming);
    counted(&metrics, "ok", 2, Duration::from_secs(5)).await?;
    assert_eq!((metrics.requests("cancelled"), left.elapsed() < Duration::from_secs(8)), (0, true));
    running.stop(Duration::from_secs(5)).await
}

/// Established connections on local `port` that a process has accepted:
/// the kernel lists a connection still in the backlog with inode 0.
fn accepted_on(port: u16) -> usize {
    let local = format!(":{port:04X}");
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let here = fields.get(1).is_some_and(|address| address.ends_with(&local));
            let established = fields.get(3) == Some(&"01");
            let accepted = fields.get(9).is_some_and(|inode| *inode != "0");
            here && established && accepted
        })
        .count()
}

/// Held by the tests that read the whole process's memory or descriptors,
/// so that two of them never measure each other.
async fn measuring() -> tokio::sync::MutexGuard<'static, ()> {
    static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    MEASURING.lock().await
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(Iterator::count).unwrap_or(0)
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
