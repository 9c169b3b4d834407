//! Attacks on what a guest makes the host hold: disk, host objects,
//! descriptors, sockets, grants, output and host inputs. Each runs the real
//! `wasm-runtime run` on the Rust command fixture under a 1 MiB budget and
//! is judged on what the guest saw and on what the host process held while
//! it ran: its peak resident memory and open descriptors (sampled from
//! `/proc`), the bytes and entries left on disk, and its wall time.

use std::io::Read as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Case, Outcome, Verdict};

/// The guest's memory budget, as in the outside corpus.
pub(super) const MEMORY: &str = "1MiB";
/// What the host may hold beyond its baseline for one guest: the host-memory
/// budget (4 x 1 MiB) and room for the allocator's and the CLI's own noise.
pub(super) const RSS_ALLOWANCE: u64 = 16 << 20;
/// Descriptors the host may open beyond its baseline: the default cap of 16
/// plus a few of its own (the cache, the output thread).
pub(super) const FD_ALLOWANCE: usize = 16 + 4;
/// The command fixture an attack runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Guest {
    /// `fixtures/guests/rust-command`: WASI p2.
    Command,
    /// `fixtures/guests/rust-p3-command`: WASI 0.3, an async `run`.
    P3Command,
}

impl Guest {
    fn fixture(self) -> PathBuf {
        let name = match self {
            Self::Command => "rust-command.wasm",
            Self::P3Command => "rust-p3-command.wasm",
        };
        crate::workspace_root().join("fixtures/guests").join(name)
    }

    /// The guest's memory budget: the outside corpus's 1 MiB, or the 4 MiB
    /// the p3 fixture's start needs (about 1.1 MiB).
    fn memory(self) -> &'static str {
        match self {
            Self::Command => MEMORY,
            Self::P3Command => "4MiB",
        }
    }

    /// The action every run ends with: a pause that keeps the process
    /// alive for a few samples after the attack, so its high-water mark
    /// (VmHWM only grows) is read, however quick the attack was.
    fn settling_pause(self) -> &'static str {
        match self {
            Self::Command => "pause:60",
            Self::P3Command => "sleep:60",
        }
    }
}
/// A run may take this long (start-up, a cached load and the guest's work).
const WALL: Duration = Duration::from_secs(15);

/// What one CLI run did, seen from outside.
pub(super) struct Run {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) wall: Duration,
    pub(super) peak_rss: u64,
    pub(super) peak_fds: usize,
    /// The most bytes the watched directory held at once: its files on disk
    /// plus the unlinked files under it the process still held open.
    pub(super) peak_held: u64,
}

/// How the attack's stdout is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// Read as it comes.
    Draining,
    /// Not read until the process is gone: the pipe fills.
    Stalled,
}

pub(super) fn fixture() -> PathBuf {
    Guest::Command.fixture()
}

pub(super) fn scratch(name: &str) -> PathBuf {
    crate::target_dir().join("adversarial/hold").join(name)
}

/// Runs the command fixture with `flags`, then `-- actions`, and samples the
/// process's memory and descriptors until it exits.
pub(super) fn run(flags: &[String], actions: &[&str], env: &[(&str, &str)], reader: Reader) -> Result<Run, String> {
    run_watching(Guest::Command, flags, actions, env, reader, None)
}

/// Starts the command fixture with `flags` and `-- actions` (limits from the
/// flags' `--manifest` when they name one, else the suite's own).
pub(super) fn spawn(
    guest: Guest,
    flags: &[String],
    actions: &[&str],
    env: &[(&str, &str)],
) -> Result<std::process::Child, String> {
    let binary = crate::cli_binary()?;
    let cache = crate::target_dir().join("adversarial/hold-cache");
    let mut command = Command::new(binary);
    command.arg("run").arg(guest.fixture());
    if !flags.iter().any(|flag| flag == "--manifest") {
        // Each limit unless the attack sets its own.
        for (flag, value) in [("--memory", guest.memory()), ("--fuel", "10_000_000_000"), ("--timeout", "5s")] {
            if !flags.iter().any(|given| given == flag) {
                command.args([flag, value]);
            }
        }
    }
    command.arg("--cache-dir").arg(&cache).args(flags).arg("--").args(actions).arg(guest.settling_pause());
    command.envs(env.iter().copied()).env("NO_COLOR", "1");
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))
}

