//! `wasm-runtime run`: results, reports, exit codes and JSON.

use serde_json::Value;

use crate::{TestResult, scratch, wasm_runtime};

const LOOP: &str = r#"(component
  (core module $m
    (func (export "run") (loop $l (br $l)))
    (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m))
  (func (export "run") (canon lift (core func $i "run")))
  (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add"))))"#;

fn json(stdout: &[u8]) -> Result<Value, Box<dyn std::error::Error>> {
    crate::run_json(stdout)
}

fn run(component: &str, extra: &[&str]) -> Result<std::process::Output, std::io::Error> {
    let mut args = vec!["run", component];
    args.extend_from_slice(extra);
    wasm_runtime(&args)
}

#[test]
fn a_successful_call_prints_its_result_and_exits_0() -> TestResult {
    let path = scratch("add.wat", LOOP)?;
    let limits = ["--memory", "1MiB", "--fuel", "1000000", "--timeout", "1s"];
    let output = run(path.to_str().ok_or("path")?, &[&limits[..], &["--invoke", "add(2, 40)"]].concat())?;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout)?.trim(), "42");

    let output = run(path.to_str().ok_or("path")?, &[&limits[..], &["--invoke", "add(2, 40)", "--json"]].concat())?;
    let body = json(&output.stdout)?;
    assert_eq!(body["ok"], true);
    assert_eq!((&body["calls"][0]["result"], &body["calls"][0]["value"]), (&"42".into(), &42.into()));
    for key in ["fuel_consumed", "peak_memory_bytes", "wall_us", "instantiate_us", "queue_wait_us", "host_calls"] {
        assert!(body["calls"][0]["report"][key].is_u64(), "{key} missing: {body}");
    }
    Ok(())
}

/// The issue's acceptance case: the same loop stopped by the deadline, then by fuel.
#[test]
fn a_loop_is_stopped_by_the_deadline_or_by_fuel_and_exits_3() -> TestResult {
    let path = scratch("loop.wat", LOOP)?;
    let path = path.to_str().ok_or("path")?;
    let deadline =
        run(path, &["--memory", "1MiB", "--fuel", "1000000000", "--timeout", "100ms", "--invoke", "run()", "--json"])?;
    assert_eq!(deadline.status.code(), Some(3));
    let body = json(&deadline.stdout)?;
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"]["kind"], "deadline-exceeded");
    assert_eq!(body["error"]["during"], "guest");
    assert!(body["report"]["wall_us"].as_u64().is_some_and(|us| us >= 100_000), "{body}");

    let fuel =
        run(path, &["--memory", "1MiB", "--fuel", "1000000", "--timeout", "100ms", "--invoke", "run()", "--json"])?;
    assert_eq!(fuel.status.code(), Some(3));
    let body = json(&fuel.stdout)?;
    assert_eq!(body["error"]["kind"], "out-of-fuel");
    assert_eq!(body["report"]["fuel_consumed"], 1_000_000);
    assert!(body["error"]["help"].as_str().is_some_and(|help| help.contains("resources.fuel")));
    Ok(())
}

#[test]
fn limits_come_from_a_manifest_too() -> TestResult {
    let component = scratch("manifest-loop.wat", LOOP)?;
    let manifest = scratch(
        "run-manifest.toml",
        "[component]\nname = \"loop\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"1MiB\"\nfuel = 5000\ntimeout = \"1s\"\n",
    )?;
    let output = run(
        component.to_str().ok_or("path")?,
        &["--manifest", manifest.to_str().ok_or("path")?, "--invoke", "run()", "--json"],
    )?;
    let body = json(&output.stdout)?;
    assert_eq!(body["error"]["kind"], "out-of-fuel");
    assert_eq!(body["report"]["fuel_consumed"], 5000);
    Ok(())
}

