//! Quotas and caps that must hold whatever the road to the resource: sparse
//! and positioned writes, links, trees deeper than `PATH_MAX`, unlinked files
//! still open, several processes on one grant, many instances of one
//! component in one process, a grant swapped for a link between instances,
//! accepted connections, in-flight requests, listings read to the end,
//! output permits shared by instances, and whom a host-side budget blames.
//!
//! Most run the real CLI through [`hold`]'s harness and are judged the same
//! way (bytes apparent and allocated, entries, peak descriptors, peak RSS,
//! the guest's own report); the in-process ones load the command fixture
//! through the library facade and run many instances of it at once.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio as ProcessStdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use runtime::{Allocation, ComponentManifest, Runtime};

use super::hold::{self, Attack, Run, kind, policy_file, says};
use super::{Case, Outcome, Verdict};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

pub(crate) fn cases(quick: bool) -> Vec<Case> {
    let mut cases = match attacks(quick) {
        Ok(attacks) => attacks.into_iter().map(Attack::case).collect(),
        Err(error) => {
            vec![Case::new("disk", "set up the quota attacks", "set up", move || super::probe::host_failure(error))]
        }
    };
    cases.push(Case::new("disk", "4 processes at once on one 2 MiB grant", "1 runs, 3 grant-busy", processes_at_once));
    cases.push(Case::new("disk", "16 instances in one process fill one grant", "1 MiB on disk in all", || {
        in_process_outcome(sixteen_fill())
    }));
    cases.push(Case::new("disk", "16 instances in one process create files", "100 entries in all", || {
        in_process_outcome(sixteen_files())
    }));
    cases.push(Case::new("disk", "8 instances one after another", "1 MiB on disk in all", || {
        in_process_outcome(eight_in_turn())
    }));
    cases.push(Case::new("disk", "a nested grant swapped for a link", "the later instance sees the original", || {
        in_process_outcome(swapped_grant())
    }));
    cases.push(Case::new("output", "32 instances obey check-write on one queue", "none trapped, all written", || {
        in_process_outcome(shared_output())
    }));
    cases
}

/// A number the guest printed after `word` (e.g. `wrote 42`), if any.
fn number_after(text: &str, word: &str) -> Option<u64> {
    let rest = text.split(word).nth(1)?;
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The line of `run`'s stdout that reports `action`.
fn line<'r>(run: &'r Run, action: &str) -> &'r str {
    run.stdout.lines().find(|line| line.contains(action)).unwrap_or("")
}

/// The guest reported `word N` on `action`'s line with N in `range`, and,
/// when `refused`, an error after it.
fn reported(
    action: &'static str,
    word: &'static str,
    range: std::ops::RangeInclusive<u64>,
    refused: bool,
) -> impl Fn(&Run) -> bool {
    move |run| {
        let line = line(run, action);
        number_after(line, word).is_some_and(|n| range.contains(&n)) && (!refused || line.contains(" ("))
    }
}

/// A free port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

/// A client that connects to `address` until `count` connections are made
/// or `hold` has passed, retrying while nothing listens, and holds every
/// connection open for `hold`.
fn connector(address: SocketAddr, count: usize, hold: Duration) -> impl FnOnce() {
    move || {
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut held: Vec<TcpStream> = Vec::new();
            while held.len() < count && started.elapsed() < hold {
                match TcpStream::connect_timeout(&address, Duration::from_millis(200)) {
                    Ok(stream) => held.push(stream),
                    // Not listening yet, or the backlog is full: try again.
                    Err(_) => std::thread::park_timeout(Duration::from_millis(20)),
                }
            }
            std::thread::park_timeout(hold.saturating_sub(started.elapsed()));
        });
    }
}

/// A manifest file with the suite's limits that grants binding `address`.
fn bind_manifest(name: &str, address: SocketAddr) -> Result<String, String> {
    let text = format!(
        "[component]\nname = \"{name}\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"{}\"\nfuel = 10_000_000_000\ntimeout = \"5s\"\n[wasi.network]\ntcp-bind = [\"{address}\"]\n",
        hold::MEMORY
    );
    let path = crate::target_dir().join("adversarial").join(format!("quota-{name}.toml"));
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path.display().to_string())
}

