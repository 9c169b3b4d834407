//! `wasm-runtime run`: one call of one export, reported for humans or as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use runtime::{CallReport, ComponentManifest, LimitFlags, Runtime, RuntimeError, Val};
use serde_json::json;
use wasm_wave::untyped::UntypedFuncCall;

/// Arguments of `wasm-runtime run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The component: a binary (.wasm) or its text form (.wat).
    component: PathBuf,
    /// The manifest whose limits the call runs under.
    #[arg(long, conflicts_with_all = ["memory", "fuel", "timeout"], required_unless_present_all = ["memory", "fuel", "timeout"])]
    manifest: Option<PathBuf>,
    /// Memory budget (sum of all linear memories), e.g. 1MiB; instead of --manifest.
    #[arg(long, requires_all = ["fuel", "timeout"])]
    memory: Option<String>,
    /// Fuel for the call, e.g. 1000000; instead of --manifest.
    #[arg(long, requires_all = ["memory", "timeout"])]
    fuel: Option<String>,
    /// Wall-clock deadline, e.g. 100ms; instead of --manifest.
    #[arg(long, requires_all = ["memory", "fuel"])]
    timeout: Option<String>,
    /// The call, in WAVE syntax: `name(arg, ...)`, e.g. 'fib(20)' or 'greet("x")'.
    #[arg(long)]
    invoke: String,
    /// Print exactly one JSON object on stdout instead of the human-readable
    /// lines. A guest whose manifest inherits stdio writes to stderr then,
    /// so nothing it prints can be mistaken for the JSON.
    #[arg(long)]
    json: bool,
    /// Keep compiled components in this directory between runs.
    #[arg(long, env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    match execute(args) {
        Ok(ExitCode::SUCCESS) => ExitCode::SUCCESS,
        Ok(code) => code,
        Err(failure) => failure.emit(args.json),
    }
}

/// A failure before or during the call, with the exit code it maps to.
enum Failure {
    Usage(String),
    Runtime(RuntimeError),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => crate::EXIT_INVALID,
            Self::Runtime(error) => match error {
                RuntimeError::Load(_) => crate::EXIT_LOAD,
                RuntimeError::Crash(_) => crate::EXIT_CRASH,
                _ => crate::EXIT_INVALID,
            },
        }
    }

    fn emit(self, as_json: bool) -> ExitCode {
        let code = self.exit_code();
        match (self, as_json) {
            (Self::Usage(message), true) => print_json(&json!({
                "ok": false,
                "error": { "kind": "usage", "message": message, "help": "see `wasm-runtime run --help`" },
            })),
            (Self::Usage(message), false) => crate::print::stderr_text(&format!("error: {message}\n")),
            (Self::Runtime(error), true) => {
                let report = error.crash().map(|crash| report_json(&crash.report));
                let mut body = json!({
                    "ok": false,
                    "error": {
                        "kind": error.kind(),
                        "message": error.to_string(),
                        "help": miette::Diagnostic::help(&error).map(|h| h.to_string()),
                    },
                });
                if let Some(crash) = error.crash() {
                    body["error"]["detail"] = json!(crash.detail);
                    body["error"]["wasm_backtrace"] = json!(crash.wasm_backtrace);
                    match crash.kind {
                        runtime::CrashKind::DeadlineExceeded { during } => {
                            body["error"]["during"] = json!(during.as_str())
                        }
                        runtime::CrashKind::Exited { status } => body["exit_status"] = json!(status),
                        _ => {}
                    }
                }
                if let Some(report) = report {
                    body["report"] = report;
                }
                print_json(&body);
            }
            (Self::Runtime(error), false) => {
                let report = error.crash().map(|crash| crash.report.clone());
                crate::report_error(error);
                if let Some(report) = report {
                    crate::print::stderr_text(&format!("{}\n", report_line(&report)));
                }
            }
        }
        ExitCode::from(code)
    }
}

