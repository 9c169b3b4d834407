//! Components real toolchains built (componentize-py, componentize-js),
//! called through interface exports under a widened host policy.

use crate::{TestResult, wasm_runtime};

/// The README's policy: wide enough for Python and JavaScript components.
pub(crate) const WIDE_POLICY: &str = r#"
[resources]
memory = { min = "512KiB", max = "64MiB" }
fuel = { max = 100_000_000_000 }
timeout = { max = "60s" }
[compile]
max-functions = 50_000
max-function-size = "2MiB"
max-code = "64MiB"
[grants]
dirs = true
network = false
http = false
"#;

fn guest(name: &str) -> String {
    format!("{}/../../fixtures/guests/{name}.wasm", env!("CARGO_MANIFEST_DIR"))
}

/// Calls `add` and `greet` of the `docs:adder/add` interface on one instance.
fn call_adder(name: &str, language: &str) -> TestResult {
    let policy = crate::scratch(&format!("{name}-policy.toml"), WIDE_POLICY)?.display().to_string();
    let cache = format!("{}/toolchain-cache", env!("CARGO_TARGET_TMPDIR"));
    let wasm = guest(name);
    let args = [
        "run",
        wasm.as_str(),
        "--policy",
        &policy,
        "--cache-dir",
        &cache,
        "--memory",
        "48MiB",
        "--fuel",
        "10_000_000_000",
        "--timeout",
        "30s",
        "--invoke",
        "docs:adder/add@0.1.0#add(40, 2)",
        "--invoke",
        "docs:adder/add@0.1.0#greet(\"tests\")",
        "--json",
    ];
    let output = wasm_runtime(&args)?;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    let body = crate::run_json(&output.stdout)?;
    assert_eq!(body["calls"][0]["result"], "42");
    assert_eq!(body["calls"][1]["result"], format!("\"hello from {language}, tests!\""));
    // Under the default policy the same component is refused before compiling.
    let output =
        wasm_runtime(&["run", &wasm, "--memory", "4MiB", "--fuel", "1000", "--timeout", "1s", "--invoke", "x()"])?;
    assert_eq!(output.status.code(), Some(2));
    // (refused at load: its initial memory is above the default 4 MiB maximum)
    assert!(String::from_utf8_lossy(&output.stderr).contains("memory_limit_exceeded"));
    Ok(())
}

#[test]
fn a_python_component_runs_under_a_widened_policy() -> TestResult {
    call_adder("python-guest", "Python")
}

#[test]
fn a_javascript_component_runs_under_a_widened_policy() -> TestResult {
    call_adder("js-guest", "JavaScript")
}
