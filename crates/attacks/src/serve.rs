//! Attacks on `wasm-runtime serve` as a client meets it: the real CLI on a
//! port of 127.0.0.1 serving the Rust `wasi:http/proxy` fixture, attacked
//! through plain sockets. Each case is judged on the status it got and on
//! the server process seen from outside: its resident memory and open
//! descriptors (from `/proc/PID`), and how long the next healthy `GET /hello`
//! took.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Case, Outcome, Verdict};

/// The deadline of every request unless a case says otherwise.
const DEADLINE: Duration = Duration::from_secs(1);
/// How long a healthy `GET /hello` may take beside an attack.
const HEALTHY: Duration = Duration::from_secs(1);
/// Descriptors the server may open beyond its baseline for a case's own
/// connections (the listener's, the compile cache's, a log line's).
const FD_SLACK: usize = 16;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case::new("serve", "4 clients never read, --max-connections 4", "GET / within deadline + 1 s", never_read),
        Case::new("serve", "1,000 unfinished heads of 60 KB", "RSS within the edge budget", unfinished_heads),
        Case::new("serve", "300 idle metrics connections", "descriptors within the metrics cap", idle_metrics),
        Case::new("serve", "hop header of 9", "508 loop-detected", hops),
        Case::new("serve", "deadline header 300 ms on /sleep?ms=5000", "500 deadline-exceeded by ~300 ms", deadline),
        Case::new("serve", "non-ASCII Host header", "400 bad-request", bad_host),
        Case::new("serve", "100 requests past a quota of 2", "200 or 503 with retry-after", quota_burst),
        Case::new("serve", "3,200 requests with a log nobody reads", "all served, GET / still fast", stalled_log),
        Case::new("serve", "a component that calls itself", "508 at hop 9, within the deadline", self_calling),
        Case::new("serve", "8 MiB chunked to a guest that answers unread", "413 request-too-large", chunked_unread),
        Case::new(
            "serve",
            "p3: 4 clients never read, --max-connections 4",
            "GET / within deadline + 1 s",
            p3_never_read,
        ),
        Case::new("serve", "p3: a handler awaiting past the deadline", "500 deadline-exceeded at ~1 s", p3_deadline),
        Case::new("serve", "p3: 100 requests past a quota of 2", "200 or 503 with retry-after", p3_quota_burst),
    ]
}

/// Which component a case serves.
#[derive(Clone, Copy)]
enum ServedGuest {
    /// `fixtures/guests/rust-http`: `wasi:http/incoming-handler@0.2`.
    P2,
    /// `fixtures/guests/rust-p3-http`: `wasi:http/handler@0.3`.
    P3,
}

impl ServedGuest {
    fn fixture(self) -> PathBuf {
        let name = match self {
            Self::P2 => "rust-http.wasm",
            Self::P3 => "rust-p3-http.wasm",
        };
        crate::workspace_root().join("fixtures/guests").join(name)
    }

    /// A path each answers `200` on at once.
    fn healthy_path(self) -> &'static str {
        match self {
            Self::P2 => "/hello",
            Self::P3 => "/",
        }
    }
}

/// A running `wasm-runtime serve`, killed when dropped.
struct Served {
    child: Child,
    addr: SocketAddr,
    /// Its stderr, held open and never read again (a stalled log reader),
    /// for the cases that ask for one.
    _stalled_log: Option<BufReader<std::process::ChildStderr>>,
    guest: ServedGuest,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    /// Serves the fixture under a manifest with `timeout` and `extra`
    /// `[resources]` lines, with `flags`; ready once it says where it listens.
    fn start(name: &str, timeout: &str, extra: &str, flags: &[&str]) -> Result<Self, String> {
        Self::start_logging(name, timeout, extra, flags, (true, 0))
    }

    /// [`start`](Self::start) for the WASI 0.3 service fixture.
    fn start_p3(name: &str, timeout: &str, extra: &str, flags: &[&str]) -> Result<Self, String> {
        Self::launch(ServedGuest::P3, name, (timeout, extra), flags, (true, 0))
    }

    /// [`start`](Self::start) on `port` (0: any); with `drained` false, its
    /// stderr is read up to the line that says where it listens and then
    /// never again.
    fn start_logging(
        name: &str,
        timeout: &str,
        extra: &str,
        flags: &[&str],
        drained_port: (bool, u16),
    ) -> Result<Self, String> {
        Self::launch(ServedGuest::P2, name, (timeout, extra), flags, drained_port)
    }

