//! What a component declares at its minimums is checked against its budgets
//! before it is compiled: memories and tables, each summed over the whole
//! component. The components below also hold a function that fails
//! validation, so a refusal that came after compiling would be
//! `compile-failed` instead.

use crate::TestResult;

/// A component whose core module declares `fields` (memories and tables),
/// with a function that fails validation unless `valid`.
fn declaring(fields: &str, valid: bool) -> String {
    let body = if valid { "(i32.const 0)" } else { "" };
    format!(
        r#"(component
  (core module $m {fields}
    (func (export "run") (result i32) {body}))
  (core instance $i (instantiate $m))
  (func (export "run") (result u32) (canon lift (core func $i "run"))))"#
    )
}

const LIMITS: &str = "memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"10s\"\ntable-elements = 1_000";

#[test]
fn memories_declaring_more_than_the_budget_together_are_refused_before_compiling() -> TestResult {
    let manifest = crate::manifest(LIMITS, "")?;
    // 9 + 9 pages: each fits 1 MiB, together they do not.
    let over = declaring("(memory 9) (memory 9)", false);
    let error = crate::runtime().load_bytes(over.as_bytes(), &manifest).err().ok_or("18 pages in 1 MiB")?;
    assert_eq!(error.kind(), "memory-limit-exceeded", "{error}");
    assert!(error.to_string().contains("at least 1179648 bytes"), "the real figure: {error}");
    assert!(error.to_string().contains("1048576 bytes"), "the budget: {error}");
    // 8 + 8 pages fit, and run.
    let fits = crate::runtime().load_bytes(declaring("(memory 8) (memory 8)", true).as_bytes(), &manifest)?;
    assert_eq!(fits.call("run", &[])?.results, [runtime::Val::U32(0)]);
    Ok(())
}

#[test]
fn tables_declaring_more_than_the_budget_together_are_refused_before_compiling() -> TestResult {
    let manifest = crate::manifest(LIMITS, "")?;
    let over = declaring("(table 600 funcref) (table 600 funcref)", false);
    let error = crate::runtime().load_bytes(over.as_bytes(), &manifest).err().ok_or("1,200 elements in 1,000")?;
    assert_eq!(error.kind(), "table-limit-exceeded", "{error}");
    assert!(error.to_string().contains("at least 1200 elements") && error.to_string().contains("is 1000"), "{error}");
    let help = miette::Diagnostic::help(&error).map(|help| help.to_string()).unwrap_or_default();
    assert!(help.contains("at least 1200") && help.contains("table-elements"), "the fix: {help}");
    let fits = declaring("(table 500 funcref) (table 500 funcref)", true);
    let fits = crate::runtime().load_bytes(fits.as_bytes(), &manifest)?;
    assert_eq!(fits.call("run", &[])?.results, [runtime::Val::U32(0)]);
    Ok(())
}