fn attacks(quick: bool) -> Result<Vec<Attack>, String> {
    let rw = ["--dir", "{data}::/data"];
    let q = ["--dir-max-bytes", "1MiB", "--dir-max-entries", "100"];
    let with_quota = |a: Attack| a.flags(&rw).flags(&q);
    let network = policy_file("network", "[grants]\nnetwork = true\n")?;
    let network_few = policy_file("network-few-fds", "[grants]\nnetwork = true\nmax-descriptors = 4\n")?;
    let http = policy_file("http", "[grants]\nhttp = true\n")?;
    let hold_for = Duration::from_secs(20);
    // Each accept attack has a port of its own and a client that connects 300 times.
    let accept = |name: &str, policy: &str| -> Result<(Vec<String>, String, SocketAddr), String> {
        let address = free_port()?;
        let manifest = bind_manifest(name, address)?;
        Ok((
            vec!["--manifest".into(), manifest, "--policy".into(), policy.to_owned()],
            format!("accept:{address}=300"),
            address,
        ))
    };
    let (accept_flags, accept_action, accept_address) = accept("accept", &network)?;
    let (few_flags, few_action, few_address) = accept("accept-few", &network_few)?;
    let (kept_flags, kept_action, kept_address) = accept("accept-kept", &network)?;
    let outgoing = Arc::new(AtomicUsize::new(0));
    let stalling = super::hold::silent_listener(500, Duration::from_secs(120), Arc::clone(&outgoing))?;
    // The same directory as `hold`'s listing attacks, built once by them.
    let big_dir = hold::scratch("big-listing");
    let entries = if quick { 30_000 } else { 100_000 };
    if hold::on_disk(&big_dir).1 < entries {
        std::fs::create_dir_all(&big_dir).map_err(|e| e.to_string())?;
        for i in 0..entries {
            std::fs::write(big_dir.join(format!("entry-{i:06}")), b"").map_err(|e| e.to_string())?;
        }
    }
    let counted = hold::on_disk(&big_dir).1;
    let big = format!("{}::/big", big_dir.display());
    let deep = "deep:/data=30,1048576";
    let attacks = vec![
        // Sparse and positioned writes: charged as allocated, never past the quota.
        with_quota(Attack::new("disk", "one byte through a stream at 64 MiB - 1", "insufficient-space"))
            .actions(&["swrite:/data/s=67108863"])
            .disk(MIB, 100)
            .shows(|run| line(run, "swrite:").contains("insufficient-space")),
        with_quota(Attack::new("disk", "64 sparse files of 512 KiB by streams", "2 made, then refused"))
            .actions(&["sparse:/data=64,524287"])
            .disk(MIB, 100)
            .shows(reported("sparse:", "made", 1..=2, true)),
        with_quota(Attack::new("disk", "streams opened at 256 KiB steps", "4 written, then refused"))
            .actions(&["swrites:/data/s=262144,64"])
            .disk(MIB, 100)
            .shows(reported("swrites:", "wrote", 3..=4, true)),
        with_quota(Attack::new("disk", "positioned writes into a set-size hole", "256 written, then refused"))
            .actions(&["truncate:/data/h=1000000", "pwrites:/data/h=4096,512"])
            .disk(MIB, 100)
            .shows(|run| {
                line(run, "truncate:").ends_with(" ok") && reported("pwrites:", "wrote", 200..=256, true)(run)
            }),
        // Links: every name is an entry, whatever it points at.
        with_quota(Attack::new("disk", "2,000 dangling symlinks", "100 entries"))
            .actions(&["symlinks:/data=2000"])
            .disk(MIB, 100)
            .shows(reported("symlinks:", "made", 1..=100, true)),
        Attack::new("disk", "create through 2,050 dangling symlinks", "50 entries")
            .flags(&rw)
            .flags(&["--dir-max-bytes", "1MiB", "--dir-max-entries", "50"])
            .actions(&["danglecreate:/data=2050"])
            .disk(MIB, 50)
            .shows(reported("danglecreate:", "created", 0..=25, true)),
        // Depth: the grant is measured through descriptors, however deep.
        with_quota(Attack::new("disk", "a tree past PATH_MAX, three runs", "1 MiB in all"))
            .before(&["--dir", "{data}::/data", "--dir-max-bytes", "1MiB", "--dir-max-entries", "100"], &[deep])
            .before(&["--dir", "{data}::/data", "--dir-max-bytes", "1MiB", "--dir-max-entries", "100"], &[deep])
            .actions(&[deep])
            .disk(MIB, 100)
            .shows(reported("deep:", "wrote", 0..=0, true)),
        // Unlinked files stay charged while they are open.
        with_quota(Attack::new("disk", "15 unlinked files of 1 MB held open", "1 MiB held at most"))
            .actions(&["holdunlinked:/data=15,1000000"])
            .disk(MIB, 100)
            .held(MIB)
            .shows(|run| {
                let line = line(run, "holdunlinked:");
                number_after(line, "filled").is_some_and(|n| n <= 1)
                    && number_after(line, "wrote").is_some_and(|n| (1_000_000..=MIB).contains(&n))
            }),
        with_quota(Attack::new("disk", "an unlinked file refunds once closed", "the next 1 MB fits"))
            .actions(&["holdunlinked:/data=1,1000000", "fillnew:/data=1000000"])
            .disk(MIB, 100)
            .held(MIB)
            .shows(|run| line(run, "fillnew:").ends_with("wrote 1000000")),
        // Processes one after another: each loads the grant as the last left it.
        Attack::new("disk", "4 processes in turn on one 2 MiB grant", "2 MiB in all")
            .before(&["--dir", "{data}::/data", "--dir-max-bytes", "2MiB"], &["fillnew:/data=1048576"])
            .before(&["--dir", "{data}::/data", "--dir-max-bytes", "2MiB"], &["fillnew:/data=1048576"])
            .before(&["--dir", "{data}::/data", "--dir-max-bytes", "2MiB"], &["fillnew:/data=1048576"])
            .flags(&rw)
            .flags(&["--dir-max-bytes", "2MiB"])
            .actions(&["fillnew:/data=1048576"])
            .disk(2 * MIB, 100)
            .shows(reported("fillnew:", "wrote", 0..=0, true)),
        // Descriptors: accepted connections count like any other.
        Attack::new("fds", "accept 300 connections", "15 accepted, then an error")
            .flags(&refs(&accept_flags))
            .actions(&[accept_action.as_str()])
            .start(connector(accept_address, 300, hold_for))
            .shows(reported("accept:", "accepted", 1..=15, true)),
        Attack::new("fds", "accept under a cap of 4", "3 accepted, then an error")
            .flags(&refs(&few_flags))
            .actions(&[few_action.as_str()])
            .start(connector(few_address, 300, hold_for))
            .shows(reported("accept:", "accepted", 1..=3, true)),
        Attack::new("fds", "accept with 10 files kept open", "4 accepted, then an error")
            .flags(&refs(&kept_flags))
            .flags(&rw)
            .actions(&["keep:/data=10", kept_action.as_str()])
            .start(connector(kept_address, 300, hold_for))
            .shows(|run| {
                line(run, "keep:").ends_with("opened 10") && reported("accept:", "accepted", 1..=4, true)(run)
            }),
        // `handle` may answer at once and fail the request later: what
        // counts is how many connections reach the origin.
        Attack::new("fds", "100 requests in flight with 10 files open", "5 connections at most")
            .flags(&["--policy", http.as_str(), "--allow-http", &format!("http://{stalling}")])
            .flags(&rw)
            .actions(&["keep:/data=10", &format!("httpmany:{stalling}=100")])
            .shows(move |run| {
                line(run, "keep:").ends_with("opened 10")
                    && !line(run, "httpmany:").is_empty()
                    && (1..=5).contains(&outgoing.load(Ordering::Acquire))
            }),
        // Listings stream: any directory can be read to its end, in flat memory.
        Attack::new("fds", "a 100,000-entry listing read to the end", "every entry, RSS flat")
            .flags(&["--dir-ro", big.as_str()])
            .actions(&["lsall:/big"])
            .shows(move |run| line(run, "lsall:").ends_with(&format!("counted {counted}"))),
        Attack::new("fds", "16 listings read 2,000 entries each", "7 open (2 descriptors each), RSS flat")
            .flags(&["--dir-ro", big.as_str()])
            .actions(&["lspart:/big=16,2000"])
            .shows(says("opened 7 (")),
        // Output: a write within its permit is never refused.
        Attack::new("output", "8 MB through check-write permits", "all written, exit 0")
            .flags(&["--stdio", "inherit"])
            .actions(&["permitspam:8000000"])
            .shows(|run| run.code == Some(0) && line(run, "permitspam:").ends_with("wrote 8000000")),
        // Blame: a host-side budget the guest exhausts is the guest's kind.
        Attack::new("blame", "a fields value over the size limit", "host-memory-limit-exceeded")
            .flags(&["--policy", http.as_str(), "--allow-http", "http://127.0.0.1:9"])
            .actions(&["fields:1=200000"])
            .shows(blamed_on_guest()),
        Attack::new("blame", "a fields value over the limit, as JSON", "kind host-memory-limit-exceeded")
            .flags(&["--policy", http.as_str(), "--allow-http", "http://127.0.0.1:9", "--json"])
            .actions(&["fields:1=200000"])
            .shows(|run| {
                run.code == Some(3)
                    && run.stdout.contains("\"kind\":\"host-memory-limit-exceeded\"")
                    && run.stdout.contains("host-memory-factor")
            }),
    ];
    Ok(attacks)
}

