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

fn error_kind(stdout: &str) -> Result<String, Box<dyn std::error::Error>> {
    let body = crate::run_json(stdout.trim().as_bytes())?;
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
    let body = crate::run_json(stdout.trim().as_bytes())?;
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

#[test]
fn a_p3_command_s_writes_stop_at_its_grant_s_byte_quota() -> TestResult {
    use crate::command::{dir_flag, on_disk, tree};
    let root = tree("p3-quota")?;
    let dir = dir_flag(&root, "/data");
    let quota = ["--dir", &dir, "--dir-max-bytes", "1MiB"];
    let actions = ["write:small:500000", "write:big:3000000", "append:small:100000", "list"];
    let (code, stdout, stderr) = run_p3(&quota, &actions)?;
    assert_eq!(code, 0, "a refusal is the guest's to handle: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "wrote small 500000", "under the quota: {stdout}");
    // A write stream is charged chunk by chunk, before each chunk is written.
    assert!(lines[1].starts_with("wrote big ") && lines[1].ends_with(": ErrorCode::InsufficientSpace"), "{stdout}");
    assert_eq!(lines[2], "wrote small 0: ErrorCode::InsufficientSpace", "an append is charged as well: {stdout}");
    assert_eq!(lines[3], "listed 4", "a.txt, link, small and big: {stdout}");
    let (bytes, _) = on_disk(&root.join("data"))?;
    assert!(bytes > 500_010 && bytes <= 1 << 20, "the directory holds what fit, nothing more: {bytes}");
    // The next run finds the quota spent: what is on disk counts.
    let (_, stdout, _) = run_p3(&quota, &["write:more:100000"])?;
    assert_eq!(stdout.trim(), "wrote more 0: ErrorCode::InsufficientSpace");
    Ok(())
}

#[test]
fn a_p3_command_holds_no_more_descriptors_than_its_cap() -> TestResult {
    use crate::command::{dir_flag, tree};
    let root = tree("p3-descriptors")?;
    let dir = dir_flag(&root, "/data");
    let policy = "[grants]\nmax-descriptors = 8\nnetwork = true\n";
    let policy = crate::scratch("p3-descriptors-policy.toml", policy)?.display().to_string();
    let granted = ["--policy", policy.as_str(), "--dir", &dir, "--allow-tcp-bind", "127.0.0.1:*"];
    // Under the cap every kind works; the preopen is one of the 8.
    let (code, stdout, stderr) = run_p3(&granted, &["open:3", "listings:2", "sockets:2"])?;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().collect::<Vec<_>>(), ["opened 3", "listings 2", "sockets 2"]);
    // Past it each is refused as the OS would refuse it, and the guest goes on.
    let cap = "ErrorCode::Other(Some(\"too many open descriptors: the instance is at its descriptor cap\"))";
    for (action, refused) in [
        ("open:100", "opened 7: ErrorCode::InsufficientMemory".to_owned()),
        ("listings:100", "listings 7: Err(ErrorCode::InsufficientMemory)".to_owned()),
        // A guest that never asks for its preopen holds no descriptor for it.
        ("sockets:100", format!("sockets 8: {cap}")),
    ] {
        let (code, stdout, stderr) = run_p3(&granted, &[action, "args"])?;
        assert_eq!(code, 0, "{action}: {stderr}");
        assert_eq!(stdout.lines().next(), Some(refused.as_str()), "{action}");
        assert_eq!(stdout.lines().count(), 2, "{action}: the guest went on: {stdout}");
    }
    Ok(())
}

#[test]
fn a_p3_socket_listens_only_where_its_grant_binds() -> TestResult {
    let policy = crate::scratch("p3-network-policy.toml", "[grants]\nnetwork = true\n")?.display().to_string();
    // Unbound, it would listen on every interface: under a loopback grant it
    // listens on loopback.
    let (code, stdout, stderr) = run_p3(&["--policy", &policy, "--allow-tcp-bind", "127.0.0.1:*"], &["listen"])?;
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("listening 127.0.0.1:"), "{stdout}");
    // A connect grant binds nothing.
    let (_, stdout, _) = run_p3(&["--policy", &policy, "--allow-tcp", "127.0.0.1:*"], &["listen"])?;
    assert_eq!(stdout.trim(), "listen: ErrorCode::AccessDenied");
    // No grant: the first socket call fails typed, naming the grant.
    let (code, _, stderr) = run_p3(&[], &["listen"])?;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("capability-denied") && stderr.contains("wasi:sockets/types@0.3"), "{stderr}");
    Ok(())
}

#[test]
fn a_hard_linked_symlink_removed_twice_gives_its_block_back_once() -> TestResult {
    use crate::command::{dir_flag, tree};
    let disk = |actions: &[&str]| -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        let root = tree("p3-relink")?;
        let dir = dir_flag(&root, "/data");
        let (code, stdout, stderr) = run_p3(&["--dir", &dir, "--json"], actions)?;
        assert_eq!(code, 0, "{stderr}");
        let report = crate::run_json(stdout.trim().as_bytes())?;
        Ok(report["report"]["disk"][0].clone())
    };
    let before = disk(&["write:f:20000"])?;
    // Each cycle makes a symlink (a block), hard-links it and removes both
    // names: the account ends where it began, not a block lower per cycle.
    let after = disk(&["write:f:20000", "relink:10"])?;
    assert_eq!((&after["bytes"], &after["entries"]), (&before["bytes"], &before["entries"]), "{after}");
    assert!(before["bytes"].as_u64().is_some_and(|bytes| bytes >= 20000), "{before}");
    Ok(())
}

#[test]
fn a_crashed_command_s_captured_output_is_shown_without_json_too() -> TestResult {
    let manifest = "[component]\nname = \"cmd\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\n\
        fuel = 1_000_000_000\ntimeout = \"10s\"\n[wasi]\nstdio = \"capture\"\n";
    let manifest = crate::scratch("p3-capture.toml", manifest)?.display().to_string();
    let (code, _, stderr) = crate::command::run_fixture(&command(), &["--manifest", &manifest], &["args", "panic"])?;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--- guest stdout ---\nrust-p3-command.wasm args panic"), "{stderr}");
    assert!(stderr.contains("--- guest stderr ---") && stderr.contains("panic requested"), "{stderr}");
    assert!(stderr.contains("guest crashed: unreachable"), "{stderr}");
    Ok(())
}
