//! The compile cache as someone who can write it meets it: entries swapped,
//! linked, replaced by a FIFO or a device, planted by another user; links
//! planted where the runtime writes; a compile worker killed from outside.
//! Each runs the real CLI (`wasm-runtime run`, compile workers included) on
//! two components whose `run` exports answer differently, and is judged on
//! what component A answered (never B's 222), on the wall time (no load
//! hangs) and on the files outside the cache (never written).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Case, Outcome, Verdict};

const GROUP: &str = "cache";
/// What A's and B's `run` return.
const A: u32 = 111;
const B: u32 = 222;
/// No load may take longer, whatever the cache holds.
const WALL: Duration = Duration::from_secs(20);
/// Compiling the JavaScript guest takes seconds: time to kill its worker.
const WIDE_POLICY: &str = "[resources]\nmemory = { min = \"512KiB\", max = \"64MiB\" }\n\
    [compile]\nmax-functions = 50_000\nmax-function-size = \"2MiB\"\nmax-code = \"64MiB\"\n";

pub(crate) fn cases() -> Vec<Case> {
    let mut cases = vec![
        tampered("entries A and B swapped", |s| {
            let moved = s.cache.join("moved");
            rename(&s.entry_a, &moved)?;
            rename(&s.entry_b, &s.entry_a)?;
            rename(&moved, &s.entry_b)
        }),
        tampered("A's entry a symlink to B's", |s| {
            remove(&s.entry_a)?;
            std::os::unix::fs::symlink(&s.entry_b, &s.entry_a).map_err(|e| e.to_string())
        }),
        tampered("A's entry a hard link to B's", |s| {
            remove(&s.entry_a)?;
            std::fs::hard_link(&s.entry_b, &s.entry_a).map_err(|e| e.to_string())
        }),
        tampered("A's entry a FIFO nobody writes", |s| {
            remove(&s.entry_a)?;
            command("mkfifo", &[s.entry_a.as_os_str()])
        }),
        tampered("A's entry a symlink to /dev/zero", |s| {
            remove(&s.entry_a)?;
            std::os::unix::fs::symlink("/dev/zero", &s.entry_a).map_err(|e| e.to_string())
        }),
        tampered("A's entry a 64 GiB sparse file", |s| {
            remove(&s.entry_a)?;
            std::fs::File::create(&s.entry_a).and_then(|file| file.set_len(64 << 30)).map_err(|e| e.to_string())
        }),
        tampered("links planted at every name it writes", plant_links),
        tampered("stale temporaries of a killed process", |s| {
            let aged = std::time::SystemTime::now() - runtime::cli_support::STALE_TEMPORARY - Duration::from_secs(60);
            for name in [".tmp-1-stale", ".compile-stale.wasm"] {
                std::fs::File::create(s.cache.join(name))
                    .and_then(|file| file.set_modified(aged))
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .expecting("111, stale temporaries removed"),
        tampered("the cache directory world-writable", |s| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&s.cache, std::fs::Permissions::from_mode(0o777)).map_err(|e| e.to_string())
        })
        .expecting("111 from a private cache, a warning")
        .saying("compiling into a private temporary cache"),
    ];
    // Only root can leave a file owned by another user.
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        cases.insert(
            0,
            tampered("B's file stamped A's hash by another user", |s| {
                let stamp = s.cache.join(format!("input-{}-{}.stamp", s.b_identity.0, s.b_identity.1));
                std::fs::write(&stamp, format!("{}{}\n", s.b_identity.2, s.hash_a)).map_err(|e| e.to_string())?;
                command("chown", &["65534".as_ref(), stamp.as_os_str()])
            })
            .runs_b(),
        );
    }
    let mut cases: Vec<Case> = cases.into_iter().map(Tampered::case).collect();
    cases.push(Case::new(
        GROUP,
        "a compile worker killed from outside",
        "compile-worker-failed, signal 9",
        killed_worker,
    ));
    cases
}

/// The two components, a cache holding both their entries, and files
/// outside it that nothing may write.
struct Setup {
    dir: PathBuf,
    cache: PathBuf,
    outside: PathBuf,
    manifest: PathBuf,
    a: PathBuf,
    b: PathBuf,
    hash_a: String,
    entry_a: PathBuf,
    entry_b: PathBuf,
    /// B's file: device, inode and its identity line as an input stamp records it.
    b_identity: (u64, u64, String),
}