/// Ended with the guest's kind for a host-side budget, its help naming the
/// factor that sizes it, and never `host-error`.
fn blamed_on_guest() -> impl Fn(&Run) -> bool {
    move |run| {
        kind("host-memory-limit-exceeded")(run)
            && run.stderr.contains("host-memory-factor")
            && !run.stderr.contains("host-error")
    }
}

/// Four `run` processes at once on one read-write grant of 2 MiB, each
/// pausing so that all four are loaded together and then filling 3 MiB:
/// one runs, the others end at load with `grant-busy` naming its process.
fn processes_at_once() -> Outcome {
    let root = hold::scratch("processes-at-once");
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&root);
    if let Err(error) = std::fs::create_dir_all(&data) {
        return super::probe::host_failure(error.to_string());
    }
    let flags: Vec<String> =
        ["--dir", &format!("{}::/data", data.display()), "--dir-max-bytes", "2MiB", "--dir-max-entries", "100"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    let actions = ["pause:1500", "fillnew:/data=1048576", "fillnew:/data=1048576", "fillnew:/data=1048576"];
    let mut children = Vec::new();
    for _ in 0..4 {
        match hold::spawn(hold::Guest::Command, &flags, &actions, &[]) {
            Ok(child) => children.push(child),
            Err(error) => return super::probe::host_failure(error),
        }
    }
    let mut ended = Vec::new();
    for child in children {
        let pid = child.id();
        match child.wait_with_output() {
            Ok(output) => ended.push((pid, output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())),
            Err(error) => return super::probe::host_failure(error.to_string()),
        }
    }
    let (apparent, allocated, entries) = hold::on_disk_exact(&data);
    let _ = std::fs::remove_dir_all(&root);
    let ran: Vec<u32> = ended.iter().filter(|(_, code, _)| *code == Some(0)).map(|(pid, ..)| *pid).collect();
    let busy = ended
        .iter()
        .filter(|(_, code, stderr)| {
            *code == Some(2)
                && (stderr.contains("grant-busy") || stderr.contains("grant_busy"))
                && ran.iter().any(|pid| stderr.contains(&format!("process {pid}")))
        })
        .count();
    let disk_ok = apparent <= 2 * MIB && allocated <= 2 * MIB;
    let observed = format!(
        "{} ran, {busy} grant-busy naming it; disk {apparent} B apparent/{allocated} B allocated/{entries}; exits {:?}",
        ran.len(),
        ended.iter().map(|(_, code, _)| *code).collect::<Vec<_>>()
    );
    let verdict = if ended.iter().any(|(_, _, stderr)| crate::support::host_panicked(stderr)) {
        Verdict::HostFailure
    } else if !disk_ok || ran.len() > 1 {
        Verdict::Escaped
    } else if ran.len() == 1 && busy == 3 {
        Verdict::Pass
    } else {
        Verdict::Misclassified
    };
    Outcome { observed: if disk_ok { observed } else { format!("OVER {observed}") }, verdict, figures: None }
}

