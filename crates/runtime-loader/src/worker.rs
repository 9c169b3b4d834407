//! Compiling in a killable child process. Cranelift's time and memory on a
//! hostile input are bounded only by the compile budget's static counts;
//! wasmtime's maintainers treat compile-time denial of service as out of
//! scope and suggest a separate process. Here a cache miss can be compiled by
//! a child (the `wasm-runtime` binary's hidden `__compile-worker` command, or
//! any program that calls [`compile_worker_main`]) that limits itself with
//! `setrlimit` (address space, CPU time) before it compiles, while the host
//! bounds its wall time and kills it past the limit. The child writes the
//! compiled code into the disk cache (keyed, checksummed and renamed into
//! place as any entry), where the host then finds it as it finds any entry.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use runtime_manifest::HostPolicy;
use wait_timeout::ChildExt;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::cache::{WORKER_TEMP_PREFIX, remove_temporaries_of};
use crate::{Allocation, ContentHash, DiskCache, LoadError};

/// The program a loader runs to compile: `program args... --cache-dir DIR
/// --input FILE --policy FILE --allocation pooling|on-demand`, with the
/// host's disk-cache budget in [`CACHE_BUDGET_ENV`].
#[derive(Debug, Clone)]
pub struct CompileWorker {
    program: PathBuf,
    args: Vec<OsString>,
}

/// The environment variable that tells a worker the host's disk-cache
/// budget in bytes: the entry it writes makes room within it.
pub const CACHE_BUDGET_ENV: &str = "WASM_RUNTIME_COMPILE_CACHE_BUDGET";

impl CompileWorker {
    /// Runs `program` with `args` first (a subcommand, say), then the
    /// worker's own arguments.
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Self { program: program.into(), args: args.into_iter().map(Into::into).collect() }
    }

    /// Compiles `binary` (whose hash is `hash`) for `allocation` under
    /// `policy` into `cache`, in a child process bounded by the policy's
    /// compile limits. At most one worker per core runs at a time in this
    /// process; a compile waits for its turn within its own time limit.
    pub(crate) fn compile(
        &self,
        binary: &[u8],
        hash: ContentHash,
        policy: &HostPolicy,
        allocation: Allocation,
        cache: &DiskCache,
    ) -> Result<(), LoadError> {
        let io = |what: &str, error: std::io::Error| LoadError::CompileWorker {
            what: format!("the compile worker could not {what}: {error}"),
        };
        let limits = policy.compile_budget();
        let wall = limits.max_compile_time.as_duration();
        let started = Instant::now();
        let Some(_slot) = WorkerSlots::global().acquire(wall) else {
            return Err(LoadError::CompileLimitExceeded {
                limit: "max-compile-time",
                value: format!("{} of wall time, spent waiting for a free compile worker", limits.max_compile_time),
            });
        };
        cache.check_dir()?;
        // Created with O_CREAT|O_EXCL under random names, removed when
        // dropped; a killed host's are removed as stale by a later start.
        let temp = |suffix: &str| {
            tempfile::Builder::new()
                .prefix(&format!("{WORKER_TEMP_PREFIX}{}-", &hash.to_hex()[..16]))
                .suffix(suffix)
                .tempfile_in(cache.dir())
        };
        let mut input = temp(".wasm").map_err(|e| io("create its input", e))?;
        input.write_all(binary).map_err(|e| io("write its input", e))?;
        let mut policy_file = temp(".toml").map_err(|e| io("create its policy", e))?;
        policy_file.write_all(policy.to_toml().as_bytes()).map_err(|e| io("write its policy", e))?;
        // A file, not a pipe: a child that writes more than a pipe holds
        // would block until the time limit killed it.
        let stderr_file = temp(".err").map_err(|e| io("create its error file", e))?;
        let stderr = stderr_file.reopen().map_err(|e| io("open its error file", e))?;
        let job = WorkerJob {
            cache_dir: cache.dir().to_owned(),
            input: input.path().to_owned(),
            policy: policy_file.path().to_owned(),
            allocation,
        };
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .args(job.to_args())
            .env(CACHE_BUDGET_ENV, cache.budget().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| io(&format!("start `{}`", self.program.display()), e))?;
        let spawned = Instant::now();
        let remaining = wall.saturating_sub(started.elapsed());
        let waited = child.wait_timeout(remaining).map_err(|e| io("be waited for", e))?;
        let Some(status) = waited else {
            let _ = child.kill();
            let _ = child.wait();
            remove_temporaries_of(cache.dir(), child.id());
            return Err(LoadError::CompileLimitExceeded {
                limit: "max-compile-time",
                value: format!("{} of wall time", limits.max_compile_time),
            });
        };
        if status.success() {
            return Ok(());
        }
        // A worker killed while writing its entry leaves the temporary.
        remove_temporaries_of(cache.dir(), child.id());
        let mut stderr = String::new();
        if let Ok(file) = stderr_file.reopen() {
            let _ = file.take(64 * 1024).read_to_string(&mut stderr);
        }
        Err(failure(status, stderr.trim(), limits, spawned.elapsed()))
    }
}