#[test]
fn exit_codes_separate_usage_manifest_load_and_crash() -> TestResult {
    let component = scratch("codes.wat", LOOP)?;
    let component = component.to_str().ok_or("path")?;
    let core = scratch("core.wat", "(module)")?;
    let ok_limits = ["--memory", "1MiB", "--fuel", "1000", "--timeout", "1s"];

    // Limits outside the policy are a usage error (1), said of the flag, with
    // the way to widen the range.
    let output = run(component, &["--memory", "8MiB", "--fuel", "1000", "--timeout", "1s", "--invoke", "run()"])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("--memory 8MiB: ") && stderr.contains("outside the host policy"), "{stderr}");
    assert!(stderr.contains("--policy FILE") && stderr.contains("examples/policy/wide.toml"), "{stderr}");
    assert!(!stderr.contains("command-line flags:"), "no made-up manifest line: {stderr}");
    // Missing limits are a usage error (1).
    assert_eq!(run(component, &["--memory", "1MiB", "--invoke", "run()"])?.status.code(), Some(1));
    // A core module is a load error (2).
    let output = run(core.to_str().ok_or("path")?, &[&ok_limits[..], &["--invoke", "run()", "--json"]].concat())?;
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(json(&output.stdout)?["error"]["kind"], "not-a-component");
    // An unknown export or bad arguments are usage errors (1).
    assert_eq!(run(component, &[&ok_limits[..], &["--invoke", "nope()"]].concat())?.status.code(), Some(1));
    assert_eq!(run(component, &[&ok_limits[..], &["--invoke", "add(\"x\", 1)"]].concat())?.status.code(), Some(1));
    Ok(())
}

/// A component that defines a resource `r`: `make()` returns a handle to a
/// new one holding 42, `get(x)` takes it back and returns what it holds.
const RESOURCE: &str = r#"(component
  (type $r (resource (rep i32)))
  (core func $new (canon resource.new $r))
  (core func $rep (canon resource.rep $r))
  (core module $m
    (import "" "new" (func $new (param i32) (result i32)))
    (import "" "rep" (func $rep (param i32) (result i32)))
    (func (export "make") (result i32) (call $new (i32.const 42)))
    (func (export "get") (param i32) (result i32) (call $rep (local.get 0))))
  (core instance $i (instantiate $m (with "" (instance (export "new" (func $new)) (export "rep" (func $rep))))))
  (export $r2 "r" (type $r))
  (func (export "make") (result (own $r2)) (canon lift (core func $i "make")))
  (func (export "get") (param "x" (own $r2)) (result u32) (canon lift (core func $i "get"))))"#;

/// Several `--invoke` flags share one instance, so a handle one call
/// returns (`$1`) is valid in the next; each call has its own report.
#[test]
fn a_resource_handle_returned_by_one_call_is_passed_to_the_next() -> TestResult {
    let path = scratch("resource.wat", RESOURCE)?;
    let limits = ["--memory", "1MiB", "--fuel", "1000000", "--timeout", "1s"];
    let calls = ["--invoke", "make()", "--invoke", "get($1)", "--json"];
    let output = run(path.to_str().ok_or("path")?, &[&limits[..], &calls].concat())?;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    let body = json(&output.stdout)?;
    assert!(body["calls"][0]["result"].as_str().is_some_and(|r| r.starts_with("own<")), "{body}");
    assert_eq!(body["calls"][1]["result"], "42");
    assert!(body["calls"][1]["report"]["fuel_consumed"].is_u64(), "{body}");
    // `$2` names no earlier call: a usage error (exit 1), not a crash.
    let calls = ["--invoke", "make()", "--invoke", "get($2)"];
    let output = run(path.to_str().ok_or("path")?, &[&limits[..], &calls].concat())?;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("names no earlier result"));
    Ok(())
}

/// `nap()` asks the runtime's reference `sleep` for 1 ms.
const NAPS: &str = r#"(component
  (import "wasm-runtime:host/time@0.1.0" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m (import "host" "sleep" (func $sleep (param i32))) (func (export "nap") (call $sleep (i32.const 1))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "nap") (canon lift (core func $i "nap"))))"#;

#[test]
fn the_reference_host_functions_need_the_host_functions_flag() -> TestResult {
    let path = scratch("naps.wat", NAPS)?;
    let path = path.to_str().ok_or("path")?;
    let limits = ["--memory", "1MiB", "--fuel", "1000000", "--timeout", "5s", "--invoke", "nap()", "--json"];
    let denied = run(path, &limits)?;
    assert_eq!(denied.status.code(), Some(3), "{}", String::from_utf8_lossy(&denied.stderr));
    let body = json(&denied.stdout)?;
    assert_eq!(body["error"]["kind"], "capability-denied", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("--host-functions time")), "{body}");
    let granted = run(path, &[&limits[..], &["--host-functions", "log,time"]].concat())?;
    assert_eq!(granted.status.code(), Some(0), "{}", String::from_utf8_lossy(&granted.stderr));
    assert_eq!(json(&granted.stdout)?["calls"][0]["report"]["host_calls"], 1);
    let unknown = run(path, &[&limits[..], &["--host-functions", "sleep"]].concat())?;
    assert_eq!(unknown.status.code(), Some(1), "a usage error");
    Ok(())
}