/// What one in-process attack found: a line for the table and whether the
/// bound held (`Err` when the attack could not be set up).
type Found = Result<(String, Verdict), String>;

fn in_process_outcome(found: Found) -> Outcome {
    match found {
        Ok((observed, verdict)) => Outcome { observed, verdict, figures: None },
        Err(error) => super::probe::host_failure(error),
    }
}

/// How one instance's call ended: its captured stdout, or its error's kind.
type Ended = Result<String, (String, String)>;

/// Loads the command fixture under a 1 MiB budget with `wasi` (TOML for the
/// `[wasi]` table, host directories relative to `root`) and runs `count`
/// instances of it, all at once (`together`) or one after another.
fn instances(root: &Path, wasi: &str, count: usize, together: bool) -> Result<Vec<Ended>, String> {
    let text = format!(
        "[component]\nname = \"quota\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"10s\"\n{wasi}"
    );
    let manifest: ComponentManifest = text.parse().map_err(|e: runtime::manifest::Error| e.to_string())?;
    let runtime = Runtime::builder().allocation(Allocation::OnDemand).build().map_err(|e| e.to_string())?;
    let component = runtime.load_file(hold::fixture(), &manifest, root).map_err(|e| e.to_string())?;
    let export = component.command_export().ok_or("the fixture is not a command")?;
    // Several threads, so that instances run truly at once, not only
    // interleaved at their awaits.
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let ended = tokio.block_on(async {
        let call = |component: runtime::LoadedComponent, export: String| async move {
            match component.call_async(&export, &[]).await {
                Ok(outcome) => Ok(outcome.report.stdout.unwrap_or_default()),
                Err(error) => {
                    let stdout = error.crash().and_then(|crash| crash.report.stdout.clone()).unwrap_or_default();
                    Err((error.kind().to_owned(), format!("{error}; {stdout}")))
                }
            }
        };
        let mut ended = Vec::with_capacity(count);
        if together {
            let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(call(component.clone(), export.clone()))).collect();
            for task in tasks {
                ended.push(task.await.unwrap_or_else(|e| Err(("join".into(), e.to_string()))));
            }
        } else {
            for _ in 0..count {
                ended.push(call(component.clone(), export.clone()).await);
            }
        }
        ended
    });
    drop(component);
    Ok(ended)
}

