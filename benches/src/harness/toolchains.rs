//! `cargo xtask bench toolchains`: the Python (componentize-py) and
//! JavaScript (componentize-js) guests' cold compile (wall and CPU), cached
//! load, and instantiation with a first call, through the runtime (the
//! compile in its worker process, as the CLI does) and through bare wasmtime
//! (the same engine configuration, compiling in process), in one run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use runtime::{CompileWorker, HostPolicy, Runtime, Val};

use super::bare::BareColdStart;
use super::{Row, row};

/// The export both guests implement, and its expected result.
const ADD: (&str, &str) = ("docs:adder/add@0.1.0", "add");

pub(super) fn toolchain_rows() -> Result<Vec<Row>, String> {
    let cli = attacks::support::build_cli(true)?;
    // The README's policy, wide enough for both guests.
    let policy = HostPolicy::from_path(attacks::support::workspace_root().join("examples/policy/wide.toml"))
        .map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for (language, file) in [("Python", "python-guest.wasm"), ("JavaScript", "js-guest.wasm")] {
        let path = attacks::support::workspace_root().join("fixtures/guests").join(file);
        let dir = std::env::temp_dir().join(format!("wasm-runtime-bench-{}-{file}", std::process::id()));
        let measured = measure(&tokio, &cli, &policy, &path, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let m = measured?;
        let name = |what: &str| format!("{language} guest: {what}");
        rows.push(row(
            name("cold compile, wall ms"),
            m.ours_cold.wall_ms(),
            Some(m.bare_cold.wall_ms()),
            "report only",
            |_| true,
        ));
        rows.push(row(
            name("cold compile, CPU ms"),
            m.ours_cold.cpu_ms(),
            Some(m.bare_cold.cpu_ms()),
            "report only",
            |_| true,
        ));
        rows.push(row(
            name("cold compile, wall / CPU (ours)"),
            m.ours_cold.wall_ms() / m.ours_cold.cpu_ms().max(1.0),
            None,
            "<= 0.65 on 2 cores",
            |r| r <= 0.65,
        ));
        rows.push(row(name("first cached load (checksum), ms"), m.ours_verify_ms, None, "report only", |_| true));
        rows.push(row(name("cached load, ms"), m.ours_cached_ms, Some(m.bare_cached_ms), "report only", |_| true));
        rows.push(row(
            name("instantiate + first call, ms"),
            m.ours_call_ms,
            Some(m.bare_call_ms),
            "report only",
            |_| true,
        ));
    }
    Ok(rows)
}

/// Wall and CPU time of one operation; CPU includes waited-for children.
struct Spent {
    wall: Duration,
    cpu_ticks: u64,
}

impl Spent {
    fn wall_ms(&self) -> f64 {
        self.wall.as_secs_f64() * 1e3
    }

    fn cpu_ms(&self) -> f64 {
        // Linux reports CPU time in clock ticks of 10 ms (USER_HZ = 100).
        self.cpu_ticks as f64 * 10.0
    }
}

fn spent<R>(operation: impl FnOnce() -> Result<R, String>) -> Result<(R, Spent), String> {
    let (cpu_before, started) = (cpu_ticks()?, Instant::now());
    let result = operation()?;
    let wall = started.elapsed();
    Ok((result, Spent { wall, cpu_ticks: cpu_ticks()?.saturating_sub(cpu_before) }))
}

/// User and system time of this process and its waited-for children.
fn cpu_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command name, which is in parentheses: utime is 14th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).ok_or("malformed /proc/self/stat")?;
    let fields: Vec<u64> = after.split_whitespace().skip(11).take(4).filter_map(|f| f.parse().ok()).collect();
    Ok(fields.iter().sum())
}

struct Measured {
    ours_cold: Spent,
    bare_cold: Spent,
    ours_verify_ms: f64,
    ours_cached_ms: f64,
    bare_cached_ms: f64,
    ours_call_ms: f64,
    bare_call_ms: f64,
}

fn measure(
    tokio: &tokio::runtime::Runtime,
    cli: &Path,
    policy: &HostPolicy,
    path: &Path,
    dir: &Path,
) -> Result<Measured, String> {
    let manifest = attacks::support::limits_manifest("48MiB", "10_000_000_000", "30s")?;
    let cache: PathBuf = dir.join("cache");
    let runtime = |worker: bool| {
        let builder = Runtime::builder().policy(policy.clone()).disk_cache(&cache);
        let builder =
            if worker { builder.compile_worker(CompileWorker::new(cli, ["__compile-worker"])) } else { builder };
        builder.build().map_err(|e| e.to_string())
    };
    let cold = runtime(true)?;
    let (_, ours_cold) = spent(|| cold.load_file(path, &manifest, ".").map_err(|e| e.to_string()))?;
    drop(cold);
    let wasm = std::fs::read(path).map_err(|e| e.to_string())?;
    let cwasm = dir.join("guest.cwasm");
    let (bare, bare_cold) = spent(|| BareColdStart::prepare(policy, &wasm, &cwasm))?;

    // The first load of a settled entry verifies its checksum and stamps it
    // (see the disk cache); what a host then sees on every start is the next.
    let verifying = runtime(true)?;
    let (_, ours_verify) = spent(|| verifying.load_file(path, &manifest, ".").map_err(|e| e.to_string()))?;
    drop(verifying);
    let cached = runtime(true)?;
    let (component, ours_cached) = spent(|| cached.load_file(path, &manifest, ".").map_err(|e| e.to_string()))?;
    let (loaded, bare_cached) = spent(|| bare.load(&cwasm))?;

    let args = [Val::U32(40), Val::U32(2)];
    let export = format!("{}#{}", ADD.0, ADD.1);
    let started = Instant::now();
    let outcome = tokio.block_on(component.call_async(&export, &args)).map_err(|e| e.to_string())?;
    let ours_call = started.elapsed();
    let started = Instant::now();
    let results = tokio.block_on(bare.call(&loaded, &[ADD.0, ADD.1], &args))?;
    let bare_call = started.elapsed();
    if outcome.results != [Val::U32(42)] || results != [Val::U32(42)] {
        return Err(format!("add(40, 2) returned {:?} and {results:?}", outcome.results));
    }
    Ok(Measured {
        ours_cold,
        bare_cold,
        ours_verify_ms: ours_verify.wall_ms(),
        ours_cached_ms: ours_cached.wall_ms(),
        bare_cached_ms: bare_cached.wall_ms(),
        ours_call_ms: ours_call.as_secs_f64() * 1e3,
        bare_call_ms: bare_call.as_secs_f64() * 1e3,
    })
}
