//! The memory and table budgets: sums over all memories, attribution of the
//! trap that follows a denial, and instantiation against the budget.

use runtime_core::CrashKind;
use wasmtime::component::Val;

use crate::{TestResult, component_wat, crash_kind, load};

const ONE_MIB: &str = "memory = \"1MiB\"\nfuel = 100_000_000\ntimeout = \"10s\"";

const GROWER: &str = r#"(module
  (memory 1)
  (func (export "grow-or-trap") (param i32) (result i32)
    (local $old i32)
    (local.set $old (memory.grow (local.get 0)))
    (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
    (local.get $old))
  (func (export "try-grow") (param i32) (result i32)
    (memory.grow (local.get 0)))
  (func (export "grow-then-divide") (param i32) (result i32)
    (drop (memory.grow (local.get 0)))
    (i32.div_u (i32.const 1) (i32.const 0)))
  (func (export "refused-then-grown-then-trap") (param i32) (result i32)
    (drop (memory.grow (local.get 0)))
    (drop (memory.grow (i32.const 1)))
    unreachable))"#;

fn grower() -> Result<runtime_core::LoadedComponent, runtime_core::RuntimeError> {
    load(
        &component_wat(
            GROWER,
            &[
                ("grow-or-trap", r#"(param "pages" u32) (result u32)"#),
                ("try-grow", r#"(param "pages" u32) (result s32)"#),
                ("grow-then-divide", r#"(param "pages" u32) (result u32)"#),
                ("refused-then-grown-then-trap", r#"(param "pages" u32) (result u32)"#),
            ],
        ),
        ONE_MIB,
    )
}

#[test]
fn growth_within_the_budget_succeeds_and_is_reported() -> TestResult {
    let outcome = grower()?.call("grow-or-trap", &[Val::U32(15)])?;
    assert_eq!(outcome.results, [Val::U32(1)]);
    assert_eq!(outcome.report.peak_memory_bytes, 1 << 20);
    assert_eq!(outcome.report.memory_limit_bytes, 1 << 20);
    Ok(())
}

#[test]
fn a_trap_after_a_denied_grow_is_memory_limit_exceeded() -> TestResult {
    let error = grower()?.call("grow-or-trap", &[Val::U32(16)]).err().ok_or("denied")?;
    let crash = error.crash().ok_or("a crash")?;
    assert_eq!(crash.kind, CrashKind::MemoryLimitExceeded);
    assert_eq!(crash.detail.as_deref(), Some("unreachable"));
    assert!(crash.kind.help().contains("resources.memory"));
    assert_eq!(crash.report.peak_memory_bytes, 64 * 1024);
    Ok(())
}

#[test]
fn a_guest_that_survived_a_denial_and_then_failed_otherwise_is_not_blamed_on_the_budget() -> TestResult {
    // The refusal was survived: dividing by zero afterwards is the guest's own fault.
    let divided = grower()?.call("grow-then-divide", &[Val::U32(100)]).err().ok_or("div by zero")?;
    assert_eq!(divided.crash().map(|c| c.kind), Some(CrashKind::IntegerDivisionByZero), "{divided}");
    // So is a trap after a later growth succeeded.
    let grown = grower()?.call("refused-then-grown-then-trap", &[Val::U32(100)]).err().ok_or("trap")?;
    assert_eq!(grown.crash().map(|c| c.kind), Some(CrashKind::Unreachable), "{grown}");
    // The same division without any denial, for comparison.
    let plain = grower()?.call("grow-then-divide", &[Val::U32(1)]).err().ok_or("div by zero")?;
    assert_eq!(plain.crash().map(|c| c.kind), Some(CrashKind::IntegerDivisionByZero));
    Ok(())
}

#[test]
fn a_denied_grow_the_guest_handles_is_not_a_crash() -> TestResult {
    let outcome = grower()?.call("try-grow", &[Val::U32(100)])?;
    assert_eq!(outcome.results, [Val::S32(-1)]);
    Ok(())
}

#[test]
fn two_memories_share_one_budget() -> TestResult {
    let two = r#"(module
      (memory $a 1)
      (memory $b 1)
      (func (export "grow-a") (param i32) (result i32) (memory.grow $a (local.get 0)))
      (func (export "grow-b") (param i32) (result i32) (memory.grow $b (local.get 0))))"#;
    let signature = r#"(param "pages" u32) (result s32)"#;
    let component = load(&component_wat(two, &[("grow-a", signature), ("grow-b", signature)]), ONE_MIB)?;
    let mut instance = component.instantiate()?;
    // 2 initial pages + 7 + 7 = 16 pages = exactly 1MiB.
    assert_eq!(instance.call("grow-a", &[Val::U32(7)])?.results, [Val::S32(1)]);
    assert_eq!(instance.call("grow-b", &[Val::U32(7)])?.results, [Val::S32(1)]);
    assert_eq!(instance.usage().current_memory_bytes, 1 << 20);
    // Either memory alone would still be under 1MiB, but their sum is not.
    assert_eq!(instance.call("grow-a", &[Val::U32(1)])?.results, [Val::S32(-1)]);
    assert_eq!(instance.call("grow-b", &[Val::U32(1)])?.results, [Val::S32(-1)]);
    assert_eq!(instance.usage().peak_memory_bytes, 1 << 20);
    Ok(())
}

#[test]
fn an_initial_memory_above_the_budget_is_refused_at_load_and_a_sum_above_it_at_instantiation() -> TestResult {
    // One memory past the budget: no instance could start, so the load says so.
    let big = r#"(module (memory 17) (func (export "run")))"#;
    let error = load(&component_wat(big, &[("run", "")]), ONE_MIB).err().ok_or("17 pages do not fit 1MiB")?;
    assert_eq!(error.kind(), "memory-limit-exceeded", "{error}");
    assert!(error.to_string().contains("1114112 bytes") && error.to_string().contains("1048576 bytes"), "{error}");
    // Two that each fit but not together: the budget is their sum, met at instantiation.
    let two = r#"(module (memory 9) (memory 9) (func (export "run")))"#;
    let component = load(&component_wat(two, &[("run", "")]), ONE_MIB)?;
    let error = component.call("run", &[]).err().ok_or("18 pages do not fit 1MiB")?;
    assert_eq!(error.crash().map(|c| c.kind), Some(CrashKind::MemoryLimitExceeded), "{error}");

    let fits = r#"(module (memory 16) (func (export "run")))"#;
    load(&component_wat(fits, &[("run", "")]), ONE_MIB)?.call("run", &[])?;
    Ok(())
}

#[test]
fn an_initial_table_above_its_budget_is_refused_at_load_naming_both_figures() -> TestResult {
    let resources = "memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"10s\"\ntable-elements = 1_000";
    let big = r#"(module (table 1001 funcref) (func (export "run")))"#;
    let error = load(&component_wat(big, &[("run", "")]), resources).err().ok_or("1,001 elements in 1,000")?;
    assert_eq!(error.kind(), "table-limit-exceeded", "{error}");
    assert!(error.to_string().contains("1001 elements") && error.to_string().contains("is 1000"), "{error}");
    let fits = r#"(module (table 1000 funcref) (func (export "run")))"#;
    load(&component_wat(fits, &[("run", "")]), resources)?.call("run", &[])?;
    Ok(())
}

#[test]
fn table_growth_past_the_budget_is_table_limit_exceeded() -> TestResult {
    let tables = r#"(module
      (table $t 10 funcref)
      (func (export "grow-or-trap") (param i32) (result i32)
        (local $old i32)
        (local.set $old (table.grow $t (ref.null func) (local.get 0)))
        (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
        (local.get $old)))"#;
    let resources = "memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"10s\"\ntable-elements = 1_000";
    let component = load(&component_wat(tables, &[("grow-or-trap", r#"(param "n" u32) (result u32)"#)]), resources)?;
    assert_eq!(component.call("grow-or-trap", &[Val::U32(990)])?.results, [Val::U32(10)]);
    assert_eq!(crash_kind(component.call("grow-or-trap", &[Val::U32(991)])), "table-limit-exceeded");
    Ok(())
}