/// A fresh scratch directory `name` with an empty `data` in it.
fn fresh(name: &str) -> Result<(PathBuf, PathBuf), String> {
    let root = hold::scratch(name);
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    Ok((root, data))
}

fn crashed(ended: &[Ended]) -> Vec<String> {
    ended.iter().filter_map(|e| e.as_ref().err()).map(|(kind, _)| kind.clone()).collect()
}

/// The sum over instances of the number each printed after `word`.
fn summed(ended: &[Ended], word: &str) -> u64 {
    ended.iter().filter_map(|e| e.as_ref().ok()).filter_map(|stdout| number_after(stdout, word)).sum()
}

fn data_grant(bytes: &str, entries: u32) -> String {
    format!(
        "[wasi.dirs]\n\"/data\" = {{ host = \"data\", mode = \"rw\", max-bytes = \"{bytes}\", max-entries = {entries} }}\n"
    )
}

/// 16 instances at once, each filling a new file of its own with 1 MiB.
fn sixteen_fill() -> Found {
    let (root, data) = fresh("sixteen-fill")?;
    let wasi = format!("[wasi]\nstdio = \"capture\"\nargs = [\"fillnew:/data=1048576\"]\n{}", data_grant("1MiB", 100));
    let ended = instances(&root, &wasi, 16, true)?;
    let (apparent, allocated, entries) = hold::on_disk_exact(&data);
    let _ = std::fs::remove_dir_all(&root);
    let wrote = summed(&ended, "wrote");
    let crashes = crashed(&ended);
    let held = apparent <= MIB && allocated <= MIB && wrote <= MIB;
    let observed = format!(
        "guests wrote {wrote} B; disk {apparent} B apparent/{allocated} B allocated/{entries}; {} crashed {crashes:?}",
        crashes.len()
    );
    let verdict = match (held, crashes.is_empty() && wrote >= MIB / 2) {
        (false, _) => Verdict::Escaped,
        (true, true) => Verdict::Pass,
        (true, false) => Verdict::Misclassified,
    };
    Ok((if held { observed } else { format!("OVER {observed}") }, verdict))
}

