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
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use runtime_manifest::HostPolicy;
use wait_timeout::ChildExt;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{Allocation, ContentHash, DiskCache, LoadError};

/// The program a loader runs to compile: `program args... --cache-dir DIR
/// --input FILE --policy FILE --allocation pooling|on-demand`.
#[derive(Debug, Clone)]
pub struct CompileWorker {
    program: PathBuf,
    args: Vec<OsString>,
}

impl CompileWorker {
    /// Runs `program` with `args` first (a subcommand, say), then the
    /// worker's own arguments.
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        Self { program: program.into(), args: args.into_iter().map(Into::into).collect() }
    }

    /// Compiles `binary` (whose hash is `hash`) for `allocation` under
    /// `policy` into `cache`, in a child process bounded by the policy's
    /// compile limits.
    pub(crate) fn compile(
        &self,
        binary: &[u8],
        hash: ContentHash,
        policy: &HostPolicy,
        allocation: Allocation,
        cache: &DiskCache,
    ) -> Result<(), LoadError> {
        let io = |what: &str, error: std::io::Error| LoadError::CompileFailed {
            message: format!("the compile worker could not {what}: {error}"),
        };
        // Unique per compile: two loads of one component at once each have their own files.
        static COMPILES: AtomicU64 = AtomicU64::new(0);
        let n = COMPILES.fetch_add(1, Ordering::Relaxed);
        let stem = format!(".compile-{}-{}-{n}", hash.to_hex(), std::process::id());
        let input = cache.dir().join(format!("{stem}.wasm"));
        let policy_file = cache.dir().join(format!("{stem}.toml"));
        // A file, not a pipe: a child that writes more than a pipe holds
        // would block until the time limit killed it.
        let stderr_file = cache.dir().join(format!("{stem}.err"));
        let _cleanup = Cleanup(vec![input.clone(), policy_file.clone(), stderr_file.clone()]);
        std::fs::create_dir_all(cache.dir()).map_err(|e| io("create the cache directory", e))?;
        std::fs::write(&input, binary).map_err(|e| io("write its input", e))?;
        std::fs::write(&policy_file, policy.to_toml()).map_err(|e| io("write its policy", e))?;
        let stderr = std::fs::File::create(&stderr_file).map_err(|e| io("create its error file", e))?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg("--cache-dir")
            .arg(cache.dir())
            .arg("--input")
            .arg(&input)
            .arg("--policy")
            .arg(&policy_file)
            .arg("--allocation")
            .arg(allocation_name(allocation))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| io(&format!("start `{}`", self.program.display()), e))?;
        let limits = policy.compile_budget();
        let waited = child.wait_timeout(limits.max_compile_time.as_duration()).map_err(|e| io("be waited for", e))?;
        let Some(status) = waited else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(LoadError::CompileLimitExceeded {
                limit: "max-compile-time",
                value: format!("{} of wall time", limits.max_compile_time),
            });
        };
        let mut stderr = String::new();
        if let Ok(file) = std::fs::File::open(&stderr_file) {
            let _ = file.take(64 * 1024).read_to_string(&mut stderr);
        }
        if status.success() {
            return Ok(());
        }
        Err(failure(status, stderr.trim(), limits))
    }
}

/// What a worker's failed exit means.
fn failure(status: std::process::ExitStatus, stderr: &str, limits: &runtime_manifest::CompileBudget) -> LoadError {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // SIGXCPU at the soft CPU limit, SIGKILL at the hard one.
        if matches!(status.signal(), Some(24 | 9)) {
            return LoadError::CompileLimitExceeded {
                limit: "max-compile-time",
                value: format!("{} of CPU time per compiling thread", limits.max_compile_time),
            };
        }
        // An allocation the address-space limit refused aborts the child.
        if status.signal() == Some(6) || stderr.contains("memory allocation") {
            return LoadError::CompileLimitExceeded {
                limit: "max-compile-memory",
                value: format!("{} of address space", limits.max_compile_memory),
            };
        }
    }
    let message = if stderr.is_empty() { format!("the compile worker failed ({status})") } else { stderr.to_owned() };
    LoadError::CompileFailed { message }
}

fn allocation_name(allocation: Allocation) -> &'static str {
    match allocation {
        Allocation::Pooling => "pooling",
        _ => "on-demand",
    }
}

/// Files removed when the compile ends, however it ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The worker's side: limits this process to the policy's compile memory and
/// CPU time, compiles `input` for an engine configured as the host's
/// (`allocation`, `policy`) and writes it into the cache at `cache_dir`.
/// Returns the process's exit code: 0 compiled, 2 refused or failed (the
/// reason on stderr).
pub fn compile_worker_main(cache_dir: &Path, input: &Path, policy: &Path, allocation: &str) -> u8 {
    match compile_in_this_process(cache_dir, input, policy, allocation) {
        Ok(()) => 0,
        Err(message) => {
            // The parent reads this line as the failure's message.
            eprintln!("{message}");
            2
        }
    }
}

fn compile_in_this_process(cache_dir: &Path, input: &Path, policy: &Path, allocation: &str) -> Result<(), String> {
    let policy = HostPolicy::from_path(policy).map_err(|e| format!("the compile worker's policy: {e}"))?;
    let allocation = match allocation {
        "pooling" => Allocation::Pooling,
        "on-demand" => Allocation::OnDemand,
        other => return Err(format!("unknown allocation `{other}`")),
    };
    let budget = policy.compile_budget();
    limit_this_process(budget.max_compile_memory.as_bytes(), budget.max_compile_time.as_duration())?;
    let binary = std::fs::read(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let engine = compile_engine(&policy, allocation)?;
    let component = Component::from_binary(&engine, &binary).map_err(|e| format!("{e:#}"))?;
    DiskCache::new(cache_dir, &engine).put(ContentHash::of(&binary), &component);
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