/// [`run`], also sampling the bytes under `watch` (see [`Run::peak_held`]).
pub(super) fn run_watching(
    guest: Guest,
    flags: &[String],
    actions: &[&str],
    env: &[(&str, &str)],
    reader: Reader,
    watch: Option<&Path>,
) -> Result<Run, String> {
    let binary = crate::cli_binary()?;
    let started = Instant::now();
    let mut child = spawn(guest, flags, actions, env)?;
    let stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take().ok_or("no stderr")?;
    let stdout_reader = match reader {
        Reader::Draining => Some(std::thread::spawn(move || read_all(stdout_pipe))),
        Reader::Stalled => None,
    };
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    let (mut peak_rss, mut peak_fds, mut peak_held) = (0, 0, 0);
    let status = loop {
        if let Some(dir) = watch {
            peak_held = peak_held.max(held_under(&proc_dir, dir));
        }
        if let Some(rss) = status_field(&proc_dir, "VmHWM:") {
            peak_rss = peak_rss.max(rss);
        }
        // Between fork and exec the child still holds this process's
        // descriptors: count only once it runs the CLI.
        let execed = std::fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| exe == binary);
        if execed && let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) {
            peak_fds = peak_fds.max(fds.count());
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > WALL * 2 {
            let _ = child.kill();
        }
        // Sampling, not a timed assertion: the wait only paces the reads.
        std::thread::park_timeout(Duration::from_millis(2));
    };
    let wall = started.elapsed();
    let stdout = match stdout_reader {
        Some(reader) => reader.join().unwrap_or_default(),
        None => String::new(),
    };
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Run { code: status.code(), stdout, stderr, wall, peak_rss, peak_fds, peak_held })
}

fn read_all(pipe: Option<std::process::ChildStdout>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}

fn status_field(proc_dir: &Path, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(proc_dir.join("status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// Bytes the files under `dir` hold (by apparent size and by blocks, the
/// larger): those with a name there, and those unlinked that the process at
/// `proc_dir` still holds open. Each file counts once, by inode, so a file
/// unlinked between the two looks is not counted twice.
fn held_under(proc_dir: &Path, dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let mut files = std::collections::HashMap::new();
    let mut add = |meta: &std::fs::Metadata| {
        files.insert((meta.dev(), meta.ino()), meta.len().max(meta.blocks() * 512));
    };
    walk(dir, |meta| add(meta));
    let prefix = dir.display().to_string();
    if let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) {
        for fd in fds.flatten() {
            let unlinked = std::fs::read_link(fd.path()).is_ok_and(|target| {
                let target = target.display().to_string();
                target.starts_with(&prefix) && target.ends_with(" (deleted)")
            });
            if let Ok(meta) = std::fs::metadata(fd.path())
                && unlinked
                && meta.is_file()
            {
                add(&meta);
            }
        }
    }
    files.values().sum()
}

/// The host's peak memory and descriptors for a guest that does nothing.
pub(super) fn baseline() -> Result<(u64, usize), String> {
    static BASELINE: OnceLock<Result<(u64, usize), String>> = OnceLock::new();
    BASELINE
        .get_or_init(|| {
            // The first run compiles into the cache; the second is the
            // baseline, paused long enough to be sampled many times.
            run(&[], &["args"], &[], Reader::Draining)?;
            let quiet = run(&[], &["pause:200"], &[], Reader::Draining)?;
            Ok((quiet.peak_rss, quiet.peak_fds))
        })
        .clone()
}

/// Bytes in files (by apparent size and by blocks, the larger) and entries under `dir`.
pub(super) fn on_disk(dir: &Path) -> (u64, u64) {
    let (apparent, allocated, entries) = on_disk_exact(dir);
    (apparent.max(allocated), entries)
}

/// Bytes in files by apparent size (`du --apparent-size`), bytes allocated
/// (`du`: blocks x 512), and entries under `dir`, however deep: the walk
/// goes through directory descriptors (`/proc/self/fd/N/name`), so no path
/// it opens is longer than one name, and a tree deeper than `PATH_MAX`
/// is counted whole. Hard links count once per name, as `du -l` would.
pub(super) fn on_disk_exact(dir: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let (mut apparent, mut allocated) = (0u64, 0u64);
    let entries = walk(dir, |meta| {
        apparent += meta.len();
        allocated += meta.blocks() * 512;
    });
    (apparent, allocated, entries)
}

/// Visits every regular file under `dir` through directory descriptors (see
/// [`on_disk_exact`]) and returns the number of entries seen.
fn walk(dir: &Path, mut visit_file: impl FnMut(&std::fs::Metadata)) -> u64 {
    use std::os::fd::AsRawFd as _;
    use std::rc::Rc;
    let mut entries = 0u64;
    let Ok(root) = std::fs::File::open(dir) else { return 0 };
    // Directories still to list: their parent's descriptor and their name.
    let mut pending: Vec<(Rc<std::fs::File>, std::ffi::OsString)> = Vec::new();
    let mut listing = Some(Rc::new(root));
    loop {
        if let Some(parent) = listing.take() {
            let fd_path = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd()));
            if let Ok(children) = std::fs::read_dir(&fd_path) {
                for child in children.flatten() {
                    entries += 1;
                    let Ok(meta) = std::fs::symlink_metadata(fd_path.join(child.file_name())) else { continue };
                    if meta.is_dir() {
                        pending.push((Rc::clone(&parent), child.file_name()));
                    } else if meta.is_file() {
                        visit_file(&meta);
                    }
                }
            }
        }
        let Some((parent, name)) = pending.pop() else { break };
        let path = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd())).join(name);
        listing = std::fs::File::open(path).ok().map(Rc::new);
    }
    entries
}