    fn launch(
        guest: ServedGuest,
        name: &str,
        (timeout, extra): (&str, &str),
        flags: &[&str],
        (drained, port): (bool, u16),
    ) -> Result<Self, String> {
        let binary = crate::cli_binary()?;
        let dir = crate::target_dir().join("adversarial/serve");
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let manifest = dir.join(format!("{name}.toml"));
        std::fs::write(&manifest, super::probe::manifest("4MiB", "10_000_000_000", timeout, extra))
            .map_err(|e| e.to_string())?;
        let mut command = Command::new(binary);
        command.arg("serve").arg(guest.fixture()).arg("--manifest").arg(&manifest);
        command.arg("--addr").arg(format!("127.0.0.1:{port}"));
        command.arg("--cache-dir").arg(crate::target_dir().join("adversarial/serve-cache")).args(flags);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tell, told) = mpsc::channel();
        // Drained to its end unless the case stalls it.
        let reader = std::thread::spawn(move || {
            let mut stderr = BufReader::new(stderr);
            let mut line = String::new();
            while stderr.read_line(&mut line).is_ok_and(|read| read > 0) {
                if let Some(addr) = line.trim().strip_prefix("listening on http://") {
                    let _ = tell.send(addr.to_owned());
                    if !drained {
                        return Some(stderr);
                    }
                }
                line.clear();
            }
            None
        });
        // Killed on any early return from here.
        let mut served = Self { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), _stalled_log: None, guest };
        let addr = told.recv_timeout(Duration::from_secs(60)).map_err(|_| "the server never said it listens")?;
        served.addr = addr.parse().map_err(|e| format!("listening on `{addr}`: {e}"))?;
        if !drained {
            served._stalled_log = reader.join().map_err(|_| "the log reader panicked")?;
        }
        Ok(served)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_mib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        kib >> 10
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map(Iterator::count).unwrap_or(0)
    }

    /// A `GET` its guest answers at once, on a new connection: its latency,
    /// if it was a 200.
    fn healthy(&self) -> Result<Duration, String> {
        let started = Instant::now();
        let path = self.guest.healthy_path();
        let (status, head) =
            exchange(self.addr, &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"))?;
        if status != 200 {
            return Err(format!("GET {path} was {status}: {}", first_line(&head)));
        }
        Ok(started.elapsed())
    }
}

/// Sends `raw` on a new connection and reads the answer to its end (at most
/// 10 s): the status and the head.
fn exchange(addr: SocketAddr, raw: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.write_all(raw.as_bytes()).map_err(|e| format!("write: {e}"))?;
    answer(stream)
}

/// Reads the answer on `stream` to its end (at most 10 s): the status and the head.
fn answer(stream: TcpStream) -> Result<(u16, String), String> {
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // An abrupt end after the head still tells the status.
    let _ = stream.take(1 << 20).read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {:?}", first_line(&text)))?;
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_ascii_lowercase();
    Ok((status, head))
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// Waits `pause` without the wall-clock sleep the house lint forbids.
fn pause(pause: Duration) {
    let until = Instant::now() + pause;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::park_timeout(left);
    }
}

/// A case's verdict from `attack`: pass when it says so, a host failure
/// when the server could not be driven at all.
fn judged(attack: impl FnOnce() -> Result<(bool, String), String>) -> Outcome {
    match attack() {
        Ok((true, observed)) => Outcome { observed, verdict: Verdict::Pass, figures: None },
        Ok((false, observed)) => Outcome { observed, verdict: Verdict::Escaped, figures: None },
        Err(error) => Outcome { observed: error, verdict: Verdict::HostFailure, figures: None },
    }
}

/// Four clients ask for 64 MiB and never read: the deadline closes their
/// connections whether or not they read, so a fifth is answered within the
/// deadline plus a second.
fn never_read() -> Outcome {
    judged(|| stalled_readers(Served::start("never-read", "1s", "", &["--max-connections", "4"])?, "/stream?mib=64"))
}

