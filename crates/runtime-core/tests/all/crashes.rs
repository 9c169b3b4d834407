//! Every crash kind a guest can reach, each with a twin that stays within
//! bounds and succeeds.

use runtime_core::{CrashKind, DeadlinePhase, RuntimeError};
use wasmtime::component::Val;

use crate::{GENEROUS, TestResult, component_wat, crash_kind, load};

/// Each export takes a u32 `n`; the fixture traps when `n` is 1 and succeeds when it is 0.
const TRAPS: &str = r#"(module
  (memory 1)
  (table 2 funcref)
  (type $void (func))
  (type $unary (func (param i32) (result i32)))
  (func $nop)
  (elem (i32.const 0) $nop)
  (func (export "unreachable") (param i32) (result i32)
    (if (local.get 0) (then unreachable)) (i32.const 7))
  (func (export "divide") (param i32) (result i32)
    (i32.div_u (i32.const 10) (i32.sub (i32.const 1) (local.get 0))))
  (func (export "overflow") (param i32) (result i32)
    (i32.div_s (select (i32.const 0x80000000) (i32.const 10) (local.get 0)) (i32.const -1)))
  (func (export "convert") (param i32) (result i32)
    (i32.trunc_f32_s (select (f32.const nan) (f32.const 3.5) (local.get 0))))
  (func (export "out-of-bounds") (param i32) (result i32)
    (i32.load (select (i32.const 65536) (i32.const 16) (local.get 0))))
  (func (export "table-out-of-bounds") (param i32) (result i32)
    (call_indirect (type $void) (select (i32.const 5) (i32.const 0) (local.get 0))) (i32.const 1))
  (func (export "null-call") (param i32) (result i32)
    (call_indirect (type $void) (local.get 0)) (i32.const 1))
  (func (export "bad-signature") (param i32) (result i32)
    (if (local.get 0)
      (then (return (call_indirect (type $unary) (i32.const 1) (i32.const 0)))))
    (call_indirect (type $void) (i32.const 0)) (i32.const 1))
  (func $recurse (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (i32.add (i32.const 1) (call $recurse (local.get 0))))
      (else (i32.const 0))))
  (func (export "recurse") (param i32) (result i32) (call $recurse (local.get 0)))
)"#;

#[test]
fn each_trap_has_its_kind_and_a_twin_that_succeeds() -> TestResult {
    let names = [
        ("unreachable", CrashKind::Unreachable),
        ("divide", CrashKind::IntegerDivisionByZero),
        ("overflow", CrashKind::IntegerOverflow),
        ("convert", CrashKind::BadConversionToInteger),
        ("out-of-bounds", CrashKind::MemoryOutOfBounds),
        ("table-out-of-bounds", CrashKind::TableOutOfBounds),
        ("null-call", CrashKind::IndirectCallToNull),
        ("bad-signature", CrashKind::BadSignature),
        ("recurse", CrashKind::StackOverflow),
    ];
    let exports: Vec<(&str, &str)> = names.iter().map(|(name, _)| (*name, r#"(param "n" u32) (result u32)"#)).collect();
    let component = load(&component_wat(TRAPS, &exports), GENEROUS)?;
    for (name, kind) in names {
        let twin = component.call(name, &[Val::U32(0)]);
        assert!(twin.is_ok(), "{name}(0) should succeed: {}", crash_kind(twin));
        let error = component.call(name, &[Val::U32(1)]).err().ok_or(format!("{name}(1) should trap"))?;
        let crash = error.crash().ok_or(format!("{name}: not a crash: {error}"))?;
        assert_eq!(crash.kind, kind, "{name}: {crash}");
        assert!(!crash.kind.help().is_empty());
        if kind != CrashKind::StackOverflow {
            let backtrace = crash.wasm_backtrace.as_deref().unwrap_or_default();
            assert!(backtrace.contains("wasm function"), "{name}: backtrace {backtrace:?}");
        }
    }
    Ok(())
}

const SPIN: &str = r#"(module
  (func (export "spin") (param i32) (result i32)
    (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get 0))))
    (local.get $i))
  (func (export "forever") (loop $l (br $l))))"#;

