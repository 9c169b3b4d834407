//! The runtime's figures that have no bare counterpart: how late a deadline
//! stops a guest, 10,000 concurrent sleeping calls, and resident memory per
//! idle instance.

use std::sync::Arc;
use std::time::Instant;

use runtime::{HostPolicy, Runtime};

use super::{GUEST, Row, limits, row};

/// p50 and p99 of how long past a 10 ms deadline a spinning guest is stopped.
pub(super) fn overshoot(runtime: &Runtime) -> Result<[Row; 2], String> {
    let component =
        runtime.load_bytes(GUEST.as_bytes(), &limits("1MiB", "10_000_000_000", "10ms")?).map_err(|e| e.to_string())?;
    let mut overshoots: Vec<f64> = (0..200)
        .map(|_| {
            let started = Instant::now();
            let _ = component.call("spin", &[]);
            (started.elapsed().as_secs_f64() - 0.010).max(0.0) * 1e6
        })
        .collect();
    overshoots.sort_by(f64::total_cmp);
    let percentile = |p: usize| overshoots.get(overshoots.len() * p / 100).copied().unwrap_or(f64::NAN);
    Ok([
        row("deadline overshoot p50 at 10 ms", percentile(50), None, "report only", |_| true),
        row("deadline overshoot p99 at 10 ms", percentile(99), None, "< 2000 us", |us| us < 2_000.0),
    ])
}

/// `nap`: sleeps 10 ms in the host.
pub(super) fn napping_guest() -> String {
    format!(
        r#"(component
  (import "{}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m (import "host" "sleep" (func $sleep (param i32))) (func (export "nap") (call $sleep (i32.const 10))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "nap") (canon lift (core func $i "nap"))))"#,
        runtime::host::TIME_INTERFACE
    )
}

/// Wall time of 10,000 concurrent calls that each sleep 10 ms in the host.
pub(super) fn sleeping_calls() -> Result<Row, String> {
    let wat = napping_guest();
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    // One component may use the whole pool: the row measures the pool and
    // the runtime's queue, not a component's quota.
    let policy = HostPolicy::builder().max_instances(1_000).build().map_err(|e| e.to_string())?;
    let runtime = Arc::new(Runtime::builder().policy(policy).build().map_err(|e| e.to_string())?);
    let component = runtime.load_bytes(wat.as_bytes(), &with_instances(1_000, "10s")?).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let failures = tokio.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..10_000 {
            let component = component.clone();
            calls.spawn(async move { component.call_async("nap", &[]).await.map_err(|e| e.to_string()) });
        }
        let mut failures = Vec::new();
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => failures.push(error),
                Err(error) => failures.push(error.to_string()),
            }
        }
        failures
    });
    let elapsed = started.elapsed();
    if let Some(first) = failures.first() {
        return Err(format!("{} of the sleeping calls failed; the first: {first}", failures.len()));
    }
    Ok(row("10,000 concurrent calls sleeping 10 ms", elapsed.as_secs_f64() * 1e6, None, "<= 120 ms", |us| {
        us <= 120_000.0
    }))
}

/// Resident memory per live, idle instance, over 1,000 instances (in a
/// runtime of its own, whose pool has room for all of them).
pub(super) fn idle_instance_rss() -> Result<Row, String> {
    let policy = HostPolicy::builder()
        .max_concurrent_instances(1_100)
        .max_instances(1_000)
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = Runtime::builder().policy(policy).build().map_err(|e| e.to_string())?;
    let component = runtime.load_bytes(GUEST.as_bytes(), &with_instances(1_000, "1s")?).map_err(|e| e.to_string())?;
    drop(component.call("noop", &[]));
    let before = rss_bytes()?;
    let instances =
        (0..1_000).map(|_| component.instantiate(())).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let after = rss_bytes()?;
    drop(instances);
    let per_instance = after.saturating_sub(before) as f64 / 1_000.0;
    Ok(Row {
        operation: "RSS per idle instance (bytes, of 1,000)".into(),
        ours_us: per_instance,
        bare_us: None,
        ratio: None,
        goal: "< 102400 bytes",
        met: per_instance < 102_400.0,
    })
}

