//! What crosses the component boundary is bounded and typed: results are
//! capped by the copy limit, WASI calls are counted, timed and bounded by the
//! deadline, and `wasi:cli/exit` is its own kind.

use runtime::{CrashKind, DeadlinePhase};

use crate::{TestResult, tokio};

fn limits(timeout: &str) -> Result<runtime::ComponentManifest, runtime::RuntimeError> {
    crate::manifest(&format!("memory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"{timeout}\""), "")
}

/// `run` returns `list<string>` of `entries` strings that all alias the same
/// 512 KiB of memory.
fn aliased_strings(entries: u32) -> String {
    format!(
        r#"(component
  (core module $m (memory (export "memory") 10)
    (func (export "run") (result i32) (local $i i32)
      (loop $l
        (i32.store (i32.add (i32.const 600000) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
        (i32.store (i32.add (i32.const 600004) (i32.shl (local.get $i) (i32.const 3))) (i32.const 524288))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {entries}))))
      (i32.store (i32.const 620000) (i32.const 600000))
      (i32.store (i32.const 620004) (i32.const {entries}))
      (i32.const 620000)))
  (core instance $i (instantiate $m))
  (func (export "run") (result (list string)) (canon lift (core func $i "run") (memory (core memory $i "memory")))))"#
    )
}

#[test]
fn results_larger_than_the_copy_limit_are_refused_and_smaller_ones_return() -> TestResult {
    let runtime = crate::runtime();
    let manifest = limits("1s")?;
    let small = runtime.load_bytes(aliased_strings(4).as_bytes(), &manifest)?;
    let outcome = small.call("run", &[])?;
    assert!(matches!(&outcome.results[..], [runtime::Val::List(items)] if items.len() == 4));

    let amplifying = runtime.load_bytes(aliased_strings(250).as_bytes(), &manifest)?;
    let error = amplifying.call("run", &[]).err().ok_or("250 x 512 KiB must not be lifted")?;
    let crash = error.crash().ok_or("a crash")?;
    assert_eq!(crash.kind, CrashKind::CopyLimitExceeded);
    assert_eq!(crash.kind.as_str(), "copy-limit-exceeded");
    assert!(crash.detail.as_deref().is_some_and(|d| d.contains("8388608 bytes")), "{:?}", crash.detail);
    Ok(())
}

const CLOCK: &str = r#"
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer $C $pollable (type $p))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))"#;

/// A guest that sleeps `nanos` through WASI (`u64::MAX`: forever).
fn wasi_sleeper(nanos: i64) -> String {
    format!(
        r#"(component $C {CLOCK}
  (core module $m (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "wasi" "block" (func $block (param i32)))
    (func (export "run") (call $block (call $subscribe (i64.const {nanos})))))
  (core instance $i (instantiate $m (with "wasi" (instance (export "subscribe" (func $subscribe)) (export "block" (func $block))))))
  (func (export "run") (canon lift (core func $i "run"))))"#
    )
}

#[test]
fn a_guest_blocked_in_wasi_is_abandoned_at_its_deadline_and_its_calls_are_counted() -> TestResult {
    tokio()?.block_on(async {
        let runtime = crate::runtime();
        let manifest = limits("50ms")?;
        let short = runtime.load_bytes(wasi_sleeper(1_000_000).as_bytes(), &manifest)?;
        let outcome = short.call_async("run", &[]).await?;
        // subscribe-duration and block: two WASI calls, the block about 1 ms.
        assert_eq!(outcome.report.host_calls, 2);
        assert!(outcome.report.host_time >= std::time::Duration::from_millis(1), "{:?}", outcome.report.host_time);

        let forever = runtime.load_bytes(wasi_sleeper(-1).as_bytes(), &manifest)?;
        let error = forever.call_async("run", &[]).await.err().ok_or("must not sleep forever")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: DeadlinePhase::HostCall });
        assert_eq!(crash.report.host_calls, 2, "subscribe, and the block abandoned at the deadline");
        Ok(())
    })
}

#[test]
fn wasi_exit_is_its_own_kind_with_the_status() -> TestResult {
    let exiting = |status: u8| {
        format!(
            r#"(component
  (import "wasi:cli/exit@0.2.0" (instance $exit (export "exit" (func (param "status" (result))))))
  (core func $exit (canon lower (func $exit "exit")))
  (core module $m (import "wasi" "exit" (func $exit (param i32))) (func (export "run") (call $exit (i32.const {status}))))
  (core instance $i (instantiate $m (with "wasi" (instance (export "exit" (func $exit))))))
  (func (export "run") (canon lift (core func $i "run"))))"#
        )
    };
    tokio()?.block_on(async {
        let runtime = crate::runtime();
        for (status, expected) in [(0, 0), (1, 1)] {
            let component = runtime.load_bytes(exiting(status).as_bytes(), &limits("1s")?)?;
            let error = component.call_async("run", &[]).await.err().ok_or("exit does not return")?;
            assert_eq!(error.crash().map(|c| c.kind), Some(CrashKind::Exited { status: expected }));
            assert_eq!(error.kind(), "exited");
        }
        Ok(())
    })
}
