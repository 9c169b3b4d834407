//! `cargo xtask bench`: the key operations through the facade and through
//! bare wasmtime (same engine configuration, same fixture) in one process,
//! interleaved batch by batch, so that the overhead of the safety layer is a
//! ratio measured under the same conditions. Plus the runtime's own figures:
//! deadline overshoot, 10,000 concurrent sleeping calls, RSS per idle
//! instance, and the cost of a trapping call.

use std::sync::Arc;
use std::time::Instant;

use runtime::wasmtime::component::{Component, Linker};
use runtime::wasmtime::{Engine, Store};
use runtime::{Allocation, ComponentManifest, HostPolicy, LimitFlags, Runtime, engine_config};
use serde::Serialize;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Row {
    operation: &'static str,
    ours_us: f64,
    bare_us: Option<f64>,
    ratio: Option<f64>,
    goal: &'static str,
    met: bool,
}

const GUEST: &str = r#"(component
  (core module $m
    (memory 1)
    (func (export "noop"))
    (func (export "trap") unreachable)
    (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m))
  (func (export "noop") (canon lift (core func $i "noop")))
  (func (export "trap") (canon lift (core func $i "trap")))
  (func (export "spin") (canon lift (core func $i "spin"))))"#;

pub(crate) fn run(options: &Options) -> Result<bool, String> {
    // Figures of a debug build mean nothing: rerun this command optimized.
    if cfg!(debug_assertions) {
        let mut command = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.args(["run", "--release", "--quiet", "--package", "xtask", "--", "bench"]);
        if options.json {
            command.arg("--json");
        }
        let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        return Ok(status.success());
    }
    let runtime = Runtime::builder().build().map_err(|e| e.to_string())?;
    let manifest = limits("1MiB", "1_000_000", "1s")?;
    let ours = runtime.load_bytes(GUEST.as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let bare = Bare::new(GUEST)?;
    let mut rows = Vec::new();

    let (o, b) = interleaved(|| drop(ours.call("noop", &[])), || bare.fresh_call("noop"));
    rows.push(row("instantiate + call (pooled)", o, Some(b), "<= 1.10x bare", |r| r <= 1.10));

    let mut instance = ours.instantiate().map_err(|e| e.to_string())?;
    let mut warm = bare.live()?;
    let (o, b) = interleaved(|| drop(instance.call("noop", &[])), || warm.call("noop"));
    rows.push(row("warm call on a live instance", o, Some(b), "<= 1.20x bare", |r| r <= 1.20));

    let (o, b) = interleaved(|| drop(ours.call("trap", &[])), || bare.fresh_call("trap"));
    rows.push(row("trapping call (fresh instance)", o, Some(b), "report only", |_| true));

    rows.push(overshoot(&runtime)?);
    rows.push(sleeping_calls()?);
    drop(instance);
    rows.push(idle_instance_rss()?);

    let met = rows.iter().all(|row| row.met);
    if options.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        print_line(&json);
    } else {
        print_table(&rows);
    }
    Ok(met)
}

fn limits(memory: &str, fuel: &str, timeout: &str) -> Result<ComponentManifest, String> {
    ComponentManifest::from_limit_flags(LimitFlags { memory, fuel, timeout }, &HostPolicy::default())
        .map_err(|e| e.to_string())
}

/// Bare wasmtime doing the same work: the same engine configuration, the
/// same component, an `InstancePre` built once, fuel and an epoch deadline
/// set per store, and nothing else.
struct Bare {
    engine: Engine,
    pre: runtime::wasmtime::component::InstancePre<()>,
}

struct BareLive {
    store: Store<()>,
    instance: runtime::wasmtime::component::Instance,
}

impl Bare {
    fn new(wat: &str) -> Result<Self, String> {
        let config = engine_config(&HostPolicy::default(), Allocation::Pooling);
        #[expect(clippy::disallowed_methods, reason = "the baseline is bare wasmtime with the runtime's configuration")]
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let component = Component::new(&engine, wat).map_err(|e| e.to_string())?;
        let pre = Linker::new(&engine).instantiate_pre(&component).map_err(|e| e.to_string())?;
        Ok(Self { engine, pre })
    }

    fn store(&self) -> Store<()> {
        let mut store = Store::new(&self.engine, ());
        let _ = store.set_fuel(1_000_000);
        store.set_epoch_deadline(1_000);
        store
    }

    fn fresh_call(&self, export: &str) {
        let mut store = self.store();
        if let Ok(instance) = self.pre.instantiate(&mut store)
            && let Some(func) = instance.get_func(&mut store, export)
        {
            let _ = func.call(&mut store, &[], &mut []);
        }
    }

    fn live(&self) -> Result<BareLive, String> {
        let mut store = self.store();
        let instance = self.pre.instantiate(&mut store).map_err(|e| e.to_string())?;
        Ok(BareLive { store, instance })
    }
}

impl BareLive {
    fn call(&mut self, export: &str) {
        let _ = self.store.set_fuel(1_000_000);
        if let Some(func) = self.instance.get_func(&mut self.store, export) {
            let _ = func.call(&mut self.store, &[], &mut []);
        }
    }
}

