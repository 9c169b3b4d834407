//! `wasm-runtime serve`: the CLI contract, driven over real sockets on
//! 127.0.0.1 with a plain HTTP/1.1 client written on `std::net`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::TestResult;

const GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-http.wasm");

/// A `serve` process (killed when dropped), its address and its stderr.
struct Served {
    child: crate::KillOnDrop,
    addr: SocketAddr,
    stderr: BufReader<std::process::ChildStderr>,
}

/// Starts `wasm-runtime serve GUEST ARGS --addr 127.0.0.1:0` (the Rust
/// guest) and reads its one `listening on` line.
fn start(args: &[&str]) -> Result<Served, Box<dyn std::error::Error>> {
    start_serving(GUEST, args)
}

/// [`start`] for any component.
fn start_serving(guest: &str, args: &[&str]) -> Result<Served, Box<dyn std::error::Error>> {
    let mut child = crate::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
            .arg("serve")
            .arg(guest)
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let (addr, stderr) = listening(&mut child)?;
    Ok(Served { child, addr, stderr })
}

/// Reads a starting server's first stderr line, which must be `listening
/// on`: its address, and the rest of its stderr.
fn listening(
    child: &mut crate::KillOnDrop,
) -> Result<(SocketAddr, BufReader<std::process::ChildStderr>), Box<dyn std::error::Error>> {
    let mut stderr = BufReader::new(child.0.stderr.take().ok_or("no stderr")?);
    let mut line = String::new();
    stderr.read_line(&mut line)?;
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .ok_or_else(|| format!("the first stderr line is not `listening on`: {line:?}"))?
        .parse()?;
    Ok((addr, stderr))
}

/// `GET path` on a new connection: the status, the `x-wasm-runtime-kind`
/// header and the body.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, Option<String>, String), Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // HTTP/1.0: the body ends with the connection, never chunked.
    write!(stream, "GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no end of head")?;
    let status = head.split(' ').nth(1).ok_or("no status")?.parse()?;
    let kind = head.lines().find_map(|line| line.strip_prefix("x-wasm-runtime-kind: ")).map(str::to_owned);
    Ok((status, kind, body.to_owned()))
}

const LIMITS: &[&str] = &["--memory", "4MiB", "--fuel", "200000000", "--timeout", "1s"];

#[test]
fn serve_answers_names_failures_logs_each_request_and_drains_on_sigterm() -> TestResult {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let metrics_flag = metrics.to_string();
    let mut args = LIMITS.to_vec();
    args.extend(["--metrics-addr", &metrics_flag]);
    let mut served = start(&args)?;
    let (status, kind, body) = get(served.addr, "/hello")?;
    assert_eq!((status, kind, body.as_str()), (200, None, "hello from rust\n"));
    let (status, kind, _) = get(served.addr, "/spin")?;
    assert_eq!((status, kind.as_deref()), (500, Some("out-of-fuel")));
    assert_eq!(get(served.addr, "/hello")?.0, 200, "the server keeps serving");

    let (status, _, text) = get(metrics, "/metrics")?;
    assert_eq!(status, 200);
    assert!(text.contains("wasm_runtime_requests_total{kind=\"out-of-fuel\"} 1"), "{text}");
    let serving = "wasm_runtime_serving_info{handler=\"wasi:http/incoming-handler@0.2.";
    assert!(text.contains(serving), "{text}");

    let pid = served.child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status()?.success());
    let exit = served.child.0.wait()?;
    assert_eq!(exit.code(), Some(0), "SIGTERM drains and exits 0");
    let mut log = String::new();
    served.stderr.read_to_string(&mut log)?;
    let lines: Vec<&str> = log.lines().filter(|line| line.contains("request")).collect();
    assert_eq!(lines.len(), 3, "one log line per request:\n{log}");
    assert!(lines[1].contains("status=500") && lines[1].contains("kind=out-of-fuel"), "{}", lines[1]);
    assert!(lines[0].contains("method=GET") && lines[0].contains("path=/hello"), "{}", lines[0]);
    Ok(())
}

#[test]
fn serve_refuses_a_component_without_an_incoming_handler_with_exit_2() -> TestResult {
    let wat = crate::scratch(
        "serve-plain.wat",
        r#"(component (core module $m (func (export "f"))) (core instance $i (instantiate $m))
          (func (export "greet") (canon lift (core func $i "f"))))"#,
    )?;
    let path = wat.to_str().ok_or("path")?;
    let mut args = vec!["serve", path];
    args.extend(LIMITS);
    let output = crate::wasm_runtime(&args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wasi:http/incoming-handler") && stderr.contains("greet"), "{stderr}");
    Ok(())
}