pub(super) fn rss_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| e.to_string())?;
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or("malformed statm")?;
    Ok(pages * 4096)
}

/// What the facade adds to a typed warm call beyond runtime-core's own (its
/// tracing span with no subscriber, the observer hook with no observer), in
/// nanoseconds: the same component called through both, interleaved.
pub(super) fn facade_overhead(runtime: &Runtime) -> Result<Row, String> {
    use runtime_core::{ComponentLoader, LoadedComponent, StoreState};
    let component =
        runtime.load_bytes(GUEST.as_bytes(), &limits("1MiB", "1_000_000", "1s")?).map_err(|e| e.to_string())?;
    let mut facade = component.instantiate(()).map_err(|e| e.to_string())?;
    let engine = runtime_core::RuntimeEngine::new(HostPolicy::default(), runtime::Allocation::Pooling)
        .map_err(|e| e.to_string())?;
    let compiled = ComponentLoader::new(engine.clone()).load_bytes(GUEST.as_bytes()).map_err(|e| e.to_string())?;
    let linker = wasmtime::component::Linker::<StoreState>::new(engine.engine());
    let core =
        LoadedComponent::new(&engine, compiled, &linker, component.limits().clone()).map_err(|e| e.to_string())?;
    let mut core = core.instantiate().map_err(|e| e.to_string())?;
    let facade_noop = facade.typed::<(), ()>("noop").map_err(|e| e.to_string())?;
    let core_noop = core.typed::<(), ()>("noop").map_err(|e| e.to_string())?;
    // A difference of a few nanoseconds between two calls of about 250 ns:
    // the median of per-batch differences, over many short batches, is
    // steadier than the difference of two medians.
    let mut differences: Vec<f64> = (0..101)
        .map(|_| {
            let with = super::per_op(5_000, &mut || drop(facade.call_typed(&facade_noop, ())));
            let without = super::per_op(5_000, &mut || drop(core.call_typed(&core_noop, ())));
            (with - without) * 1_000.0
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    let nanos = differences[differences.len() / 2];
    Ok(row("facade per call, no subscriber (ns)", nanos, None, "<= 20 ns", |ns| ns <= 20.0))
}

/// Median wall time of 10 whole `wasm-runtime run` processes calling the
/// Rust guest once, its compiled code already in the disk cache (and
/// settled there, as a cache written minutes ago would be).
pub(super) fn cli_process() -> Result<Row, String> {
    let binary = attacks::support::build_cli(true)?;
    let root = attacks::support::workspace_root();
    let cache = attacks::support::target_dir().join("bench-cli-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let run = || {
        let started = Instant::now();
        let output = std::process::Command::new(&binary)
            .current_dir(&root)
            .args(["run", "fixtures/guests/rust-guest.wasm", "--manifest", "examples/rust-guest/Component.toml"])
            .args(["--invoke", "count-matches(\"[0-9]+\", \"a1 b22 c333\")", "--cache-dir"])
            .arg(&cache)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !output.status.success() {
            return Err(format!("wasm-runtime run failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        Ok(started.elapsed().as_secs_f64() * 1e6)
    };
    run()?;
    #[expect(clippy::disallowed_methods, reason = "the cache entry must really age: a ctime cannot be set back")]
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    run()?;
    let mut times = (0..10).map(|_| run()).collect::<Result<Vec<f64>, String>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    Ok(row("CLI process: run the cached Rust guest (median of 10)", median, None, "<= 5000 us", |us| us <= 5_000.0))
}

/// A 1 MiB, 1,000,000-fuel manifest whose component may have `instances` at once.
fn with_instances(instances: u32, timeout: &str) -> Result<runtime::ComponentManifest, String> {
    let mut manifest = limits("1MiB", "1_000_000", timeout)?;
    manifest.resources = manifest.resources.with_instances(instances);
    Ok(manifest)
}
