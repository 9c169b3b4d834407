//! `cargo xtask bench`: the key operations through the facade and through
//! bare wasmtime (same engine configuration, same fixture) in one process,
//! interleaved batch by batch, so that the overhead of the safety layer is a
//! ratio measured under the same conditions. Plus the runtime's own figures:
//! async against sync on compute, deadline overshoot, 10,000 concurrent
//! sleeping calls, fairness between a flooding and a quiet component, RSS
//! per idle instance.

mod bare;
mod cold_start;
mod fairness;
mod own;
mod serve;
mod toolchains;

use std::borrow::Cow;
use std::time::Instant;

use runtime::{ComponentManifest, Runtime, Val};
use serde::Serialize;

use bare::Bare;

/// Options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Which rows: `calls` (the default: calls, instantiation, cold start,
    /// deadlines, fairness, the CLI), `serve` (HTTP serving against a bare
    /// hyper + wasmtime-wasi-http server), `toolchains` (the Python and
    /// JavaScript guests' cold and warm starts) or `fairness` alone.
    #[arg(value_parser = ["calls", "serve", "fairness", "toolchains"])]
    group: Option<String>,
}

#[derive(Serialize)]
struct Row {
    operation: Cow<'static, str>,
    ours_us: f64,
    bare_us: Option<f64>,
    ratio: Option<f64>,
    goal: &'static str,
    met: bool,
}

/// `noop`, `trap`, an endless `spin`, and `count(n)`, a loop of `n` rounds.
const GUEST: &str = r#"(component
  (core module $m
    (memory 1)
    (func (export "noop"))
    (func (export "trap") unreachable)
    (func (export "spin") (loop $l (br $l)))
    (func (export "count") (param i32) (result i32)
      (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
      (local.get $i)))
  (core instance $i (instantiate $m))
  (func (export "noop") (canon lift (core func $i "noop")))
  (func (export "trap") (canon lift (core func $i "trap")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "count") (param "n" u32) (result u32) (canon lift (core func $i "count"))))"#;

pub fn run(options: &Options) -> Result<bool, String> {
    // Figures of a debug build mean nothing: rerun this command optimized.
    if cfg!(debug_assertions) {
        let mut command = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.args(["run", "--release", "--quiet", "--package", "xtask", "--", "bench"]);
        if options.json {
            command.arg("--json");
        }
        command.args(options.group.as_deref());
        let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        return Ok(status.success());
    }
    let rows = match options.group.as_deref() {
        Some("serve") => serve::serve_rows()?,
        Some("fairness") => fairness::fairness()?.into(),
        Some("toolchains") => toolchains::toolchain_rows()?,
        _ => call_rows()?,
    };
    let met = rows.iter().all(|row| row.met);
    if options.json {
        let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        print_line(&json);
    } else {
        print_table(&rows);
    }
    Ok(met)
}

/// The rows of plain `cargo xtask bench`.
fn call_rows() -> Result<Vec<Row>, String> {
    // First, while the heap holds nothing freed that new instances could reuse.
    let idle_rss = own::idle_instance_rss()?;
    let runtime = Runtime::builder().build().map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let manifest = limits("1MiB", "10_000_000_000", "10s")?;
    let ours = runtime.load_bytes(GUEST.as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let bare = Bare::new(GUEST)?;
    let mut rows = Vec::new();

    let (o, b) = interleaved(31, 200, || drop(ours.call("noop", &[])), || bare.fresh_call("noop", &[]));
    rows.push(row("instantiate + call (pooled)", o, Some(b), "<= 1.05x bare", |r| r <= 1.05));

    let mut instance = ours.instantiate(()).map_err(|e| e.to_string())?;
    let mut warm = bare.live()?;
    let (o, b) = interleaved(31, 1_000, || drop(instance.call("noop", &[])), || warm.call("noop"));
    rows.push(row("dynamic warm call on a live instance", o, Some(b), "<= 1.20x bare", |r| r <= 1.20));

    let typed = instance.typed::<(), ()>("noop").map_err(|e| e.to_string())?;
    let bare_typed = warm.typed("noop")?;
    let (o, b) = interleaved(31, 1_000, || drop(instance.call_typed(&typed, ())), || warm.call_typed(&bare_typed));
    rows.push(row("typed warm call on a live instance", o, Some(b), "<= 1.10x bare", |r| r <= 1.10));
    rows.push(own::facade_overhead(&runtime)?);

    let (o, b) = interleaved(31, 200, || drop(ours.call("trap", &[])), || bare.fresh_call("trap", &[]));
    rows.push(row("trapping call (fresh instance)", o, Some(b), "report only", |_| true));

    let count = [Val::U32(5_000_000)];
    let (o, b) = interleaved(
        11,
        4,
        || drop(tokio.block_on(ours.call_async("count", &count))),
        || drop(ours.call("count", &count)),
    );
    rows.push(row("compute-heavy call: async (ours) vs sync (bare col.)", o, Some(b), "<= 1.05x sync", |r| r <= 1.05));

    rows.push(cold_start::cached_cold_start(&tokio)?);
    rows.extend(own::overshoot(&runtime)?);
    rows.push(own::sleeping_calls()?);
    rows.extend(fairness::fairness()?);
    rows.push(own::cli_process()?);
    rows.push(idle_rss);
    Ok(rows)
}

fn limits(memory: &str, fuel: &str, timeout: &str) -> Result<ComponentManifest, String> {
    attacks::support::limits_manifest(memory, fuel, timeout)
}

/// Median microseconds per operation of `ours` and `bare`, measured in
/// `batches` alternating batches of `per_batch` operations (after one
/// warm-up batch each), so that both see the same machine state.
fn interleaved(batches: usize, per_batch: usize, mut ours: impl FnMut(), mut bare: impl FnMut()) -> (f64, f64) {
    per_op(per_batch, &mut ours);
    per_op(per_batch, &mut bare);
    let (mut o, mut b) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        o.push(per_op(per_batch, &mut ours));
        b.push(per_op(per_batch, &mut bare));
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

fn row(
    operation: impl Into<Cow<'static, str>>,
    ours: f64,
    bare: Option<f64>,
    goal: &'static str,
    ok: impl Fn(f64) -> bool,
) -> Row {
    let ratio = bare.map(|b| ours / b);
    Row { operation: operation.into(), ours_us: ours, bare_us: bare, ratio, goal, met: ok(ratio.unwrap_or(ours)) }
}

#[expect(clippy::print_stdout, reason = "the table is the command's output")]
fn print_line(line: &str) {
    println!("{line}");
}

fn print_table(rows: &[Row]) {
    print_line(&format!("{:<52} {:>12} {:>12} {:>7}  {:<16} met", "operation", "ours", "bare", "ratio", "goal"));
    for row in rows {
        let bare = row.bare_us.map_or("-".to_owned(), |b| format!("{b:.2}"));
        let ratio = row.ratio.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        print_line(&format!(
            "{:<52} {:>12.2} {:>12} {:>7}  {:<16} {}",
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