/// At most one compile worker per core at a time in this process: N cache
/// misses at once would otherwise start N workers, each allowed every core
/// and `max-compile-memory`.
struct WorkerSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl WorkerSlots {
    fn global() -> &'static Self {
        static SLOTS: OnceLock<WorkerSlots> = OnceLock::new();
        SLOTS.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            Self { free: Mutex::new(cores), freed: Condvar::new() }
        })
    }

    /// A slot, waiting at most `timeout` for one.
    fn acquire(&'static self, timeout: Duration) -> Option<WorkerSlot> {
        let deadline = Instant::now() + timeout;
        let mut free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *free == 0 {
            let left = deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())?;
            free = self.freed.wait_timeout(free, left).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
        *free -= 1;
        Some(WorkerSlot(self))
    }
}

/// A worker slot, returned when dropped.
struct WorkerSlot(&'static WorkerSlots);

impl Drop for WorkerSlot {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

/// What a worker's failed exit means: a limit it hit, a signal from
/// elsewhere, a crash, or the component's own compile error.
fn failure(
    status: std::process::ExitStatus,
    stderr: &str,
    limits: &runtime_manifest::CompileBudget,
    ran: Duration,
) -> LoadError {
    // Rust's allocation-failure handler, and the OS error of a refused mapping.
    let out_of_memory = stderr.contains("memory allocation of") || stderr.contains("Cannot allocate memory");
    let memory_limit = || LoadError::CompileLimitExceeded {
        limit: "max-compile-memory",
        value: format!("{} of address space", limits.max_compile_memory),
    };
    let cpu_limit = || LoadError::CompileLimitExceeded {
        limit: "max-compile-time",
        value: format!("{} of CPU time per compiling thread", limits.max_compile_time),
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            const SIGABRT: i32 = 6;
            const SIGKILL: i32 = 9;
            const SIGXCPU: i32 = 24;
            let name = match signal_name(signal) {
                Some(named) => format!("signal {signal} (SIG{named})"),
                None => format!("signal {signal}"),
            };
            // SIGXCPU comes at the soft CPU limit, SIGKILL at the hard one:
            // the worker's limit is the wall limit's seconds on every core,
            // which it cannot use up in less wall time (10% slack for clock
            // granularity). Sooner, the signal came from elsewhere.
            let cpu_possible = ran.saturating_mul(10) >= cpu_seconds(limits.max_compile_time.as_duration()) * 9;
            return match signal {
                SIGXCPU | SIGKILL if cpu_possible => cpu_limit(),
                SIGABRT if out_of_memory => memory_limit(),
                SIGXCPU | SIGKILL => LoadError::CompileWorker {
                    what: format!(
                        "the compile worker was killed by {name} after {} ms, from outside (or by the kernel's out-of-memory killer)",
                        ran.as_millis()
                    ),
                },
                _ => LoadError::CompileWorker {
                    what: format!("the compile worker crashed: {name} after {} ms{}", ran.as_millis(), tail(stderr)),
                },
            };
        }
    }
    if out_of_memory {
        return memory_limit();
    }
    match status.code() {
        // 2: the worker's own refusal, on its stderr (the component's error).
        Some(2) if !stderr.is_empty() => LoadError::CompileFailed { message: stderr.to_owned() },
        _ => LoadError::CompileWorker { what: format!("the compile worker crashed ({status}){}", tail(stderr)) },
    }
}

/// The wall time in which a worker can use up its CPU limit for a wall
/// limit of `wall` on every core (see `limit_this_process`).
fn cpu_seconds(wall: Duration) -> Duration {
    Duration::from_secs(wall.as_secs().max(1))
}

/// `: STDERR` when the worker said something.
fn tail(stderr: &str) -> String {
    if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
}

/// The usual names of the signals a worker may end by (Linux numbering).
#[cfg(unix)]
fn signal_name(signal: i32) -> Option<&'static str> {
    Some(match signal {
        1 => "HUP",
        2 => "INT",
        3 => "QUIT",
        4 => "ILL",
        6 => "ABRT",
        7 => "BUS",
        8 => "FPE",
        9 => "KILL",
        11 => "SEGV",
        13 => "PIPE",
        15 => "TERM",
        24 => "XCPU",
        25 => "XFSZ",
        31 => "SYS",
        _ => return None,
    })
}