/// What an attack must leave on disk at most: bytes and entries.
#[derive(Clone, Copy)]
pub(super) struct DiskLimit(u64, u64);

/// One attack: CLI flags and guest actions, what the guest or the CLI must
/// show, and what the disk may hold afterwards.
pub(super) struct Attack {
    group: &'static str,
    name: &'static str,
    expected: &'static str,
    flags: Vec<String>,
    actions: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    reader: Reader,
    guest: Guest,
    /// Runs before the judged one (flags, actions), in order, e.g. to plant something.
    before: Vec<(Vec<String>, Vec<String>)>,
    disk: Option<DiskLimit>,
    /// The most the data directory may hold at any moment of the judged
    /// run, unlinked files still open included.
    held: Option<u64>,
    /// Started just before the judged run (a client the guest serves, say).
    start: Option<Box<dyn FnOnce()>>,
    shows: Box<dyn Fn(&Run) -> bool>,
}

impl Attack {
    pub(super) fn new(group: &'static str, name: &'static str, expected: &'static str) -> Self {
        Self {
            group,
            name,
            expected,
            flags: Vec::new(),
            actions: Vec::new(),
            env: Vec::new(),
            reader: Reader::Draining,
            guest: Guest::Command,
            before: Vec::new(),
            disk: None,
            held: None,
            start: None,
            shows: Box::new(|_| true),
        }
    }

    /// Nobody reads the process's stdout: its pipe fills.
    pub(super) fn stalled(mut self) -> Self {
        self.reader = Reader::Stalled;
        self
    }

    /// Runs `guest` instead of the p2 command fixture.
    pub(super) fn guest(mut self, guest: Guest) -> Self {
        self.guest = guest;
        self
    }