/// Four clients ask `path` (a body far larger than a socket holds) and never
/// read, at `--max-connections 4`: a fifth request is answered within the
/// deadline and a second, with memory and descriptors flat.
fn stalled_readers(served: Served, path: &str) -> Result<(bool, String), String> {
    served.healthy()?;
    let (rss, fds) = (served.rss_mib(), served.fds());
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(served.addr).map_err(|e| e.to_string())?;
        stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
        stalled.push(stream);
    }
    pause(Duration::from_millis(100));
    let held_fds = served.fds();
    served.healthy()?;
    let answered = started.elapsed();
    let grown = served.rss_mib().saturating_sub(rss);
    drop(stalled);
    let ok = answered < DEADLINE + Duration::from_secs(1) && grown < 64 && held_fds <= fds + 4 + FD_SLACK;
    Ok((ok, format!("answered after {} ms, +{grown} MiB, {fds}->{held_fds} fds", answered.as_millis())))
}

/// A thousand connections each hold 60 KB of a head they never finish:
/// each connection's buffer is its share of the edge budget.
fn unfinished_heads() -> Outcome {
    judged(|| {
        runtime::cli_support::raise_descriptor_limit();
        let served = Served::start("heads", "1s", "", &[])?;
        served.healthy()?;
        let rss = served.rss_mib();
        let field = format!("x-pad: {}\r\n", "a".repeat(1_000));
        let head: String = std::iter::once(String::from("GET /hello HTTP/1.1\r\nhost: x\r\n"))
            .chain(std::iter::repeat_n(field, 60))
            .collect();
        let mut held = Vec::with_capacity(1_000);
        for _ in 0..1_000 {
            let mut stream = TcpStream::connect(served.addr).map_err(|e| e.to_string())?;
            stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
            held.push(stream);
        }
        pause(Duration::from_millis(300));
        let grown = served.rss_mib().saturating_sub(rss);
        let latency = served.healthy()?;
        drop(held);
        let budget = (runtime_http::EDGE_BUDGET >> 20) as u64;
        let ok = grown < budget + 16 && latency < HEALTHY;
        Ok((ok, format!("+{grown} MiB (budget {budget}), GET / {} ms", latency.as_millis())))
    })
}