fn allocation_name(allocation: Allocation) -> &'static str {
    match allocation {
        Allocation::Pooling => "pooling",
        _ => "on-demand",
    }
}

/// One compile as the host asks a worker for it: the worker's arguments,
/// written by [`WorkerJob::to_args`] and read by [`WorkerJob::from_args`]
/// alone.
struct WorkerJob {
    cache_dir: PathBuf,
    input: PathBuf,
    policy: PathBuf,
    allocation: Allocation,
}

impl WorkerJob {
    fn to_args(&self) -> Vec<OsString> {
        let mut args = Vec::with_capacity(8);
        for (flag, value) in [
            ("--cache-dir", self.cache_dir.as_os_str()),
            ("--input", self.input.as_os_str()),
            ("--policy", self.policy.as_os_str()),
            ("--allocation", std::ffi::OsStr::new(allocation_name(self.allocation))),
        ] {
            args.push(flag.into());
            args.push(value.to_owned());
        }
        args
    }

    fn from_args(args: &[OsString]) -> Result<Self, String> {
        let mut found: [Option<&OsString>; 4] = [None; 4];
        let flags = ["--cache-dir", "--input", "--policy", "--allocation"];
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let slot = flags.iter().position(|known| flag == known);
            let Some(slot) = slot else { return Err(format!("unknown worker argument `{}`", flag.to_string_lossy())) };
            found[slot] = Some(rest.next().ok_or_else(|| format!("`{}` needs a value", flags[slot]))?);
        }
        let [Some(cache_dir), Some(input), Some(policy), Some(allocation)] = found else {
            return Err(format!("the compile worker needs {}", flags.join(", ")));
        };
        let allocation = match allocation.to_str() {
            Some("pooling") => Allocation::Pooling,
            Some("on-demand") => Allocation::OnDemand,
            _ => return Err(format!("unknown allocation `{}`", allocation.to_string_lossy())),
        };
        Ok(Self { cache_dir: cache_dir.into(), input: input.into(), policy: policy.into(), allocation })
    }
}

