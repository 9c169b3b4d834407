//! `cargo xtask wasi-testsuite`: runs the WebAssembly/wasi-testsuite's
//! `wasm32-wasip1` tests through the real `wasm-runtime` CLI, as commands.
//!
//! Each test is a core module; it becomes a component with wasmtime's
//! preview1 command adapter (`wasi-preview1-component-adapter-provider`) and
//! `wit-component`, then runs as `wasm-runtime run TEST.wasm ... -- ARGS`
//! with the arguments, environment and directories its JSON spec asks for,
//! in a fresh copy of those directories. A test passes when its exit code and
//! stdout are the ones the spec expects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// The share of tests that must pass.
const REQUIRED_PASS_RATE: f64 = 0.90;

/// Limits every test runs under: a Rust test with the adapter needs about
/// 1.5 MiB before its first allocation; the widest filesystem tests finish
/// in well under a second; `fd_readdir` makes 1,000 files beside the
/// directory's own, so the entry quota is the policy's most, not the
/// default 1,000.
const LIMIT_FLAGS: &[&str] =
    &["--memory", "64MiB", "--fuel", "10000000000", "--timeout", "20s", "--dir-max-entries", "10000"];

/// The policy that admits those limits and directory grants.
const POLICY: &str = r#"[resources]
memory = { max = "64MiB" }
timeout = { max = "60s" }
[grants]
dirs = true
"#;

/// How to get the suite, for the error when it is missing.
const HOW_TO_GET: &str = "git clone --depth 1 --branch prod/testsuite-all \
     https://github.com/WebAssembly/wasi-testsuite target/wasi-testsuite";

/// Options of `cargo xtask wasi-testsuite`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// A checkout of WebAssembly/wasi-testsuite, branch `prod/testsuite-all`.
    #[arg(long, default_value = "target/wasi-testsuite")]
    suite: PathBuf,
    /// Run only tests whose path contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Run the suite's own test runner (Python) through this repository's
    /// adapter instead: every p1 and p3 test of a `prod/testsuite-base`
    /// checkout (given by --suite, default target/wasi-testsuite-base),
    /// reported per suite.
    #[arg(long)]
    runner: bool,
}

/// A test's JSON spec (the legacy format `prod/testsuite-all` uses).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    args: Vec<String>,
    dirs: Vec<String>,
    env: BTreeMap<String, String>,
    exit_code: Option<i32>,
    stdout: Option<String>,
}

/// How one test ended.
struct Verdict {
    test: String,
    failure: Option<String>,
}

pub(crate) fn run(options: &Options) -> Result<bool, String> {
    let root = crate::workspace_root();
    if options.runner {
        let suite = if options.suite == Path::new("target/wasi-testsuite") {
            root.join("target/wasi-testsuite-base")
        } else if options.suite.is_absolute() {
            options.suite.clone()
        } else {
            root.join(&options.suite)
        };
        return crate::wasi_testsuite_runner::run(&suite);
    }
    let suite = if options.suite.is_absolute() { options.suite.clone() } else { root.join(&options.suite) };
    let mut tests = find_tests(&suite.join("tests"));
    if tests.is_empty() {
        return Err(format!(
            "no wasm32-wasip1 tests under {}: get the suite with\n  {HOW_TO_GET}\nor pass --suite DIR",
            suite.display()
        ));
    }
    if let Some(filter) = &options.filter {
        tests.retain(|test| test.to_string_lossy().contains(filter.as_str()));
    }
    let work = crate::target_dir().join("wasi-testsuite-run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let policy = work.join("policy.toml");
    std::fs::write(&policy, POLICY).map_err(|e| format!("cannot write {}: {e}", policy.display()))?;
    let binary = crate::cli_binary()?;
    let mut verdicts = Vec::with_capacity(tests.len());
    for (index, test) in tests.iter().enumerate() {
        let name = test.strip_prefix(suite.join("tests")).unwrap_or(test).display().to_string();
        let failure = run_test(binary, &policy, test, &work.join(index.to_string())).err();
        eprintln!("{} {name}{}", if failure.is_none() { "pass" } else { "FAIL" }, failure_line(failure.as_deref()));
        verdicts.push(Verdict { test: name, failure });
    }
    let passed = verdicts.iter().filter(|v| v.failure.is_none()).count();
    let rate = passed as f64 / verdicts.len() as f64;
    eprintln!("\n{passed} of {} wasi-testsuite tests passed ({:.1}%)", verdicts.len(), rate * 100.0);
    for verdict in verdicts.iter().filter(|v| v.failure.is_some()) {
        eprintln!("  failed: {}{}", verdict.test, failure_line(verdict.failure.as_deref()));
    }
    Ok(options.filter.is_some() || rate >= REQUIRED_PASS_RATE)
}

fn failure_line(failure: Option<&str>) -> String {
    failure.map(|reason| format!(": {reason}")).unwrap_or_default()
}

/// Every `*.wasm` in `tests/*/testsuite/wasm32-wasip1/`, sorted; none when
/// the suite is missing (the caller says how to get it).
fn find_tests(tests: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(languages) = std::fs::read_dir(tests) else { return found };
    for language in languages.flatten() {
        let dir = language.path().join("testsuite/wasm32-wasip1");
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "wasm") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Runs one test in `work`; `Err` says why it failed.
fn run_test(binary: &Path, policy: &Path, test: &Path, work: &Path) -> Result<(), String> {
    let spec: Spec = match std::fs::read_to_string(test.with_extension("json")) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("bad spec: {e}"))?,
        Err(_) => Spec::default(),
    };
    let module = std::fs::read(test).map_err(|e| format!("cannot read: {e}"))?;
    let component = command_component(&module)?;
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let file_name = test.file_name().map_or_else(|| "test.wasm".into(), |n| n.to_string_lossy().into_owned());
    let component_path = work.join(&file_name);
    std::fs::write(&component_path, component).map_err(|e| format!("cannot write the component: {e}"))?;
    let test_dir = test.parent().unwrap_or(Path::new("."));
    let mut command = Command::new(binary);
    command.arg("run").arg(&file_name).args(LIMIT_FLAGS).arg("--policy").arg(policy);
    for dir in &spec.dirs {
        copy_tree(&test_dir.join(dir), &work.join(dir))?;
        command.arg("--dir").arg(format!("{dir}::{dir}"));
    }
    for (key, value) in &spec.env {
        command.arg("--env").arg(format!("{key}={value}"));
    }
    command.arg("--").args(&spec.args);
    let output = command
        .current_dir(work)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let expected = spec.exit_code.unwrap_or(0);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() != Some(expected) {
        let said = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("(nothing on stderr)");
        return Err(format!("exit code {:?}, expected {expected}; stderr: {said}", output.status.code()));
    }
    if let Some(stdout) = &spec.stdout {
        let got = String::from_utf8_lossy(&output.stdout);
        if got != *stdout {
            return Err(format!("stdout {got:?}, expected {stdout:?}"));
        }
    }
    Ok(())
}

/// A wasip1 core module as a `wasi:cli/command` component.
fn command_component(module: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                "wasi_snapshot_preview1",
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| format!("cannot make a component: {e:#}"))
}

/// Copies a directory tree, symlinks as symlinks (the filesystem tests
/// create and check them).
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot copy {} to {}: {e}", from.display(), to.display());
    std::fs::create_dir_all(to).map_err(fail)?;
    for entry in std::fs::read_dir(from).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(fail)?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source).map_err(fail)?;
            std::os::unix::fs::symlink(link, &target).map_err(fail)?;
        } else {
            std::fs::copy(&source, &target).map_err(fail)?;
        }
    }
    Ok(())
}
