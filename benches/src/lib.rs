//! Criterion benchmarks of the runtime, the fixtures they share, and the
//! harness behind `cargo xtask bench` ([`harness`]: the key operations
//! through the runtime and through bare wasmtime, as ratios).
//!
//! Run them with `cargo bench -p benches`; BENCHMARKING.md records the
//! figures of a real run and what each one means.

pub mod harness;
use std::fmt::Write as _;

use runtime::{
    AsyncHostRegistry, ByteSize, ComponentManifest, Fuel, LoadedComponent, Resources, Runtime, RuntimeError, Timeout,
    host::TIME_INTERFACE, manifest::ComponentName, manifest::HostInterface, manifest::WasiConfig,
};

/// A guest without imports, with one page of memory like any real guest:
/// `noop()` and `spin(n) -> n`, a counting loop (the compute-heavy export).
pub const COMPUTE_GUEST: &str = r#"(component
  (core module $m
    (memory 1)
    (func (export "noop"))
    (func (export "spin") (param i32) (result i32)
      (local $i i32)
      (loop $l
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
      (local.get $i)))
  (core instance $i (instantiate $m))
  (func (export "noop") (canon lift (core func $i "noop")))
  (func (export "spin") (param "n" u32) (result u32) (canon lift (core func $i "spin"))))"#;

/// The memory-heavy export: `fill(pages)` grows memory by `pages` 64 KiB
/// pages, writes every byte of it, and returns the memory's size in pages.
pub const MEMORY_GUEST: &str = r#"(component
  (core module $m
    (memory 1)
    (func (export "fill") (param i32) (result i32)
      (if (i32.eq (memory.grow (local.get 0)) (i32.const -1)) (then unreachable))
      (memory.fill (i32.const 0) (i32.const 7) (i32.mul (memory.size) (i32.const 65536)))
      (memory.size)))
  (core instance $i (instantiate $m))
  (func (export "fill") (param "pages" u32) (result u32) (canon lift (core func $i "fill"))))"#;

/// The Rust guest (wit-bindgen, regex, serde_json; imports WASI), as committed.
pub const RUST_GUEST: &[u8] = include_bytes!("../../fixtures/guests/rust-guest.wasm");

/// The interface of the host function [`ping_registry`] adds.
pub const PING_INTERFACE: &str = "wasm-runtime:bench/ping@0.1.0";

/// A guest whose `ping-n(n)` calls the host's `ping()` `n` times.
pub fn pinging_guest() -> String {
    format!(
        r#"(component
  (import "{PING_INTERFACE}" (instance $p (export "ping" (func))))
  (core func $ping (canon lower (func $p "ping")))
  (core module $m
    (import "host" "ping" (func $ping))
    (func (export "ping-n") (param i32)
      (loop $l
        (if (local.get 0)
          (then (call $ping) (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br $l))))))
  (core instance $i (instantiate $m (with "host" (instance (export "ping" (func $ping))))))
  (func (export "ping-n") (param "n" u32) (canon lift (core func $i "ping-n"))))"#
    )
}

/// The reference host functions plus `ping()`, which returns at once.
pub fn ping_registry() -> AsyncHostRegistry {
    AsyncHostRegistry::with_reference_functions()
        .func_async(PING_INTERFACE, "ping", |_store, (): ()| Box::new(async { Ok(()) }))
}

/// A guest whose `nap(ms)` asks the host to sleep.
pub fn napping_guest() -> String {
    format!(
        r#"(component
  (import "{TIME_INTERFACE}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m
    (import "host" "sleep" (func $sleep (param i32)))
    (func (export "nap") (param i32) (call $sleep (local.get 0))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "nap") (param "ms" u32) (canon lift (core func $i "nap"))))"#
    )
}

/// A guest with `functions` small functions (a few arithmetic instructions
/// each, all reachable from a table) besides `noop`: the size axis of the
/// scaling benchmarks. As a binary: the WAT text of the largest passes the
/// loader's cap on text (256 KiB).
pub fn guest_with_functions(functions: usize) -> Result<Vec<u8>, RuntimeError> {
    let mut module = String::from("(core module $m (func (export \"noop\"))\n");
    let mut names = String::new();
    for f in 0..functions {
        let _ = writeln!(
            module,
            "(func $f{f} (param i32) (result i32) (i32.add (i32.mul (local.get 0) (i32.const {f})) (i32.const 7)))"
        );
        let _ = write!(names, " $f{f}");
    }
    let _ = writeln!(module, "(table {functions} funcref) (elem (i32.const 0){names}))");
    let text = format!(
        "(component {module} (core instance $i (instantiate $m)) (func (export \"noop\") (canon lift (core func $i \"noop\"))))"
    );
    wat::parse_str(text).map_err(|error| RuntimeError::Internal { message: format!("the scaling guest: {error}") })
}

/// `wat` loaded into `runtime` with generous limits.
pub fn load(runtime: &Runtime, wat: &str) -> Result<LoadedComponent, RuntimeError> {
    load_with_memory(runtime, wat.as_bytes(), "1MiB")
}

/// `bytes` (a binary or WAT) loaded into `runtime` with `memory` of linear
/// memory, ample fuel and a 10 s timeout.
pub fn load_with_memory(runtime: &Runtime, bytes: &[u8], memory: &str) -> Result<LoadedComponent, RuntimeError> {
    let memory: ByteSize =
        memory.parse().map_err(|error| RuntimeError::Internal { message: format!("memory {memory}: {error}") })?;
    let resources = Resources::new(memory, Fuel::new(10_000_000_000).unwrap_or(Fuel::MAX), Timeout::from_secs(10));
    let name: ComponentName =
        "bench".parse().map_err(|error: &str| RuntimeError::Internal { message: error.to_owned() })?;
    let wasi = WasiConfig::default().with_host_functions(HostInterface::ALL);
    runtime.load_bytes(bytes, &ComponentManifest::from_resources(name, resources).with_wasi(wasi))
}