/// 16 instances at once, each creating 50 new files under 100 entries.
fn sixteen_files() -> Found {
    let (root, data) = fresh("sixteen-files")?;
    let wasi = format!("[wasi]\nstdio = \"capture\"\nargs = [\"filesnew:/data=50\"]\n{}", data_grant("1MiB", 100));
    let ended = instances(&root, &wasi, 16, true)?;
    let (apparent, allocated, entries) = hold::on_disk_exact(&data);
    let _ = std::fs::remove_dir_all(&root);
    let created = summed(&ended, "created");
    let crashes = crashed(&ended);
    let held = entries <= 100 && created <= 100;
    let observed = format!(
        "guests created {created}; disk {entries} entries/{apparent} B/{allocated} B; {} crashed {crashes:?}",
        crashes.len()
    );
    let verdict = match (held, crashes.is_empty() && created >= 50) {
        (false, _) => Verdict::Escaped,
        (true, true) => Verdict::Pass,
        (true, false) => Verdict::Misclassified,
    };
    Ok((if held { observed } else { format!("OVER {observed}") }, verdict))
}

/// 8 instances of one loaded component, one after another, each filling a
/// new file with 256 KiB: the fifth finds the grant full.
fn eight_in_turn() -> Found {
    let (root, data) = fresh("eight-in-turn")?;
    let wasi = format!("[wasi]\nstdio = \"capture\"\nargs = [\"fillnew:/data=262144\"]\n{}", data_grant("1MiB", 100));
    let ended = instances(&root, &wasi, 8, false)?;
    let (apparent, allocated, entries) = hold::on_disk_exact(&data);
    let _ = std::fs::remove_dir_all(&root);
    let wrote = summed(&ended, "wrote");
    let crashes = crashed(&ended);
    let first = ended.first().and_then(|e| e.as_ref().ok()).and_then(|s| number_after(s, "wrote"));
    let held = apparent <= MIB && allocated <= MIB && wrote <= MIB;
    let observed = format!(
        "first wrote {first:?}, all {wrote} B; disk {apparent} B apparent/{allocated} B allocated/{entries}; {} crashed",
        crashes.len()
    );
    let verdict = match (held, crashes.is_empty() && first == Some(256 * KIB)) {
        (false, _) => Verdict::Escaped,
        (true, true) => Verdict::Pass,
        (true, false) => Verdict::Misclassified,
    };
    Ok((if held { observed } else { format!("OVER {observed}") }, verdict))
}

