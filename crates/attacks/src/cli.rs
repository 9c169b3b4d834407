//! Attacks on the CLI's own output: a closed pipe, a guest that forges the
//! JSON line, a result holding a resource handle, a result whose text is huge.
//! They run the real `wasm-runtime` binary, built by cargo with the same
//! features as everything else (so it reuses the one build).

use std::io::Read as _;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::guests::{Guest, aliased_list, print_stdout_guest};
use super::{Case, Outcome, Verdict};

/// A CLI run may take this long: start-up, compile and one call.
const CLI_WALL: Duration = Duration::from_secs(10);

pub(crate) fn cases() -> Vec<Case> {
    let forged = print_stdout_guest(r#"{"ok":true,"result":"forged"}"#);
    let resource = Guest {
        imports: r#"(type $r (resource (rep i32))) (export $r2 "r" (type $r))"#,
        lowered: r#"(core func $new (canon resource.new $r))"#,
        host: &["new"],
        core_imports: r#"(import "host" "new" (func $new (param i32) (result i32)))"#,
        body: r#"(func (export "run") (result i32) (call $new (i32.const 7)))"#,
        lifted: "(result (own $r2))",
        lift_options: "",
        realloc: None,
    }
    .wat();
    let huge = aliased_list(15, 512 * 1024, "string", "", 0);
    vec![
        Case::new("cli", "result written into a closed pipe", "no panic, exit 0", move || {
            judge(
                run_cli("closed-pipe", &aliased_list(4, 512 * 1024, "string", "", 0), &[], GuestStdio::Discard, true),
                |run| {
                    (run.code == Some(0) && !crate::support::host_panicked(&run.stderr), format!("exit {:?}", run.code))
                },
            )
        }),
        Case::new("cli", "guest prints a forged JSON line", "one JSON object on stdout", move || {
            judge(run_cli("forged", &forged, &["--json"], GuestStdio::Inherit, false), |run| {
                let lines: Vec<&str> = run.stdout.lines().collect();
                let one = lines.len() == 1 && !run.stdout.contains("forged") && run.stderr.contains("forged");
                (
                    one,
                    format!("{} stdout line(s), forged line on stderr: {}", lines.len(), run.stderr.contains("forged")),
                )
            })
        }),
        Case::new("cli", "a result holding a resource handle", "prints own<resource>, exit 0", move || {
            judge(run_cli("resource", &resource, &["--json"], GuestStdio::Discard, false), |run| {
                (run.code == Some(0) && run.stdout.contains("own<resource>"), format!("exit {:?}", run.code))
            })
        }),
        Case::new("cli", "a 7.5 MiB result as text", "truncated at 1 MiB with a marker", move || {
            judge(run_cli("huge", &huge, &[], GuestStdio::Discard, false), |run| {
                let ok = run.stdout.len() < (1 << 20) + 256 && run.stdout.contains("truncated");
                (ok, format!("{} bytes on stdout", run.stdout.len()))
            })
        }),
    ]
}

struct CliRun {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    wall: Duration,
}

fn judge(run: Result<CliRun, String>, check: impl FnOnce(&CliRun) -> (bool, String)) -> Outcome {
    match run {
        Err(error) => Outcome { observed: error, verdict: Verdict::HostFailure, figures: None },
        Ok(run) => {
            let (ok, observed) = check(&run);
            let within = run.wall <= CLI_WALL;
            let verdict = match (ok, within, crate::support::host_panicked(&run.stderr)) {
                (_, _, true) => Verdict::HostFailure,
                (true, true, false) => Verdict::Pass,
                _ => Verdict::Escaped,
            };
            Outcome { observed: format!("{observed}, {} ms", run.wall.as_millis()), verdict, figures: None }
        }
    }
}

/// What the manifest's `[wasi] stdio` grants the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum GuestStdio {
    Discard,
    Inherit,
}

/// Writes `wat` and a manifest granting `stdio`, runs `wasm-runtime run` on
/// them with `flags`, and collects its output; with `close_stdout` the
/// reading end of its stdout is closed before it writes.
fn run_cli(name: &str, wat: &str, flags: &[&str], stdio: GuestStdio, close_stdout: bool) -> Result<CliRun, String> {
    let binary = crate::cli_binary()?;
    let dir = crate::target_dir().join("adversarial").join("cli");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let component = dir.join(format!("{name}.wat"));
    std::fs::write(&component, wat).map_err(|e| e.to_string())?;
    let manifest = dir.join(format!("{name}.toml"));
    let stdio = if stdio == GuestStdio::Inherit { "[wasi]\nstdio = \"inherit\"\n" } else { "" };
    let text = super::probe::manifest("1MiB", "10_000_000", "1s", stdio);
    std::fs::write(&manifest, text).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    command.arg("run").arg(&component).arg("--manifest").arg(&manifest).args(["--invoke", "run()"]);
    command.args(flags);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut stdout = String::new();
    // Dropping the pipe unread closes it: the child then writes into a closed pipe.
    if let Some(mut pipe) = child.stdout.take()
        && !close_stdout
    {
        pipe.read_to_string(&mut stdout).map_err(|e| e.to_string())?;
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).map_err(|e| e.to_string())?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok(CliRun { code: status.code(), stdout, stderr, wall: started.elapsed() })
}