/// The worker's side, given the arguments its host passed after the
/// program's own (see [`CompileWorker::new`]): limits this process to the
/// policy's compile memory and CPU time, compiles the input for an engine
/// configured as the host's and writes it into the host's cache. Returns
/// the process's exit code: 0 compiled, 2 refused or failed (the reason on
/// stderr).
pub fn compile_worker_main(args: &[OsString]) -> u8 {
    let compiled = WorkerJob::from_args(args).and_then(|job| compile_in_this_process(&job));
    match compiled {
        Ok(()) => 0,
        Err(message) => {
            // The parent reads this line as the failure's message.
            eprintln!("{message}");
            2
        }
    }
}

fn compile_in_this_process(job: &WorkerJob) -> Result<(), String> {
    let WorkerJob { cache_dir, input, policy, allocation } = job;
    let allocation = *allocation;
    let policy = HostPolicy::from_path(policy).map_err(|e| format!("the compile worker's policy: {e}"))?;
    let budget = policy.compile_budget();
    limit_this_process(budget.max_compile_memory.as_bytes(), budget.max_compile_time.as_duration())?;
    let binary = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let engine = compile_engine(&policy, allocation)?;
    let component = Component::from_binary(&engine, &binary).map_err(|e| format!("{e:#}"))?;
    let mut cache = DiskCache::new(cache_dir, &engine).with_allocation(allocation);
    // The host's budget, so that this entry makes room within it.
    if let Some(budget) = std::env::var(CACHE_BUDGET_ENV).ok().and_then(|text| text.parse().ok()) {
        cache = cache.with_budget(budget);
    }
    cache.put(ContentHash::of(&binary), &component);
    Ok(())
}

/// An engine whose compiled code the host's engine for `allocation` accepts:
/// the same configuration, tunables included, but allocating on demand, so
/// the worker reserves no instance pool inside its address-space limit.
fn compile_engine(policy: &HostPolicy, allocation: Allocation) -> Result<Engine, String> {
    let mut config = crate::engine_config(policy, allocation);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::OnDemand);
    #[expect(clippy::disallowed_methods, reason = "runtime-core is the one place that builds engines")]
    Engine::new(&config).map_err(|e| format!("cannot build the compile engine: {e:#}"))
}

#[cfg(unix)]
fn limit_this_process(address_space: u64, cpu: Duration) -> Result<(), String> {
    use rlimit::Resource;
    Resource::AS.set(address_space, address_space).map_err(|e| format!("cannot limit the address space: {e}"))?;
    // Every compiling thread may use the wall-time limit in CPU.
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u64;
    let seconds = cpu.as_secs().max(1).saturating_mul(threads);
    Resource::CPU.set(seconds, seconds.saturating_add(1)).map_err(|e| format!("cannot limit CPU time: {e}"))
}

#[cfg(not(unix))]
fn limit_this_process(_address_space: u64, _cpu: Duration) -> Result<(), String> {
    Err(String::from("a compile worker needs a Unix host to limit itself"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_back_as_written_and_a_wrong_one_is_named() {
        let job = WorkerJob {
            cache_dir: "/cache".into(),
            input: "/cache/.compile-in.wasm".into(),
            policy: "/cache/.compile-p.toml".into(),
            allocation: Allocation::OnDemand,
        };
        let read = WorkerJob::from_args(&job.to_args());
        let read = read.as_ref().map(|r| (&r.cache_dir, &r.input, &r.policy, r.allocation));
        assert_eq!(read, Ok((&job.cache_dir, &job.input, &job.policy, Allocation::OnDemand)));
        let mut missing = job.to_args();
        missing.truncate(6);
        assert!(WorkerJob::from_args(&missing).is_err_and(|e| e.contains("--allocation")));
        let mut odd = job.to_args();
        odd[7] = "sometimes".into();
        assert!(WorkerJob::from_args(&odd).is_err_and(|e| e.contains("sometimes")));
        assert!(WorkerJob::from_args(&["--output".into(), "x".into()]).is_err_and(|e| e.contains("--output")));
    }
}
