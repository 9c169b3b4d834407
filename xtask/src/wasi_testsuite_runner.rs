//! `cargo xtask wasi-testsuite --runner`: the suite's own test runner
//! (`run-tests`, Python) against `wasm-runtime`, through this repository's
//! runtime adapter (`xtask/wasi-testsuite/wasm_runtime.py`). It runs every
//! test the checkout holds (branch `prod/testsuite-base`: the prebuilt p1
//! and p3 tests, services included) by the suite's own rules: its operation
//! specs (`run`, `wait`, `read`, `write`, `request`, `kill`), its
//! expectations, its verdicts. This prints each suite's count and groups
//! the failures by their first line.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

/// The policy every test runs under (the adapter's limits fit it): network
/// grants on loopback only.
const POLICY: &str = "[resources]\nmemory = { max = \"64MiB\" }\ntimeout = { max = \"60s\" }\n\
    [grants]\ndirs = true\nhttp = true\nnetwork = true\nnetwork-ranges = [\"127.0.0.0/8:*\", \"[::1]:*\"]\n";

/// How to get the suite the runner needs, for the error when it is missing.
pub(crate) const HOW_TO_GET: &str = "git clone --depth 1 --branch prod/testsuite-base \
     https://github.com/WebAssembly/wasi-testsuite target/wasi-testsuite-base";

#[derive(Deserialize)]
struct Report {
    results: Vec<SuiteResult>,
}

#[derive(Deserialize)]
struct SuiteResult {
    name: String,
    passed: usize,
    failed: usize,
    tests: Vec<TestResult>,
}

#[derive(Deserialize)]
struct TestResult {
    name: String,
    outcome: String,
    #[serde(default)]
    failures: Vec<String>,
}

/// Runs the suite at `suite` (a `prod/testsuite-base` checkout); the
/// figures are reported, never a gate.
pub(crate) fn run(suite: &Path) -> Result<bool, String> {
    let runner = suite.join("run-tests");
    if !runner.is_file() {
        return Err(format!("no run-tests in {}: get the suite with\n  {HOW_TO_GET}", suite.display()));
    }
    let root = crate::workspace_root();
    let work = crate::target_dir().join("wasi-testsuite-runner");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let policy = work.join("policy.toml");
    std::fs::write(&policy, POLICY).map_err(|e| format!("cannot write {}: {e}", policy.display()))?;
    let report = work.join("report.json");
    let _ = std::fs::remove_file(&report);
    let status = Command::new("python3")
        .arg(root.join("xtask/wasi-testsuite/py311.py"))
        .arg(&runner)
        .arg("--runtime-adapter")
        .arg(root.join("xtask/wasi-testsuite/wasm_runtime.py"))
        .args(["--disable-colors", "--json-output-location"])
        .arg(&report)
        .env("WASM_RUNTIME", crate::cli_binary()?)
        .env("WASM_RUNTIME_POLICY", &policy)
        .current_dir(suite)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let text = std::fs::read_to_string(&report)
        .map_err(|e| format!("the runner wrote no report ({status}): {}: {e}", report.display()))?;
    let report: Report = serde_json::from_str(&text).map_err(|e| format!("cannot read the runner's report: {e}"))?;
    for suite in &report.results {
        eprintln!("{}: {} of {} passed", suite.name, suite.passed, suite.passed + suite.failed);
        let mut reasons: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for test in suite.tests.iter().filter(|test| test.outcome == "fail") {
            reasons.entry(first_reason(&test.failures)).or_default().push(&test.name);
        }
        let mut reasons: Vec<_> = reasons.into_iter().collect();
        reasons.sort_by_key(|(_, tests)| std::cmp::Reverse(tests.len()));
        for (reason, tests) in reasons {
            eprintln!("  {} failed: {reason}\n    {}", tests.len(), tests.join(", "));
        }
    }
    Ok(true)
}

/// The failure's most telling line: the runtime's diagnostic (`x ...`)
/// when it printed one, else the runner's own first line.
fn first_reason(failures: &[String]) -> String {
    let text = failures.join("\n");
    let diagnostic = text.lines().map(str::trim).find_map(|line| line.strip_prefix("x "));
    let line = diagnostic.or_else(|| text.lines().map(str::trim).find(|line| !line.is_empty())).unwrap_or("");
    line.chars().take(120).collect()
}