#[test]
fn compile_fills_a_cache_that_run_and_serve_then_load_from() -> TestResult {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compile-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let dir = cache.to_str().ok_or("path")?;
    let inspect = crate::wasm_runtime(&["inspect", GUEST, "--cache-dir", dir])?;
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("compile cache: not cached"));

    let compiled = crate::wasm_runtime(&["compile", GUEST, "--cache-dir", dir])?;
    let stderr = String::from_utf8_lossy(&compiled.stderr);
    assert_eq!(compiled.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("compiled in").count(), 2, "one entry for `run`, one for `serve`: {stderr}");
    let inspect = crate::wasm_runtime(&["inspect", GUEST, "--cache-dir", dir])?;
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("compile cache: cached"));
    let again = crate::wasm_runtime(&["compile", GUEST, "--cache-dir", dir])?;
    assert_eq!(String::from_utf8_lossy(&again.stderr).matches("already cached").count(), 2);

    let refused = crate::wasm_runtime(&["compile", "/dev/null", "--cache-dir", dir])?;
    assert_eq!(refused.status.code(), Some(2), "a load error exits 2");
    Ok(())
}

#[test]
fn two_servers_starting_together_share_one_cache_and_one_port() -> TestResult {
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shared-serve-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
            .arg("serve")
            .arg(GUEST)
            .args(LIMITS)
            .args(["--addr", &port.to_string(), "--reuse-port", "--cache-dir"])
            .arg(&cache)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
    };
    let mut servers = [crate::KillOnDrop(spawn()?), crate::KillOnDrop(spawn()?)];
    for server in &mut servers {
        let mut line = String::new();
        BufReader::new(server.0.stderr.as_mut().ok_or("no stderr")?).read_line(&mut line)?;
        assert_eq!(line.trim_end(), format!("listening on http://{port}"), "both bind the one port");
    }
    for _ in 0..8 {
        assert_eq!(get(port, "/hello")?.0, 200);
    }
    for server in &mut servers {
        let _ = Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status()?;
        assert_eq!(server.0.wait()?.code(), Some(0));
    }
    // Both compiled at most once each and left one whole entry: a third
    // process finds it.
    let entries: Vec<_> = std::fs::read_dir(&cache)?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "one pooled-engine entry: {entries:?}");
    let third = crate::wasm_runtime(&["compile", GUEST, "--cache-dir", cache.to_str().ok_or("path")?])?;
    assert!(String::from_utf8_lossy(&third.stderr).contains("for `serve`: already cached"));
    Ok(())
}

#[test]
fn serve_runs_a_javascript_fetch_handler_under_a_widened_policy() -> TestResult {
    let policy = crate::scratch("serve-js-policy.toml", crate::toolchains::WIDE_POLICY)?;
    let cache = format!("{}/toolchain-cache", env!("CARGO_TARGET_TMPDIR"));
    let guest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/js-http.wasm");
    let policy = policy.to_str().ok_or("path")?;
    let limits = ["--memory", "48MiB", "--fuel", "2000000000", "--timeout", "5s"];
    let mut args = vec!["--policy", policy, "--cache-dir", &cache];
    args.extend(limits);
    let served = start_serving(guest, &args)?;
    assert_eq!(get(served.addr, "/hello")?, (200, None, "hello from js\n".to_owned()));
    let (status, kind, _) = get(served.addr, "/spin")?;
    assert_eq!((status, kind.as_deref()), (500, Some("out-of-fuel")));
    assert_eq!(get(served.addr, "/nowhere")?.0, 404);
    Ok(())
}

#[test]
fn a_compile_past_the_policys_hard_limits_is_killed_and_typed() -> TestResult {
    // The 13 MB JavaScript guest under the widened budget, but with one
    // second of compile time, then 256 MiB of address space: the worker
    // process is stopped, the host is not, and nothing is cached.
    let guest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/js-http.wasm");
    for (limit, value) in [("max-compile-time", "\"1s\""), ("max-compile-memory", "\"256MiB\"")] {
        let text = crate::toolchains::WIDE_POLICY.replace("[compile]\n", &format!("[compile]\n{limit} = {value}\n"));
        let policy = crate::scratch(&format!("compile-limit-{limit}.toml"), &text)?;
        let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("compile-limit-{limit}"));
        let _ = std::fs::remove_dir_all(&cache);
        let policy = policy.to_str().ok_or("path")?;
        let dir = cache.to_str().ok_or("path")?;
        let compile = |wasm: &str| crate::wasm_runtime(&["compile", wasm, "--policy", policy, "--cache-dir", dir]);
        let started = std::time::Instant::now();
        let output = compile(guest)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{limit}: {stderr}");
        assert!(stderr.contains("compile_limit_exceeded") && stderr.contains(limit), "{limit}: {stderr}");
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{limit}: the worker was not stopped");
        let left: Vec<_> = std::fs::read_dir(&cache)?.filter_map(Result::ok).map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "{limit}: the cache holds {left:?}");
        // Under the same limit a small component compiles.
        let small = compile(GUEST)?;
        assert_eq!(small.status.code(), Some(0), "{limit}: {}", String::from_utf8_lossy(&small.stderr));
    }
    Ok(())
}