fn execute(args: &RunArgs) -> Result<ExitCode, Failure> {
    let mut builder = Runtime::builder();
    if let Some(dir) = &args.cache_dir {
        builder = builder.disk_cache(dir);
    }
    let runtime = builder.build().map_err(Failure::Runtime)?;
    let manifest = manifest(args, &runtime).map_err(Failure::Runtime)?;
    let component =
        runtime.load_file(&args.component, &manifest).map_err(Failure::Runtime)?.with_stdout_to_stderr(args.json);
    let call = UntypedFuncCall::parse(&args.invoke).map_err(|e| Failure::Usage(format!("--invoke: {e}")))?;
    let signature = component.signature(call.name()).map_err(Failure::Runtime)?;
    let params: Vec<Val> = call
        .to_wasm_params(signature.params.iter().map(|(_, ty)| ty))
        .map_err(|e| Failure::Usage(format!("--invoke arguments for `{}`: {e}", call.name())))?;
    // The call goes through the async executor, as an embedder's would.
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(RuntimeError::Internal { message: format!("cannot start tokio: {e}") }))?;
    let outcome = executor.block_on(runtime.call_async(&component, call.name(), &params));
    // A call abandoned at its deadline may leave a blocking write behind
    // (a stalled stdout): the command does not wait for it.
    executor.shutdown_background();
    let outcome = outcome.map_err(Failure::Runtime)?;
    let results = crate::print::results_text(&outcome.results);
    if args.json {
        print_json(&json!({ "ok": true, "result": results, "report": report_json(&outcome.report) }));
    } else {
        crate::print::stdout_line(&results);
        crate::print::stderr_text(&captured_output(&outcome.report));
        crate::print::stderr_text(&format!("{}\n", report_line(&outcome.report)));
    }
    Ok(ExitCode::SUCCESS)
}

fn manifest(args: &RunArgs, runtime: &Runtime) -> Result<ComponentManifest, RuntimeError> {
    let policy = runtime.engine().policy();
    match (&args.manifest, &args.memory, &args.fuel, &args.timeout) {
        (Some(path), ..) => Ok(ComponentManifest::from_path_with_policy(path, policy)?),
        (None, Some(memory), Some(fuel), Some(timeout)) => {
            Ok(ComponentManifest::from_limit_flags(LimitFlags { memory, fuel, timeout }, policy)?)
        }
        // clap requires either --manifest or all three flags.
        _ => Err(RuntimeError::Internal { message: "no limits given".into() }),
    }
}

fn report_json(report: &CallReport) -> serde_json::Value {
    json!({
        "fuel_consumed": report.fuel_consumed,
        "fuel_limit": report.fuel_limit,
        "peak_memory_bytes": report.peak_memory_bytes,
        "current_memory_bytes": report.current_memory_bytes,
        "memory_limit_bytes": report.memory_limit_bytes,
        "wall_us": report.wall.as_micros(),
        "instantiate_us": report.instantiate.as_micros(),
        "host_calls": report.host_calls,
        "host_us": report.host_time.as_micros(),
        "stdout": report.stdout,
        "stderr": report.stderr,
    })
}

/// The guest's captured output, labelled, for the human-readable mode.
fn captured_output(report: &CallReport) -> String {
    [("stdout", &report.stdout), ("stderr", &report.stderr)]
        .into_iter()
        .filter_map(|(name, text)| {
            text.as_deref().filter(|t| !t.is_empty()).map(|t| format!("--- guest {name} ---\n{t}"))
        })
        .collect()
}

fn report_line(report: &CallReport) -> String {
    format!(
        "fuel {}/{}, peak memory {}/{} bytes, {:.3} ms (instantiate {:.3} ms), host calls {}",
        report.fuel_consumed,
        report.fuel_limit,
        report.peak_memory_bytes,
        report.memory_limit_bytes,
        report.wall.as_secs_f64() * 1e3,
        report.instantiate.as_secs_f64() * 1e3,
        report.host_calls,
    )
}

fn print_json(value: &serde_json::Value) {
    crate::print::stdout_line(&value.to_string());
}