/// A component whose `run` export returns `value`.
fn component(value: u32) -> Result<Vec<u8>, String> {
    wat::parse_str(format!(
        r#"(component
            (core module $m (func (export "run") (result i32) (i32.const {value})))
            (core instance $i (instantiate $m))
            (func (export "run") (result u32) (canon lift (core func $i "run"))))"#
    ))
    .map_err(|e| e.to_string())
}

fn setup(name: &str) -> Result<Setup, String> {
    let dir = crate::target_dir().join("adversarial/cache").join(name.replace(|c: char| !c.is_alphanumeric(), "-"));
    if dir.exists() {
        // A world-writable leftover is fine to remove: it is ours.
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
    }
    let (cache, outside) = (dir.join("cache"), dir.join("outside"));
    std::fs::create_dir_all(&outside).map_err(|e| e.to_string())?;
    std::fs::write(outside.join("victim"), "precious").map_err(|e| e.to_string())?;
    let manifest = dir.join("manifest.toml");
    std::fs::write(&manifest, super::probe::manifest("1MiB", "1_000_000", "5s", "")).map_err(|e| e.to_string())?;
    let (a, b) = (dir.join("a.wasm"), dir.join("b.wasm"));
    let (bytes_a, bytes_b) = (component(A)?, component(B)?);
    std::fs::write(&a, &bytes_a).map_err(|e| e.to_string())?;
    std::fs::write(&b, &bytes_b).map_err(|e| e.to_string())?;
    let hash_a = runtime::loader::ContentHash::of(&bytes_a).to_hex();
    let hash_b = runtime::loader::ContentHash::of(&bytes_b).to_hex();
    let mut setup = Setup {
        dir,
        cache,
        outside,
        manifest,
        a,
        b,
        hash_a,
        entry_a: PathBuf::new(),
        entry_b: PathBuf::new(),
        b_identity: (0, 0, String::new()),
    };
    for (path, value) in [(&setup.a, A), (&setup.b, B)] {
        let run = run(&setup, path)?;
        if run.answer != Some(value) {
            return Err(format!("setting up: {} answered {:?}: {}", path.display(), run.answer, run.stderr));
        }
    }
    setup.entry_a = entry(&setup.cache, &setup.hash_a)?;
    setup.entry_b = entry(&setup.cache, &hash_b)?;
    let metadata = std::fs::metadata(&setup.b).map_err(|e| e.to_string())?;
    let line = format!(
        "{} {} {} {}.{} {}.{}\n",
        metadata.dev(),
        metadata.ino(),
        metadata.size(),
        metadata.mtime(),
        metadata.mtime_nsec(),
        metadata.ctime(),
        metadata.ctime_nsec()
    );
    setup.b_identity = (metadata.dev(), metadata.ino(), line);
    Ok(setup)
}

/// The entry `run` (on-demand allocation) wrote for the component `hash`.
fn entry(cache: &Path, hash: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(cache)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|item| item.path())
        .find(|path| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with(hash) && name.ends_with("o.cwasm")
        })
        .ok_or_else(|| format!("no entry for {hash} in {}", cache.display()))
}

struct CliRun {
    answer: Option<u32>,
    code: Option<i32>,
    stderr: String,
    wall: Duration,
}

/// `wasm-runtime run COMPONENT --invoke run()` on the setup's cache, killed
/// at [`WALL`].
fn run(setup: &Setup, component: &Path) -> Result<CliRun, String> {
    let mut command = Command::new(crate::cli_binary()?);
    command.arg("run").arg(component).arg("--manifest").arg(&setup.manifest);
    command.arg("--cache-dir").arg(&setup.cache).args(["--invoke", "run()"]);
    let started = Instant::now();
    let (code, stdout, stderr) = finish(spawn(command)?, started)?;
    let answer = stdout.lines().find_map(|line| line.trim().parse().ok());
    Ok(CliRun { answer, code, stderr, wall: started.elapsed() })
}

fn spawn(mut command: Command) -> Result<Child, String> {
    command.env("NO_COLOR", "1").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().map_err(|e| format!("cannot start the CLI: {e}"))
}