/// `/data` (read-write) holds `inner`, granted again read-only as `/inner`.
/// The first instance reads `/inner/marker`, moves `inner` away and puts a
/// link to `decoy` in its place; the second instance of the same loaded
/// component must still read the original through `/inner`.
fn swapped_grant() -> Found {
    let (root, data) = fresh("swapped-grant")?;
    for (dir, text) in [("inner", "original"), ("decoy", "decoy")] {
        std::fs::create_dir_all(data.join(dir)).map_err(|e| e.to_string())?;
        std::fs::write(data.join(dir).join("marker"), text).map_err(|e| e.to_string())?;
    }
    let wasi = "[wasi]\nstdio = \"capture\"\n\
        args = [\"read:/inner/marker\", \"rename:/data/inner=/data/moved\", \"symlink:decoy=/data/inner\"]\n\
        [wasi.dirs]\n\"/data\" = { host = \"data\", mode = \"rw\", max-bytes = \"1MiB\", max-entries = 100 }\n\
        \"/inner\" = { host = \"data/inner\", mode = \"ro\" }\n";
    let ended = instances(&root, wasi, 2, false)?;
    let swapped = std::fs::symlink_metadata(data.join("inner")).is_ok_and(|meta| meta.file_type().is_symlink());
    let _ = std::fs::remove_dir_all(&root);
    let first_line = |ended: &Ended| match ended {
        Ok(stdout) => stdout.lines().next().unwrap_or("").to_owned(),
        Err((kind, message)) => format!("{kind}: {}", super::clip(message, 60)),
    };
    let seen: Vec<String> = ended.iter().map(first_line).collect();
    let observed = format!("swapped {swapped}; instances read {seen:?}");
    let verdict = match seen.as_slice() {
        [_, second] if second.contains("decoy") => Verdict::Escaped,
        [first, second] if swapped && first == "original" && second == "original" => Verdict::Pass,
        _ => Verdict::Misclassified,
    };
    Ok((observed, verdict))
}

/// Bytes each instance of the output attack writes.
const SPAM_BYTES: usize = 256 * 1024;
const SPAM_INSTANCES: usize = 32;

/// 32 instances in one process (a worker: this suite's own stdout is its
/// table) write to an inherited stdout through their permits while this
/// process reads it slowly: none may be refused a write its permit allowed.
fn shared_output() -> Found {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .args(["adversarial-worker", "shared-output"])
        .stdin(ProcessStdio::null())
        .stdout(ProcessStdio::piped())
        .stderr(ProcessStdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // A slow reader: 16 KiB at a time with a pause between, so the
    // process-wide queue fills and the instances contend for it.
    let (mut marks, mut buffer) = (0usize, vec![0u8; 16 * 1024]);
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => marks += buffer[..n].iter().filter(|b| **b == b'#').count(),
        }
        std::thread::park_timeout(Duration::from_micros(500));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = errors.join().unwrap_or_default();
    let summary = errors.lines().find(|l| l.starts_with("ok ")).unwrap_or("no summary").to_owned();
    let all = SPAM_INSTANCES * SPAM_BYTES;
    let observed = format!("{summary}; {marks} of {all} bytes arrived; exit {:?}", status.code());
    let verdict = if crate::support::host_panicked(&errors) {
        Verdict::HostFailure
    } else if status.success() && marks == all && summary == format!("ok {SPAM_INSTANCES} of {SPAM_INSTANCES}") {
        Verdict::Pass
    } else {
        Verdict::Escaped
    };
    Ok((observed, verdict))
}

/// `cargo xtask adversarial-worker NAME`: the part of an attack that must
/// run in a process of its own. Prints its findings on stderr.
pub(crate) fn worker(name: &str) -> Result<bool, String> {
    match name {
        "shared-output" => {
            let root = hold::scratch("shared-output");
            std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
            let wasi = format!("[wasi]\nstdio = \"inherit\"\nargs = [\"permitspam:{SPAM_BYTES}\"]\n");
            let ended = instances(&root, &wasi, SPAM_INSTANCES, true)?;
            let ok = ended.iter().filter(|e| e.is_ok()).count();
            for (kind, message) in ended.iter().filter_map(|e| e.as_ref().err()) {
                eprintln!("{kind}: {message}");
            }
            eprintln!("ok {ok} of {}", ended.len());
            runtime::wasi::flush_inherited_output(Instant::now() + Duration::from_secs(10));
            Ok(ok == ended.len())
        }
        _ => Err(format!("no adversarial worker `{name}`")),
    }
}

fn refs(items: &[String]) -> Vec<&str> {
    items.iter().map(String::as_str).collect()
}