    pub(super) fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|f| (*f).to_owned()));
        self
    }

    pub(super) fn actions(mut self, actions: &[&str]) -> Self {
        self.actions.extend(actions.iter().map(|a| (*a).to_owned()));
        self
    }

    pub(super) fn before(mut self, flags: &[&str], actions: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|i| (*i).to_owned()).collect();
        self.before.push((owned(flags), owned(actions)));
        self
    }

    pub(super) fn disk(mut self, bytes: u64, entries: u64) -> Self {
        self.disk = Some(DiskLimit(bytes, entries));
        self
    }

    pub(super) fn held(mut self, bytes: u64) -> Self {
        self.held = Some(bytes);
        self
    }

    pub(super) fn start(mut self, start: impl FnOnce() + 'static) -> Self {
        self.start = Some(Box::new(start));
        self
    }

    pub(super) fn shows(mut self, check: impl Fn(&Run) -> bool + 'static) -> Self {
        self.shows = Box::new(check);
        self
    }

    pub(super) fn case(self) -> Case {
        let (group, name, expected) = (self.group, self.name, self.expected);
        Case::new(group, name, expected, move || self.judge())
    }

    fn judge(mut self) -> Outcome {
        let root = scratch(self.name.replace(' ', "-").as_str());
        let data = root.join("data");
        let _ = std::fs::remove_dir_all(&root);
        if let Err(error) = std::fs::create_dir_all(&data) {
            return super::probe::host_failure(error.to_string());
        }
        let place = |flags: &[String]| -> Vec<String> {
            flags.iter().map(|f| f.replace("{data}", &data.display().to_string())).collect()
        };
        for (flags, actions) in &self.before {
            let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
            if let Err(error) = run(&place(flags), &actions, &[], Reader::Draining) {
                return super::probe::host_failure(error);
            }
        }
        let flags = place(&self.flags);
        let actions: Vec<&str> = self.actions.iter().map(String::as_str).collect();
        let base = baseline();
        if let Some(start) = self.start.take() {
            start();
        }
        let watch = self.held.is_some().then_some(data.as_path());
        let outcome = base
            .and_then(|base| Ok((base, run_watching(self.guest, &flags, &actions, &self.env, self.reader, watch)?)));
        let ((base_rss, base_fds), run) = match outcome {
            Ok(both) => both,
            Err(error) => return super::probe::host_failure(error),
        };
        let shown = (self.shows)(&run);
        let rss = run.peak_rss.saturating_sub(base_rss);
        let (apparent, allocated, entries) = on_disk_exact(&data);
        let bytes = apparent.max(allocated);
        let disk_ok = self.disk.is_none_or(|DiskLimit(max_bytes, max_entries)| {
            apparent <= max_bytes && allocated <= max_bytes && entries <= max_entries
        }) && self.held.is_none_or(|max| run.peak_held <= max);
        let over: Vec<String> = [
            (rss > RSS_ALLOWANCE).then(|| format!("rss +{} KiB > {} KiB", rss >> 10, RSS_ALLOWANCE >> 10)),
            (run.peak_fds > base_fds + FD_ALLOWANCE)
                .then(|| format!("fds {} > {base_fds} + {FD_ALLOWANCE}", run.peak_fds)),
            (run.wall > WALL).then(|| format!("wall {} ms", run.wall.as_millis())),
            (!disk_ok).then(|| {
                format!(
                    "disk {apparent} B apparent/{allocated} B allocated/{entries} entries, held {} B",
                    run.peak_held
                )
            }),
        ]
        .into_iter()
        .flatten()
        .collect();
        let held_ok = over.is_empty();
        let first_line = run.stdout.lines().chain(run.stderr.lines()).find(|l| !l.trim().is_empty()).unwrap_or("");
        // What broke a bound comes first: the table clips the rest.
        let lead = if held_ok { super::clip(first_line, 60) } else { format!("OVER {}", over.join(", ")) };
        let observed = format!(
            "{lead}; exit {:?}, rss +{} KiB, fds {}/{base_fds}, disk {bytes} B/{entries}, {} ms",
            run.code,
            rss >> 10,
            run.peak_fds,
            run.wall.as_millis()
        );
        let verdict = match (super::support::host_panicked(&run.stderr), shown, disk_ok && held_ok) {
            (true, _, _) => Verdict::HostFailure,
            (false, true, true) => Verdict::Pass,
            (false, false, true) => Verdict::Misclassified,
            (false, _, false) => Verdict::Escaped,
        };
        let _ = std::fs::remove_dir_all(&root);
        Outcome { observed, verdict, figures: None }
    }
}