/// Waits for `child` at most [`WALL`] after `started` (then kills it):
/// its exit code (`None` when killed), stdout and stderr.
fn finish(mut child: Child, started: Instant) -> Result<(Option<i32>, String, String), String> {
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(status);
        }
        if started.elapsed() > WALL {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::park_timeout(Duration::from_millis(5));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    Ok((status.and_then(|s| s.code()), stdout, stderr))
}

/// Files under `outside` other than the untouched victim.
fn outside_changes(setup: &Setup) -> Vec<String> {
    let mut changes = Vec::new();
    if std::fs::read_to_string(setup.outside.join("victim")).ok().as_deref() != Some("precious") {
        changes.push("victim overwritten".to_owned());
    }
    for item in std::fs::read_dir(&setup.outside).into_iter().flatten().filter_map(Result::ok) {
        if item.file_name() != "victim" {
            changes.push(format!("{} created", item.file_name().to_string_lossy()));
        }
    }
    changes
}

/// What an attack does to a filled cache.
type Tamper = Box<dyn FnOnce(&Setup) -> Result<(), String>>;

/// An attack on a filled cache: `tamper`, then run A (or B), which must
/// answer its own value in time, writing nothing outside the cache.
struct Tampered {
    name: &'static str,
    expected: &'static str,
    tamper: Tamper,
    runs_b: bool,
    /// Text the run's stderr must hold.
    says: Option<&'static str>,
}

fn tampered(name: &'static str, tamper: impl FnOnce(&Setup) -> Result<(), String> + 'static) -> Tampered {
    let expected = "111, in time, nothing outside written";
    Tampered { name, expected, tamper: Box::new(tamper), runs_b: false, says: None }
}

impl Tampered {
    fn expecting(mut self, expected: &'static str) -> Self {
        self.expected = expected;
        self
    }

    fn saying(mut self, text: &'static str) -> Self {
        self.says = Some(text);
        self
    }

    /// Runs B instead of A: it must answer 222.
    fn runs_b(mut self) -> Self {
        self.runs_b = true;
        self.expected = "222, in time, nothing outside written";
        self
    }

    fn case(self) -> Case {
        let Self { name, expected, tamper, runs_b, says } = self;
        Case::new(GROUP, name, expected, move || match attack(name, tamper, runs_b, says) {
            Ok(outcome) => outcome,
            Err(error) => super::probe::host_failure(error),
        })
    }
}

fn attack(name: &str, tamper: Tamper, runs_b: bool, says: Option<&str>) -> Result<Outcome, String> {
    let setup = setup(name)?;
    tamper(&setup)?;
    let (component, own, other) = if runs_b { (&setup.b, B, A) } else { (&setup.a, A, B) };
    let run = run(&setup, component)?;
    let changes = outside_changes(&setup);
    let stale: Vec<String> = std::fs::read_dir(&setup.cache)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|item| item.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("stale"))
        .collect();
    let observed = match run.answer {
        Some(answer) => format!("{answer}"),
        None => format!("no answer (exit {:?})", run.code),
    };
    let observed = format!("{observed}, {} ms{}", run.wall.as_millis(), if changes.is_empty() { "" } else { ", " });
    let observed = format!("{observed}{}", changes.join(", "));
    let verdict = if run.answer == Some(other) || !changes.is_empty() {
        Verdict::Escaped
    } else if run.answer == Some(own)
        && run.wall < WALL
        && stale.is_empty()
        && says.is_none_or(|text| run.stderr.contains(text))
        && !crate::support::host_panicked(&run.stderr)
    {
        Verdict::Pass
    } else if crate::support::host_panicked(&run.stderr) {
        Verdict::HostFailure
    } else {
        Verdict::Escaped
    };
    if verdict != Verdict::Pass {
        eprintln!("{name}: {}", run.stderr.trim());
    }
    let _ = std::fs::remove_dir_all(&setup.dir);
    Ok(Outcome { observed, verdict, figures: None })
}