/// Median microseconds per operation of `ours` and `bare`, measured in
/// alternating batches so that both see the same machine state.
fn interleaved(mut ours: impl FnMut(), mut bare: impl FnMut()) -> (f64, f64) {
    const BATCHES: usize = 31;
    const PER_BATCH: usize = 200;
    for _ in 0..PER_BATCH {
        ours();
        bare();
    }
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for _ in 0..BATCHES {
        o.push(per_op(PER_BATCH, &mut ours));
        b.push(per_op(PER_BATCH, &mut bare));
    }
    (median(o), median(b))
}

fn per_op(count: usize, op: &mut impl FnMut()) -> f64 {
    let started = Instant::now();
    for _ in 0..count {
        op();
    }
    started.elapsed().as_secs_f64() * 1e6 / count as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn row(operation: &'static str, ours: f64, bare: Option<f64>, goal: &'static str, ok: impl Fn(f64) -> bool) -> Row {
    let ratio = bare.map(|b| ours / b);
    Row { operation, ours_us: ours, bare_us: bare, ratio, goal, met: ok(ratio.unwrap_or(ours)) }
}

/// p99 of how long past a 10 ms deadline a spinning guest is stopped.
fn overshoot(runtime: &Runtime) -> Result<Row, String> {
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
    let p99 = overshoots.get(overshoots.len() * 99 / 100).copied().unwrap_or(f64::NAN);
    Ok(row("deadline overshoot p99 at 10 ms", p99, None, "< 2000 us", |us| us < 2_000.0))
}

/// Wall time of 10,000 concurrent calls that each sleep 10 ms in the host.
fn sleeping_calls() -> Result<Row, String> {
    let wat = format!(
        r#"(component
  (import "{}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m (import "host" "sleep" (func $sleep (param i32))) (func (export "nap") (call $sleep (i32.const 10))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "nap") (canon lift (core func $i "nap"))))"#,
        runtime::TIME_INTERFACE
    );
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let runtime = Arc::new(Runtime::builder().build().map_err(|e| e.to_string())?);
    let component =
        runtime.load_bytes(wat.as_bytes(), &limits("1MiB", "1_000_000", "10s")?).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let failures = tokio.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..10_000 {
            let (runtime, component) = (runtime.clone(), component.clone());
            calls.spawn(async move { runtime.call_async(&component, "nap", &[]).await.is_ok() });
        }
        let mut failures = 0;
        while let Some(joined) = calls.join_next().await {
            failures += usize::from(!joined.unwrap_or(false));
        }
        failures
    });
    let elapsed = started.elapsed();
    if failures > 0 {
        return Err(format!("{failures} sleeping calls failed"));
    }
    Ok(row("10,000 concurrent calls sleeping 10 ms", elapsed.as_secs_f64() * 1e6, None, "< 1 s", |us| us < 1e6))
}

/// Resident memory per live, idle instance, over 1,000 instances (in a
/// runtime of its own, whose pool has room for all of them).
fn idle_instance_rss() -> Result<Row, String> {
    let policy = HostPolicy::builder().max_concurrent_instances(1_100).build().map_err(|e| e.to_string())?;
    let runtime = Runtime::builder().policy(policy).build().map_err(|e| e.to_string())?;
    let component =
        runtime.load_bytes(GUEST.as_bytes(), &limits("1MiB", "1_000_000", "1s")?).map_err(|e| e.to_string())?;
    drop(component.call("noop", &[]));
    let before = rss_bytes()?;
    let instances =
        (0..1_000).map(|_| component.instantiate()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let after = rss_bytes()?;
    drop(instances);
    let per_instance = after.saturating_sub(before) as f64 / 1_000.0;
    Ok(Row {
        operation: "RSS per idle instance (bytes, of 1,000)",
        ours_us: per_instance,
        bare_us: None,
        ratio: None,
        goal: "< 102400 bytes",
        met: per_instance < 102_400.0,
    })
}

fn rss_bytes() -> Result<u64, String> {
    let statm = std::fs::read_to_string("/proc/self/statm").map_err(|e| e.to_string())?;
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).ok_or("malformed statm")?;
    Ok(pages * 4096)
}

#[expect(clippy::print_stdout, reason = "the table is the command's output")]
fn print_line(line: &str) {
    println!("{line}");
}

fn print_table(rows: &[Row]) {
    print_line(&format!("{:<42} {:>12} {:>12} {:>7}  {:<16} met", "operation", "ours", "bare", "ratio", "goal"));
    for row in rows {
        let bare = row.bare_us.map_or("-".to_owned(), |b| format!("{b:.2}"));
        let ratio = row.ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        print_line(&format!(
            "{:<42} {:>12.2} {:>12} {:>7}  {:<16} {}",
            row.operation,
            row.ours_us,
            bare,
            ratio,
            row.goal,
            if row.met { "yes" } else { "NO" }
        ));
    }
    print_line("(times in microseconds unless the operation says otherwise; ours and bare measured interleaved)");
}