/// Idle connections to the metrics listener stop at its cap: the rest wait
/// in the kernel's backlog and hold no descriptor of the server's.
fn idle_metrics() -> Outcome {
    judged(|| {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let metrics = SocketAddr::from(([127, 0, 0, 1], port));
        let flag = metrics.to_string();
        let served = Served::start("metrics", "1s", "", &["--metrics-addr", &flag])?;
        let (status, _) = exchange(metrics, "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
        if status != 200 {
            return Err(format!("GET /metrics was {status}"));
        }
        let fds = served.fds();
        // At once: a connect the server does not accept waits in the
        // kernel (its backlog, then SYN retries) holding nothing of the server's.
        let (opened, streams) = mpsc::channel();
        for _ in 0..300 {
            let opened = opened.clone();
            std::thread::spawn(move || {
                let _ = opened.send(TcpStream::connect_timeout(&metrics, Duration::from_secs(1)).ok());
            });
        }
        drop(opened);
        let idle: Vec<TcpStream> = streams.iter().flatten().collect();
        let connected = idle.len();
        pause(Duration::from_millis(300));
        let held = served.fds();
        let latency = served.healthy()?;
        drop(idle);
        let cap = runtime_http::DEFAULT_METRICS_MAX_CONNECTIONS;
        let ok = held <= fds + cap + FD_SLACK && latency < HEALTHY;
        let observed =
            format!("{connected} connected, {fds}->{held} fds (cap {cap}), GET / {} ms", latency.as_millis());
        Ok((ok, observed))
    })
}

/// A request that says 9 served requests led to it is refused before any
/// instance.
fn hops() -> Outcome {
    let raw = "GET /hello HTTP/1.1\r\nhost: x\r\nx-wasm-runtime-hops: 9\r\nconnection: close\r\n\r\n";
    single("hops", "1s", raw, (508, "loop-detected"))
}

/// A request that says its cause had 300 ms left ends then, not at the
/// manifest's 10 s.
fn deadline() -> Outcome {
    let raw = "GET /sleep?ms=5000 HTTP/1.1\r\nhost: x\r\nx-wasm-runtime-deadline-ms: 300\r\nconnection: close\r\n\r\n";
    single("deadline", "10s", raw, (500, "deadline-exceeded"))
}

/// A Host header that is not text is the client's 400.
fn bad_host() -> Outcome {
    let raw = "GET /hello HTTP/1.1\r\nhost: \u{ff}\u{fe}.example\r\nconnection: close\r\n\r\n";
    single("host", "1s", raw, (400, "bad-request"))
}

/// One request expected to be answered `status` naming `expected` within 800 ms, then a
/// healthy one, with the server's memory and descriptors unchanged.
fn single(name: &str, timeout: &str, raw: &str, expected: (u16, &str)) -> Outcome {
    answered_once(name, timeout, |addr| exchange(addr, raw), expected, Some(Duration::from_millis(800)))
}

/// `ask` sends one request and reads its answer, expected to be `status`
/// naming `expected` (within `within`, if given), then a healthy one, with
/// the server's memory and descriptors unchanged.
fn answered_once(
    name: &str,
    timeout: &str,
    ask: impl FnOnce(SocketAddr) -> Result<(u16, String), String>,
    (status, expected): (u16, &str),
    within: Option<Duration>,
) -> Outcome {
    judged(|| {
        let served = Served::start(name, timeout, "", &[])?;
        served.healthy()?;
        let (rss, fds) = (served.rss_mib(), served.fds());
        let started = Instant::now();
        let (got, head) = ask(served.addr)?;
        let took = started.elapsed();
        let kind = head.lines().find_map(|line| line.strip_prefix("x-wasm-runtime-kind:")).map_or("none", str::trim);
        let latency = served.healthy()?;
        let (grown, after) = (served.rss_mib().saturating_sub(rss), served.fds());
        let in_time = within.is_none_or(|within| took < within);
        let ok = got == status && kind == expected && in_time && latency < HEALTHY && grown < 16;
        let ok = ok && after <= fds + FD_SLACK;
        let observed =
            format!("{got} {kind} in {} ms, GET / {} ms, +{grown} MiB", took.as_millis(), latency.as_millis());
        Ok((ok, observed))
    })
}

/// 8 MiB sent chunked (no declared length) to `/hello`, which answers
/// without reading its body, past a 4 MiB limit: the answer waits for the
/// body's end or limit, so the client is told 413, not the guest's 200.
fn chunked_unread() -> Outcome {
    answered_once("chunked-unread", "2s", chunked_past_the_limit, (413, "request-too-large"), None)
}

/// Sends 8 MiB chunked to `/hello` beside reading the answer (the server
/// answers as soon as the limit passes); the status and the head.
fn chunked_past_the_limit(addr: SocketAddr) -> Result<(u16, String), String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let sender = std::thread::spawn(move || {
        let head = "POST /hello HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
        let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
        chunk.extend(std::iter::repeat_n(b'a', 64 * 1024));
        chunk.extend(b"\r\n");
        let _ = writer.write_all(head.as_bytes());
        for _ in 0..128 {
            if writer.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let answered = answer(stream.try_clone().map_err(|e| e.to_string())?);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    answered
}

/// 100 concurrent requests of 100 ms at a quota of two instances: the
/// queue and the deadline turn the excess into 503 with retry-after, and
/// none into a 500 that would blame the guest.
fn quota_burst() -> Outcome {
    judged(|| burst_past_quota(Served::start("quota", "1s", "instances = 2\n", &[])?))
}

/// 100 requests of 100 ms at once to a server whose component's quota is
/// 2: only 200 and 503 with retry-after, within the deadline and two
/// seconds, memory and descriptors flat.
fn burst_past_quota(served: Served) -> Result<(bool, String), String> {
    served.healthy()?;
    let (rss, fds) = (served.rss_mib(), served.fds());
    let addr = served.addr;
    let started = Instant::now();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                exchange(addr, "GET /sleep?ms=100 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(clients.len());
    for client in clients {
        answers.push(client.join().map_err(|_| "a client thread panicked")??);
    }
    let took = started.elapsed();
    let ok_count = answers.iter().filter(|(status, _)| *status == 200).count();
    let refused = answers.iter().filter(|(status, head)| *status == 503 && head.contains("retry-after:")).count();
    let others: Vec<u16> =
        answers.iter().map(|(status, _)| *status).filter(|status| ![200, 503].contains(status)).collect();
    let latency = served.healthy()?;
    let (grown, after) = (served.rss_mib().saturating_sub(rss), served.fds());
    let ok = ok_count + refused == answers.len() && ok_count >= 2 && latency < HEALTHY && grown < 64;
    let ok = ok && took < DEADLINE + Duration::from_secs(2) && after <= fds + FD_SLACK;
    let observed = format!(
        "{ok_count} x 200, {refused} x 503, others {others:?}, {} ms, GET / {} ms, +{grown} MiB",
        took.as_millis(),
        latency.as_millis()
    );
    Ok((ok, observed))
}

/// The server's stderr stops being read after its first line: 3,200
/// requests log about 400 KB, far past a pipe's 64 KiB. Log lines are
/// dropped rather than waited for, so every request is still served.
fn stalled_log() -> Outcome {
    judged(|| {
        let served = Served::start_logging("stalled-log", "1s", "", &["--stdio", "inherit"], (false, 0))?;
        served.healthy()?;
        let addr = served.addr;
        let started = Instant::now();
        let clients: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut served = 0;
                    for _ in 0..200 {
                        let request = "GET /hello HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
                        if exchange(addr, request).is_ok_and(|(status, _)| status == 200) {
                            served += 1;
                        }
                    }
                    served
                })
            })
            .collect();
        let mut served_count = 0;
        for client in clients {
            served_count += client.join().map_err(|_| "a client thread panicked")?;
        }
        let took = started.elapsed();
        let latency = served.healthy()?;
        let ok = served_count == 3_200 && latency < HEALTHY;
        let observed =
            format!("{served_count} of 3200 served in {} ms, GET / {} ms", took.as_millis(), latency.as_millis());
        Ok((ok, observed))
    })
}