/// Symlinks to files outside the cache at every name the runtime wrote
/// under before (`.tmp-PID-N`, `.compile-HASH-PID-N.*` for the next PIDs),
/// at A's entry, its stamp and the input stamps: A's entry is gone, so the
/// run compiles and writes.
fn plant_links(setup: &Setup) -> Result<(), String> {
    remove(&setup.entry_a)?;
    let next = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .unwrap_or(1);
    let mut names = Vec::new();
    for pid in next..next + 64 {
        for n in 0..4 {
            names.push(format!(".tmp-{pid}-{n}"));
            for suffix in ["wasm", "toml", "err"] {
                names.push(format!(".compile-{}-{pid}-{n}.{suffix}", setup.hash_a));
            }
        }
    }
    let entry = setup.entry_a.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    names.push(entry.clone());
    names.push(entry.replace(".cwasm", ".verified"));
    let metadata = std::fs::metadata(&setup.a).map_err(|e| e.to_string())?;
    names.push(format!("input-{}-{}.stamp", metadata.dev(), metadata.ino()));
    for name in names {
        let link = setup.cache.join(&name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(setup.outside.join("victim"), &link).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Compiles the JavaScript guest (seconds of Cranelift) and kills its
/// worker with SIGKILL as soon as it runs: the CLI must say so, not blame a
/// limit, and leave no temporaries.
fn killed_worker() -> Outcome {
    match kill_worker() {
        Ok(outcome) => outcome,
        Err(error) => super::probe::host_failure(error),
    }
}

fn kill_worker() -> Result<Outcome, String> {
    let dir = crate::target_dir().join("adversarial/cache/killed-worker");
    let _ = std::fs::remove_dir_all(&dir);
    let cache = dir.join("cache");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, WIDE_POLICY).map_err(|e| e.to_string())?;
    let guest = crate::workspace_root().join("fixtures/guests/js-guest.wasm");
    let mut command = Command::new(crate::cli_binary()?);
    command.arg("compile").arg(&guest).arg("--policy").arg(&policy).arg("--cache-dir").arg(&cache);
    let started = Instant::now();
    let child = spawn(command)?;
    let parent = child.id();
    // The worker is the CLI's child running `__compile-worker`.
    let mut killed = None;
    while killed.is_none() && started.elapsed() < WALL {
        if let Some(worker) = child_running(parent, "__compile-worker") {
            command_status("kill", &["-KILL", &worker.to_string()])?;
            killed = Some(started.elapsed());
        }
        std::thread::park_timeout(Duration::from_millis(2));
    }
    let (code, _, stderr) = finish(child, started)?;
    let left: Vec<String> = std::fs::read_dir(&cache)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|item| item.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp-") || name.starts_with(".compile-"))
        .collect();
    let named = stderr.contains("compile_worker_failed") && stderr.contains("signal 9");
    let blames_limit = stderr.contains("max-compile-time") || stderr.contains("max-compile-memory");
    let observed = match killed {
        None => "the worker was never seen".to_owned(),
        Some(at) => format!(
            "exit {code:?}, {}, killed at {} ms{}",
            if named {
                "compile-worker-failed, signal 9"
            } else if blames_limit {
                "blamed a limit"
            } else {
                "other"
            },
            at.as_millis(),
            if left.is_empty() { String::new() } else { format!(", left {left:?}") }
        ),
    };
    let verdict = if killed.is_some() && code == Some(2) && named && !blames_limit && left.is_empty() {
        Verdict::Pass
    } else if crate::support::host_panicked(&stderr) {
        Verdict::HostFailure
    } else {
        Verdict::Misclassified
    };
    if verdict != Verdict::Pass {
        eprintln!("killed worker: {}", stderr.trim());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Outcome { observed, verdict, figures: None })
}

/// A child of `parent` whose command line contains `marker`.
fn child_running(parent: u32, marker: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.filter_map(Result::ok).find_map(|item| {
        let pid: u32 = item.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(item.path().join("stat")).ok()?;
        // `pid (comm) state ppid ...`: the command may hold spaces and parentheses.
        let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = std::fs::read(item.path().join("cmdline")).ok()?;
        (ppid == parent && String::from_utf8_lossy(&cmdline).contains(marker)).then_some(pid)
    })
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::rename(from, to).map_err(|e| format!("cannot rename {}: {e}", from.display()))
}

fn remove(path: &Path) -> Result<(), String> {
    std::fs::remove_file(path).map_err(|e| format!("cannot remove {}: {e}", path.display()))
}

fn command(program: &str, args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let status = Command::new(program).args(args).status().map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{program} failed: {status}")) }
}

fn command_status(program: &str, args: &[&str]) -> Result<(), String> {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    command(program, &args)
}
