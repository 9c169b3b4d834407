//! WASI 0.3 commands (`wasi:cli/run@0.3.0`, an async `run`): run like a p2
//! command under the same limits. The CLI turns on component-model async
//! for a component that needs it; the fixture is the Rust guest in
//! `fixtures/guests/rust-p3-command`.

use crate::{TestResult, wasm_runtime};

const LIMITS: &[&str] = &["--memory", "4MiB"];

fn command() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-p3-command.wasm").to_owned()
}

/// Runs the p3 command with `flags` (1e9 fuel and a 10 s deadline unless
/// they set their own) and `-- actions`: its exit code, stdout and stderr.
fn run_p3(flags: &[&str], actions: &[&str]) -> Result<(i32, String, String), std::io::Error> {
    let unless = |flag: &str, default: &'static [&'static str]| if flags.contains(&flag) { &[][..] } else { default };
    let defaults = [unless("--fuel", &["--fuel", "1_000_000_000"]), unless("--timeout", &["--timeout", "10s"])];
    crate::command::run_fixture(&command(), &[LIMITS, &defaults.concat(), flags].concat(), actions)
}

fn error_kind(stdout: &str) -> Result<String, serde_json::Error> {
    let body: serde_json::Value = serde_json::from_str(stdout.trim())?;
    Ok(body["error"]["kind"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn a_p3_command_gets_its_arguments_environment_clocks_and_exit_status() -> TestResult {
    let (code, stdout, stderr) = run_p3(&["--env", "GREETING=hi"], &["args", "env:GREETING", "sleep:20", "random"])?;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[..3], ["rust-p3-command.wasm args env:GREETING sleep:20 random", "hi", "slept 20"]);
    assert!(lines.get(3).is_some_and(|line| line.parse::<u64>().is_ok()), "{stdout}");
    // The newest `wasi:cli/run` runs: the p2 one the Rust std exports traps.
    let (code, stdout, _) = run_p3(&[], &["args", "exit:3"])?;
    assert_eq!((code, stdout.lines().count()), (3, 1));
    let (code, stdout, _) = run_p3(&[], &["env:GREETING"])?;
    assert_eq!((code, stdout.trim()), (0, "env:GREETING unset"), "no environment unless granted");
    Ok(())
}

#[test]
fn a_p3_command_reports_as_json_and_its_async_export_can_be_invoked() -> TestResult {
    let (code, stdout, _) = run_p3(&["--stdio", "capture", "--json"], &["args"])?;
    assert_eq!(code, 0);
    let body: serde_json::Value = serde_json::from_str(stdout.trim())?;
    assert_eq!(body["exit_code"], 0);
    assert_eq!(body["report"]["stdout"], "rust-p3-command.wasm args\n");
    let wasm = command();
    let mut args = vec!["run", wasm.as_str(), "--invoke", "wasi:cli/run@0.3.0#run()", "--timeout", "10s"];
    args.extend_from_slice(&["--memory", "4MiB", "--fuel", "1_000_000_000"]);
    let output = wasm_runtime(&args)?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    Ok(())
}

#[test]
fn a_p3_command_meets_its_deadline_whether_it_spins_or_waits() -> TestResult {
    for action in ["spin", "sleep:5000"] {
        // The policy's most fuel: a spin meets the deadline first.
        let (code, stdout, _) = run_p3(&["--fuel", "10_000_000_000", "--timeout", "100ms", "--json"], &[action])?;
        assert_eq!((code, error_kind(&stdout)?.as_str()), (3, "deadline-exceeded"), "{action}: {stdout}");
    }
    let (code, stdout, _) = run_p3(&["--timeout", "100ms"], &["sleep:10"])?;
    assert_eq!((code, stdout.trim()), (0, "slept 10"), "a sleep within the deadline");
    Ok(())
}

#[test]
fn streams_futures_and_subtasks_are_held_within_the_instance_s_limits() -> TestResult {
    let (code, stdout, _) = run_p3(&[], &["streams:100", "futures:100", "spawn:100"])?;
    assert_eq!(code, 0, "under the limit");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["streams 100", "futures 100", "spawned 100 finished 100"]);
    // Each end of a stream or future, and each subtask, is a handle.
    for action in ["streams:100000", "futures:100000"] {
        let (code, stdout, _) = run_p3(&["--json"], &[action])?;
        assert_eq!((code, error_kind(&stdout)?.as_str()), (3, "handle-limit-exceeded"), "{action}: {stdout}");
    }
    // 100,000 subtasks' futures outgrow 4 MiB of guest memory before the
    // handle table fills: either limit stops them, typed.
    let (code, stdout, _) = run_p3(&["--json"], &["spawn:100000"])?;
    let kind = error_kind(&stdout)?;
    assert_eq!(code, 3, "{stdout}");
    assert!(["handle-limit-exceeded", "memory-limit-exceeded"].contains(&kind.as_str()), "{stdout}");
    Ok(())
}

#[test]
fn inspect_marks_async_exports() -> TestResult {
    let output = wasm_runtime(&["inspect", &command()])?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("wasi:cli/run@0.3.0#run: async func() -> result"), "{text}");
    assert!(text.contains("wasi:cli/run@0.2.0#run: func() -> result"), "{text}");
    Ok(())
}