/// The fixture's `/chain` calls `/chain` on its own origin, which it is
/// granted: each link carries one hop more and what is left of the first
/// request's deadline, so the chain ends at the ninth hop (508), answered
/// all the way back well within that deadline, and nothing runs on after.
fn self_calling() -> Outcome {
    judged(|| {
        // A free port, so that the grant can name the server's own origin.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let policy = crate::target_dir().join("adversarial/serve/http-policy.toml");
        std::fs::write(&policy, "[grants]\nhttp = true\n").map_err(|e| e.to_string())?;
        let origin = format!("http://127.0.0.1:{port}");
        let policy = policy.display().to_string();
        let flags = ["--policy", policy.as_str(), "--allow-http", origin.as_str()];
        let served = Served::start_logging("self-calling", "2s", "", &flags, (true, port))?;
        served.healthy()?;
        // Its own origin as the authority, which the guest calls.
        let started = Instant::now();
        let mut stream = TcpStream::connect(served.addr).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let request = format!("GET /chain HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut answer = String::new();
        let _ = stream.take(1 << 20).read_to_string(&mut answer);
        let took = started.elapsed();
        let first = first_line(&answer).to_owned();
        let links = answer.matches("chained 200").count();
        let looped = answer.contains("chained 508");
        let latency = served.healthy()?;
        let ok = first.contains(" 200 ") && links == 8 && looped && took < Duration::from_secs(2) && latency < HEALTHY;
        let observed = format!(
            "{links} links then 508, first `{first}` in {} ms, GET / {} ms",
            took.as_millis(),
            latency.as_millis()
        );
        Ok((ok, observed))
    })
}

/// [`never_read`] against a WASI 0.3 service, whose body its own task
/// streams (64 MiB in 1 KiB writes) after the response head went out.
fn p3_never_read() -> Outcome {
    judged(|| {
        let served = Served::start_p3("p3-never-read", "1s", "", &["--max-connections", "4"])?;
        stalled_readers(served, "/stream?chunks=65536")
    })
}

/// A WASI 0.3 handler that awaits a 60 s sleep: `500 deadline-exceeded`
/// at the request's 1 s deadline, then the server serves on.
fn p3_deadline() -> Outcome {
    judged(|| {
        let served = Served::start_p3("p3-deadline", "1s", "", &[])?;
        served.healthy()?;
        let started = Instant::now();
        let (status, head) =
            exchange(served.addr, "GET /sleep?ms=60000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
        let took = started.elapsed();
        let latency = served.healthy()?;
        let typed = status == 500 && head.contains("x-wasm-runtime-kind: deadline-exceeded");
        let ok = typed && took >= DEADLINE && took < DEADLINE + Duration::from_millis(800) && latency < HEALTHY;
        Ok((
            ok,
            format!("{status} in {} ms ({}), GET / {} ms", took.as_millis(), first_line(&head), latency.as_millis()),
        ))
    })
}

/// [`quota_burst`] against a WASI 0.3 service.
fn p3_quota_burst() -> Outcome {
    judged(|| burst_past_quota(Served::start_p3("p3-quota", "1s", "instances = 2\n", &[])?))
}
