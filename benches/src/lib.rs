//! Criterion benchmarks of the runtime, and the fixtures they share.
//!
//! Run them with `cargo bench -p benches`; BENCHMARKING.md records the
//! figures of a real run and what each one means.

use runtime::{ComponentManifest, LimitFlags, LoadedComponent, Runtime, RuntimeError, TIME_INTERFACE};

/// A guest without imports: `noop()` and `spin(n) -> n`, a counting loop
/// (the compute-heavy export).
pub const COMPUTE_GUEST: &str = r#"(component
  (core module $m
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

/// `wat` loaded into `runtime` with generous limits.
pub fn load(runtime: &Runtime, wat: &str) -> Result<LoadedComponent, RuntimeError> {
    let manifest = ComponentManifest::from_limit_flags(
        LimitFlags { memory: "1MiB", fuel: "10_000_000_000", timeout: "10s" },
        runtime.engine().policy(),
    )?;
    runtime.load_bytes(wat.as_bytes(), &manifest)
}