/// A listener on 127.0.0.1, open for as long as the suite runs, that counts
/// the connections it accepts in `accepted` and holds each open, answering
/// nothing, for at least `hold` after it came (let go when a later one
/// comes), and at most `connections` at once (the oldest is let go first).
/// The window is each connection's own, not the suite's: on a loaded
/// machine an attack may start minutes after set-up.
pub(super) fn silent_listener(
    connections: usize,
    hold: Duration,
    accepted: Arc<AtomicUsize>,
) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || {
        let mut held = std::collections::VecDeque::new();
        for stream in listener.incoming() {
            // Out of descriptors, say: wait rather than spin, and count nothing.
            let Ok(stream) = stream else {
                std::thread::park_timeout(Duration::from_millis(20));
                continue;
            };
            let now = Instant::now();
            while let Some((came, _)) = held.front()
                && (now.duration_since(*came) > hold || held.len() >= connections)
            {
                held.pop_front();
            }
            held.push_back((now, stream));
            accepted.fetch_add(1, Ordering::AcqRel);
        }
    });
    Ok(address)
}

pub(super) fn policy_file(name: &str, text: &str) -> Result<String, String> {
    let path = crate::target_dir().join("adversarial").join(format!("hold-{name}.toml"));
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path.display().to_string())
}

pub(super) fn says(text: &'static str) -> impl Fn(&Run) -> bool {
    move |run| run.stdout.contains(text) || run.stderr.contains(text)
}

pub(super) fn kind(kind: &'static str) -> impl Fn(&Run) -> bool {
    move |run| run.code == Some(3) && run.stderr.contains(kind)
}

pub(crate) fn cases(quick: bool) -> Vec<Case> {
    match attacks(quick) {
        Ok(attacks) => attacks.into_iter().map(Attack::case).collect(),
        Err(error) => {
            vec![Case::new("hold", "set up the host-containment attacks", "set up", move || {
                super::probe::host_failure(error)
            })]
        }
    }
}