const P3_GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-p3-http.wasm");

/// `POST path` with `body` on a new connection: the status and the body.
fn post(addr: SocketAddr, path: &str, body: &str) -> Result<(u16, String), Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "POST {path} HTTP/1.0\r\nhost: {addr}\r\ncontent-length: {}\r\n\r\n{body}", body.len())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no end of head")?;
    Ok((head.split(' ').nth(1).ok_or("no status")?.parse()?, body.to_owned()))
}

#[test]
fn serve_answers_a_wasi_0_3_service_under_the_same_deadline_and_logs() -> TestResult {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let metrics_flag = metrics.to_string();
    let mut args = LIMITS.to_vec();
    args.extend(["--metrics-addr", &metrics_flag]);
    let mut served = start_serving(P3_GUEST, &args)?;
    let (status, kind, body) = get(served.addr, "/")?;
    assert_eq!((status, kind, body.as_str()), (200, None, "hello from p3\n"));
    assert_eq!(post(served.addr, "/echo", "streamed back")?, (200, "streamed back".to_owned()));
    let (status, _, body) = get(served.addr, "/stream?chunks=5")?;
    assert_eq!((status, body.len()), (200, 5 * 1024), "a body the guest's task streams after answering");
    assert_eq!(get(served.addr, "/sleep?ms=10")?.0, 200, "a wait within the deadline");
    let (status, kind, _) = get(served.addr, "/sleep?ms=60000")?;
    assert_eq!((status, kind.as_deref()), (500, Some("deadline-exceeded")), "a wait past the 1 s deadline");
    assert_eq!(get(served.addr, "/missing")?.0, 404);
    assert_eq!(get(served.addr, "/")?.0, 200, "the server keeps serving");
    // The `listening` line came first; the served handler is logged next.
    let mut line = String::new();
    served.stderr.read_line(&mut line)?;
    assert!(line.contains("handler=wasi:http/handler@0.3.0"), "{line}");
    let mut logged = String::new();
    for _ in 0..7 {
        served.stderr.read_line(&mut logged)?;
    }
    assert!(logged.contains("path=/ status=200 kind=ok"), "{logged}");
    assert!(logged.contains("path=/sleep status=500 kind=deadline-exceeded"), "{logged}");
    let (_, _, text) = get(metrics, "/metrics")?;
    assert!(text.contains("wasm_runtime_serving_info{handler=\"wasi:http/handler@0.3.0\"} 1"), "{text}");
    assert!(text.contains("wasm_runtime_requests_total{kind=\"deadline-exceeded\"} 1"), "{text}");
    Ok(())
}

#[test]
fn a_wasi_0_3_service_reaches_granted_origins_only() -> TestResult {
    let origin = crate::command::http_server(5, 1)?;
    let policy = crate::scratch("p3-http-policy.toml", "[grants]\nhttp = true\n")?;
    let policy = policy.display().to_string();
    let allow = format!("http://{origin}");
    let mut args = LIMITS.to_vec();
    args.extend(["--policy", &policy, "--allow-http", &allow]);
    let served = start_serving(P3_GUEST, &args)?;
    let (status, _, body) = get(served.addr, &format!("/fetch?authority={origin}"))?;
    assert_eq!((status, body.as_str()), (200, "fetched 200\n"), "a granted origin");
    let (status, _, body) = get(served.addr, "/fetch?authority=127.0.0.1:9")?;
    assert_eq!((status, body.trim()), (502, "ErrorCode::HttpRequestDenied"), "another origin: the guest's error");
    // Without any grant, `wasi:http/client` gives the component nothing.
    let served = start_serving(P3_GUEST, LIMITS)?;
    let (status, kind, _) = get(served.addr, &format!("/fetch?authority={origin}"))?;
    assert_eq!((status, kind.as_deref()), (500, Some("capability-denied")));
    Ok(())
}

#[test]
#[cfg(unix)]
fn serve_fits_its_default_concurrency_to_a_low_descriptor_limit_without_a_warning() -> TestResult {
    // `ulimit -n 300` (soft and hard): 1,000 instances x 16 descriptors
    // cannot fit, so the default concurrency is sized to what does.
    let script =
        "ulimit -n 300 && exec \"$0\" serve \"$1\" --memory 4MiB --fuel 100000000 --timeout 1s --addr 127.0.0.1:0";
    let mut child = crate::KillOnDrop(
        Command::new("sh")
            .args(["-c", script, env!("CARGO_BIN_EXE_wasm-runtime"), GUEST])
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let (addr, mut stderr) = listening(&mut child)?;
    let (status, _, body) = get(addr, "/hello")?;
    assert_eq!((status, body.trim_end()), (200, "hello from rust"));
    drop(child);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest)?;
    assert!(!rest.contains("descriptor limit"), "no warning at a default start: {rest}");
    Ok(())
}