fn spin_component(resources: &str) -> Result<runtime_core::LoadedComponent, RuntimeError> {
    load(&component_wat(SPIN, &[("spin", r#"(param "n" u32) (result u32)"#), ("forever", "")]), resources)
}

#[test]
fn fuel_stops_a_loop_and_allows_the_same_loop_when_shorter() -> TestResult {
    let component = spin_component("memory = \"1MiB\"\nfuel = 100_000\ntimeout = \"60s\"")?;
    let done = component.call("spin", &[Val::U32(1_000)])?;
    assert_eq!(done.results, [Val::U32(1_000)]);
    assert!(done.report.fuel_consumed > 1_000 && done.report.fuel_consumed < 100_000);
    let error = component.call("spin", &[Val::U32(1_000_000)]).err().ok_or("out of fuel")?;
    let crash = error.crash().ok_or("a crash")?;
    assert_eq!(crash.kind, CrashKind::OutOfFuel);
    assert_eq!(crash.report.fuel_consumed, 100_000);
    assert_eq!(error.kind(), "out-of-fuel");
    Ok(())
}

#[test]
fn the_deadline_stops_a_loop_that_fuel_would_not() -> TestResult {
    let component = spin_component("memory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"20ms\"")?;
    assert_eq!(component.call("spin", &[Val::U32(10)])?.results, [Val::U32(10)]);
    let error = component.call("forever", &[]).err().ok_or("deadline")?;
    let crash = error.crash().ok_or("a crash")?;
    assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: DeadlinePhase::Guest });
    assert!(crash.report.wall >= std::time::Duration::from_millis(20));
    Ok(())
}

#[test]
fn a_start_function_that_loops_is_stopped_during_instantiation() -> TestResult {
    let looping_start = r#"(module (func $start (loop $l (br $l))) (start $start) (func (export "run")))"#;
    let component = load(
        &component_wat(looping_start, &[("run", "")]),
        "memory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"20ms\"",
    )?;
    let error = component.call("run", &[]).err().ok_or("deadline during instantiation")?;
    let crash = error.crash().ok_or("a crash")?;
    assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: DeadlinePhase::Instantiation });
    assert!(component.instantiate().is_err());

    let quiet_start = r#"(module (func $start) (start $start) (func (export "run")))"#;
    let twin =
        load(&component_wat(quiet_start, &[("run", "")]), "memory = \"1MiB\"\nfuel = 10_000\ntimeout = \"20ms\"")?;
    twin.call("run", &[])?;
    Ok(())
}

#[test]
fn fuel_and_deadline_near_the_boundary_give_exactly_one_kind_per_call() -> TestResult {
    // About a millisecond of fuel against a one-millisecond deadline: either may win.
    let component = spin_component("memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1ms\"")?;
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..1_000 {
        let error = component.call("forever", &[]).err().ok_or("the loop never ends")?;
        let crash = error.crash().ok_or_else(|| format!("not a crash: {error}"))?;
        match crash.kind {
            CrashKind::OutOfFuel => assert_eq!(crash.report.fuel_consumed, 1_000_000),
            CrashKind::DeadlineExceeded { during } => {
                assert!(matches!(during, DeadlinePhase::Guest | DeadlinePhase::Instantiation));
                assert!(crash.report.wall >= std::time::Duration::from_millis(1));
            }
            other => panic!("unexpected kind {other}"),
        }
        *seen.entry(crash.kind.as_str()).or_insert(0) += 1;
    }
    assert_eq!(seen.values().sum::<i32>(), 1_000, "{seen:?}");
    Ok(())
}

#[test]
fn a_reused_instance_keeps_state_and_refuses_calls_after_a_crash() -> TestResult {
    let counter = r#"(module
      (global $count (mut i32) (i32.const 0))
      (func (export "bump") (param i32) (result i32)
        (if (local.get 0) (then unreachable))
        (global.set $count (i32.add (global.get $count) (i32.const 1)))
        (global.get $count)))"#;
    let component = load(&component_wat(counter, &[("bump", r#"(param "crash" u32) (result u32)"#)]), GENEROUS)?;
    let mut instance = component.instantiate()?;
    assert_eq!(instance.call("bump", &[Val::U32(0)])?.results, [Val::U32(1)]);
    assert_eq!(instance.call("bump", &[Val::U32(0)])?.results, [Val::U32(2)]);
    let crash = instance.call("bump", &[Val::U32(1)]).err().ok_or("crash")?;
    assert_eq!(crash.kind(), "unreachable");
    assert!(instance.is_poisoned());
    let refused = instance.call("bump", &[Val::U32(0)]).err().ok_or("poisoned")?;
    assert!(
        matches!(refused, RuntimeError::Poisoned { by: runtime_core::PoisonCause::Crash(CrashKind::Unreachable) }),
        "{refused}"
    );
    // A fresh-store call is unaffected.
    assert_eq!(component.call("bump", &[Val::U32(0)])?.results, [Val::U32(1)]);
    Ok(())
}

#[test]
fn calls_reach_functions_inside_exported_interfaces_and_name_what_exists() -> TestResult {
    let wat = r#"(component
      (core module $m (func (export "answer") (result i32) (i32.const 42)))
      (core instance $i (instantiate $m))
      (func $answer (result u32) (canon lift (core func $i "answer")))
      (instance $api (export "answer" (func $answer)))
      (export "example:demo/api" (instance $api)))"#;
    let component = load(wat, GENEROUS)?;
    assert_eq!(component.call("example:demo/api#answer", &[])?.results, [Val::U32(42)]);
    let missing = component.call("answer", &[]).err().ok_or("no top-level answer")?;
    assert!(
        matches!(&missing, RuntimeError::NoSuchExport { available, .. } if available.contains("example:demo/api#answer")),
        "{missing:?}"
    );
    let wrong_args = component.call("example:demo/api#answer", &[Val::U32(1)]).err().ok_or("too many args")?;
    assert_eq!(wrong_args.kind(), "invalid-arguments");
    Ok(())
}