fn attacks(quick: bool) -> Result<Vec<Attack>, String> {
    let rw = ["--dir", "{data}::/data"];
    let mib = 1 << 20;
    let http = policy_file("http", "[grants]\nhttp = true\n")?;
    let network = policy_file("network", "[grants]\nnetwork = true\n")?;
    let few_fds = policy_file("few-fds", "[grants]\nmax-descriptors = 4\n")?;
    let sockets = silent_listener(2_100, Duration::from_secs(60), Arc::default())?.to_string();
    let stalling = silent_listener(100, Duration::from_secs(60), Arc::default())?.to_string();
    let big_dir = scratch("big-listing");
    let entries = if quick { 30_000 } else { 100_000 };
    if on_disk(&big_dir).1 < entries {
        std::fs::create_dir_all(&big_dir).map_err(|e| e.to_string())?;
        for i in 0..entries {
            std::fs::write(big_dir.join(format!("entry-{i:06}")), b"").map_err(|e| e.to_string())?;
        }
    }
    let big = format!("{}::/big", big_dir.display());
    let q = ["--dir-max-bytes", "1MiB", "--dir-max-entries", "100"];
    let with_quota = |a: Attack| a.flags(&rw).flags(&q);
    let http_grant = ["--policy", http.as_str(), "--allow-http", "http://127.0.0.1:9"];
    let tcp_grant = ["--policy", network.as_str(), "--allow-tcp", sockets.as_str()];
    let attacks = vec![
        // Disk.
        with_quota(Attack::new("disk", "one 200 MiB file", "insufficient space at 1 MiB"))
            .actions(&["fill:/data/big=209715200"])
            .disk(mib, 100)
            .shows(says("(")),
        with_quota(Attack::new("disk", "20,000 files", "at most 100 entries"))
            .actions(&["files:/data=20000"])
            .disk(mib, 100)
            .shows(says("created 100 (")),
        with_quota(Attack::new("disk", "40,000 directories", "at most 100 entries"))
            .actions(&["dirs:/data=40000"])
            .disk(mib, 100)
            .shows(says("created 100 (")),
        with_quota(Attack::new("disk", "set-size to 1 TiB", "refused"))
            .actions(&["truncate:/data/t=1099511627776"])
            .disk(mib, 100)
            .shows(says("denied")),
        with_quota(Attack::new("disk", "one byte written at 1 TiB", "refused"))
            .actions(&["pwrite:/data/p=1099511627776"])
            .disk(mib, 100)
            .shows(says("insufficient-space")),
        with_quota(Attack::new("disk", "set-size then write past the quota", "the second refused"))
            .actions(&["truncate:/data/t=900000", "fill:/data/u=900000"])
            .disk(mib, 100)
            .shows(says("fill:/data/u=900000 wrote 131072 (")),
        with_quota(Attack::new("disk", "5,000 hard links", "at most 100 entries"))
            .actions(&["links:/data/l=5000"])
            .disk(mib, 100)
            .shows(says("linked 99 (")),
        with_quota(Attack::new("disk", "four files that each fit alone", "1 MiB in all"))
            .actions(&["fill:/data/a=400000", "fill:/data/b=400000", "fill:/data/c=400000", "fill:/data/d=400000"])
            .disk(mib, 100)
            .shows(says("fill:/data/c=400000 wrote 196608 (")),
        Attack::new("disk", "rename into a second grant", "cross-device")
            .before(&rw, &["mkdir:/data/other"])
            .flags(&rw)
            .flags(&["--dir", "{data}/other::/other"])
            .actions(&["write:/data/x", "rename:/data/x=/other/x"])
            .shows(says("rename:/data/x=/other/x denied")),
        // Host objects.
        Attack::new("hostobj", "4,000 fields without a grant", "capability-denied")
            .actions(&["fields:4000=2000"])
            .shows(kind("capability-denied")),
        Attack::new("hostobj", "400 unsent bodies without a grant", "capability-denied")
            .actions(&["bodies:400=1048576"])
            .shows(kind("capability-denied")),
        Attack::new("hostobj", "4,000 fields of 100 KiB, granted", "field size refused")
            .flags(&http_grant)
            .actions(&["fields:4000=102400"])
            .shows(says("exceeds limit")),
        Attack::new("hostobj", "4,000 small fields, granted", "handle-limit-exceeded")
            .flags(&http_grant)
            .actions(&["fields:4000=2000"])
            .shows(kind("handle-limit-exceeded")),
        Attack::new("hostobj", "400 unsent bodies of 1 MiB, granted", "handle-limit-exceeded")
            .flags(&http_grant)
            .actions(&["bodies:400=1048576"])
            .shows(kind("handle-limit-exceeded")),
        // Listings stream: each holds a bounded batch and two descriptors
        // (the directory `read_dir` opened and the listing's own), so the
        // cap of 16 (7 x 2 beside the preopen) is what stops them.
        Attack::new("hostobj", "16 listings of a huge directory", "7 open, RSS flat")
            .flags(&["--dir-ro", big.as_str()])
            .actions(&["lsmany:/big=16"])
            .shows(says("opened 7 (")),
        Attack::new("hostobj", "debug strings with RUST_BACKTRACE=1", "bounded, no backtrace")
            .flags(&rw)
            .flags(&["--dir-max-bytes", "64KiB"])
            .actions(&["debug:/data/d=1000"])
            .shows(|run| {
                run.stdout
                    .split("longest ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
                    .is_some_and(|n| n <= 4096)
            }),
        // Descriptors.
        Attack::new("fds", "hold 100 open files", "15 open, then an error")
            .flags(&rw)
            .actions(&["hold:/data=100", "args"])
            .shows(says("opened 15 (")),
        Attack::new("fds", "hold 100 listings of a small directory", "7 open (2 descriptors each), then an error")
            .flags(&rw)
            .actions(&["lsmany:/data=100"])
            .shows(says("opened 7 (")),
        Attack::new("fds", "hold files under a cap of 4", "3 open")
            .flags(&rw)
            .flags(&["--policy", few_fds.as_str()])
            .actions(&["hold:/data=100"])
            .shows(says("opened 3 (")),
        // Network.
        Attack::new("network", "2,000 sockets to a granted address", "16 at most")
            .flags(&tcp_grant)
            .actions(&[&format!("sockets:{sockets}=2000")])
            .shows(says("opened 16 (")),
        Attack::new("network", "a socket without a grant", "capability-denied")
            .actions(&[&format!("tcp:{sockets}")])
            .shows(kind("capability-denied")),
        Attack::new("network", "a socket to an ungranted port", "denied")
            .flags(&tcp_grant)
            .actions(&[&format!("tcp:{stalling}")])
            .shows(says("denied")),
        Attack::new("network", "HTTP to an origin that never answers", "deadline-exceeded")
            .flags(&["--policy", http.as_str(), "--allow-http", &format!("http://{stalling}")])
            .actions(&[&format!("http:{stalling}/")])
            .shows(kind("deadline-exceeded")),
        Attack::new("network", "HTTP without a grant", "capability-denied")
            .actions(&[&format!("http:{stalling}/")])
            .shows(kind("capability-denied")),
        // Grants.
        Attack::new("grants", "plant a symlink that climbs out", "planted, not followed")
            .flags(&rw)
            .actions(&["symlink:../../../../../../../../etc=/data/rel", "read:/data/rel/passwd"])
            .shows(|run| run.stdout.contains("read:/data/rel/passwd denied") && !run.stdout.contains("root:")),
        Attack::new("grants", "a grant through a guest-planted symlink", "refused at load (exit 2)")
            .before(&rw, &["symlink:../../../../../../../../etc=/data/rel"])
            .flags(&["--dir-ro", "{data}/rel::/etc"])
            .actions(&["read:/etc/passwd"])
            .shows(|run| run.code == Some(2) && run.stderr.contains("dir_grant") && run.stderr.contains("symlink")),
        Attack::new("grants", "a quota above the policy's", "refused (exit 1)")
            .flags(&rw)
            .flags(&["--dir-max-bytes", "100GiB"])
            .shows(|run| run.code == Some(1) && run.stderr.contains("max-dir-bytes")),
        // Output.
        Attack::new("output", "100 MB to a stdout nobody reads", "deadline-exceeded")
            .flags(&["--stdio", "inherit"])
            .actions(&["spam:100000000"])
            .stalled()
            .shows(kind("deadline-exceeded")),
        // Rust's `println!` panics once the capture pipe refuses its writes:
        // the guest's own `unreachable`, with 64 KiB kept by the host.
        Attack::new("output", "100 MB of captured output", "the guest's own panic")
            .flags(&["--stdio", "capture"])
            .actions(&["spam:100000000"])
            .shows(kind("unreachable")),
        Attack::new("output", "100 MB of discarded output", "written to nowhere")
            .flags(&["--stdio", "discard"])
            .actions(&["spam:100000000"])
            .shows(|run| run.code == Some(0)),
        // Inputs.
        Attack::new("inputs", "a policy with fuel above i64::MAX", "a diagnostic (exit 1)")
            .flags(&["--policy", &policy_file("fuel", "[resources]\nfuel = { max = 18446744073709551615 }\n")?])
            .shows(|run| run.code == Some(1) && run.stderr.contains("resources.fuel.max")),
        Attack::new("inputs", "a policy with max-handles at 2^32", "a diagnostic (exit 1)")
            .flags(&["--policy", &policy_file("handles", "[resources]\nmax-handles = 4294967296\n")?])
            .shows(|run| run.code == Some(1) && run.stderr.contains("max-handles")),
        Attack::new("inputs", "a policy with bidi overrides", "shown escaped")
            .flags(&["--policy", &policy_file("bidi", "[grants]\n\"net\u{202e}work\" = true\n")?])
            .shows(|run| run.code == Some(1) && run.stderr.contains("\\u{202e}") && !run.stderr.contains('\u{202e}')),
    ];
    let mut attacks = attacks;
    for attack in &mut attacks {
        if attack.name.starts_with("debug strings") {
            attack.env.push(("RUST_BACKTRACE", "1"));
        }
    }
    Ok(attacks)
}
