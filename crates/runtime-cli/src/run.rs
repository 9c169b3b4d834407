//! `wasm-runtime run`: a command (`wasi:cli/run`) or one or more calls of
//! exports on one instance, reported for humans or as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runtime::{
    Allocation, CallReport, ComponentManifest, CrashKind, HostPolicy, LoadedComponent, Runtime, RuntimeError, Val,
};
use serde_json::json;

use crate::grants::GrantFlags;
use crate::invoke::Invocation;

/// Where the limits come from: a manifest, or all three limit flags.
#[derive(Debug, clap::Args)]
pub(crate) struct LimitSource {
    /// The manifest whose limits and grants the component runs under.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Memory budget (sum of all linear memories), e.g. 1MiB; with --fuel and --timeout, instead of --manifest.
    #[arg(long)]
    memory: Option<String>,
    /// Fuel per call, e.g. 1000000; with --memory and --timeout, instead of --manifest.
    #[arg(long)]
    fuel: Option<String>,
    /// Wall-clock deadline per call, e.g. 100ms; with --memory and --fuel, instead of --manifest.
    #[arg(long)]
    timeout: Option<String>,
}

/// Arguments of `wasm-runtime run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The component: a binary (.wasm) or its text form (.wat). Without it,
    /// the manifest's `wasm` key names it.
    component: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitSource,
    /// A call in WAVE syntax: `name(arg, ...)` or `interface#name(...)`, e.g.
    /// 'fib(20)' or 'docs:adder/add@0.1.0#add(1, 2)'. Repeatable: the calls
    /// run in order on one instance, and `$N` as an argument passes the first
    /// result of the N-th call (a resource handle, say). Without --invoke the
    /// component runs as a command (`wasi:cli/run`).
    #[arg(long)]
    invoke: Vec<String>,
    /// The host policy file that manifests and grants are checked against.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    grants: GrantFlags,
    /// Print exactly one JSON object on stdout instead of the human-readable
    /// lines. A guest that inherits stdio writes to stderr then, so nothing
    /// it prints can be mistaken for the JSON.
    #[arg(long)]
    json: bool,
    /// Keep compiled components in this directory between runs.
    #[arg(long, env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Arguments for a command, after `--`; argv[0] is the component's file name.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    match execute(args) {
        Ok(code) => code,
        Err(failure) => {
            let code = failure.exit_code();
            if args.json {
                print_json(&failure.to_json());
            } else {
                failure.print();
            }
            ExitCode::from(code)
        }
    }
}

/// The exit code of a command that prints nothing on success: 0, or the
/// failure's code once its diagnostic is printed.
pub(crate) fn exit_code(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let code = failure.exit_code();
            failure.print();
            ExitCode::from(code)
        }
    }
}

/// A failure before or during a call, with the exit code it maps to.
pub(crate) enum Failure {
    Usage(String),
    Runtime(RuntimeError),
    Serve(runtime_http::ServeError),
}

impl From<RuntimeError> for Failure {
    fn from(error: RuntimeError) -> Self {
        Self::Runtime(error)
    }
}

impl Failure {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => crate::EXIT_INVALID,
            Self::Runtime(error) => match error {
                RuntimeError::Load(_) => crate::EXIT_LOAD,
                RuntimeError::Crash(_) => crate::EXIT_CRASH,
                _ => crate::EXIT_INVALID,
            },
            Self::Serve(runtime_http::ServeError::NotAProxy { .. }) => crate::EXIT_LOAD,
            Self::Serve(_) => crate::EXIT_INVALID,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Usage(message) => json!({
                "ok": false,
                "error": { "kind": "usage", "message": message, "help": "see `wasm-runtime run --help`" },
            }),
            Self::Serve(error) => json!({
                "ok": false,
                "error": { "kind": "serve", "message": error.to_string() },
            }),
            Self::Runtime(error) => {
                let mut body = json!({
                    "ok": false,
                    "error": {
                        "kind": error.kind(),
                        "message": error.to_string(),
                        "help": miette::Diagnostic::help(error).map(|h| h.to_string()),
                    },
                });
                if let Some(crash) = error.crash() {
                    body["error"]["detail"] = json!(crash.detail);
                    body["error"]["wasm_backtrace"] = json!(crash.wasm_backtrace);
                    match crash.kind {
                        CrashKind::DeadlineExceeded { during } => body["error"]["during"] = json!(during.as_str()),
                        CrashKind::Exited { status } => body["exit_code"] = json!(status),
                        _ => {}
                    }
                    body["report"] = report_json(&crash.report);
                }
                body
            }
        }
    }

    pub(crate) fn print(self) {
        match self {
            Self::Usage(message) => crate::print::stderr_text(&format!("error: {message}\n")),
            Self::Serve(error) => crate::report_error(error),
            Self::Runtime(error) => {
                let report = error.crash().map(|crash| crash.report.clone());
                // What a crashed guest captured is shown here too, not only with --json.
                if let Some(report) = &report {
                    crate::print::stderr_text(&captured_output(report));
                }
                crate::report_error(error);
                if let Some(report) = report {
                    crate::print::stderr_text(&format!("{}\n", report_line(&report)));
                }
            }
        }
    }
}

/// The policy the runtime enforces at load: the host's, where directories
/// typed on the command line may lie anywhere (the person typing them is the
/// host; a manifest's own were checked against `policy` when it was parsed).
pub(crate) fn runtime_policy(policy: &HostPolicy, flags: &GrantFlags) -> Result<HostPolicy, Failure> {
    if !flags.grants_dirs() || policy.grants().absolute_dirs {
        return Ok(policy.clone());
    }
    let mut grants = *policy.grants();
    grants.absolute_dirs = true;
    policy.to_builder().grants(grants).build().map_err(|error| Failure::Usage(error.to_string()))
}

/// `load` with the runtime `build` makes for `policy`, and for a WASI 0.3
/// component that policy does not run, again with component-model async on:
/// the CLI runs one component per process, so it costs no other component
/// anything.
pub(crate) fn load_turning_on_async<C>(
    policy: HostPolicy,
    build: impl Fn(HostPolicy) -> Result<Runtime, Failure>,
    load: impl Fn(&Runtime) -> Result<C, RuntimeError>,
) -> Result<(Runtime, C), Failure> {
    let runtime = build(policy.clone())?;
    match load(&runtime) {
        Err(RuntimeError::Load(runtime::LoadError::NeedsComponentModelAsync)) => {
            let policy =
                policy.to_builder().component_model_async(true).build().map_err(|e| Failure::Usage(e.to_string()))?;
            let runtime = build(policy)?;
            let loaded = load(&runtime)?;
            Ok((runtime, loaded))
        }
        loaded => Ok((runtime, loaded?)),
    }
}

fn execute(args: &RunArgs) -> Result<ExitCode, Failure> {
    let policy = crate::load_policy(args.policy.as_deref())?;
    let (mut manifest, grants_dir) = manifest(&args.limits, &policy)?;
    let path = component_path(args.component.as_deref(), &args.limits, &manifest, &grants_dir)?;
    let command = args.invoke.is_empty();
    if !command && !args.args.is_empty() {
        return Err(Failure::Usage(
            "arguments after `--` are for a command; with --invoke, pass values in the call instead".into(),
        ));
    }
    // A command inherits stdio unless --stdio or its manifest's `[wasi] stdio` says otherwise.
    let inherit = command && !manifest_sets_stdio(&args.limits);
    args.grants.apply(&mut manifest.wasi, &args.args, inherit, &policy).map_err(Failure::Usage)?;
    let build = |policy: HostPolicy| -> Result<Runtime, Failure> {
        let mut builder = crate::runtime_builder()
            // One process, one instance: a pool of slots it never reuses
            // costs milliseconds to reserve.
            .allocation(Allocation::OnDemand)
            .policy(policy);
        if let Some(dir) = &args.cache_dir {
            // One run needs no shared cache: an unusable one costs a compile
            // (into a private temporary directory), never the run.
            match runtime::cli_support::check_cache_dir(dir) {
                Ok(()) => builder = builder.disk_cache(dir),
                Err(error) => {
                    let fix = match &error {
                        runtime::LoadError::CacheDir { fix, .. } => format!(" ({fix})"),
                        _ => String::new(),
                    };
                    tracing::warn!("{error}{fix}; compiling into a private temporary cache instead");
                }
            }
        }
        Ok(builder.build()?)
    };
    let policy = runtime_policy(&policy, &args.grants)?;
    let (_runtime, component) =
        load_turning_on_async(policy, build, |runtime| runtime.load_file(&path, &manifest, &grants_dir))?;
    let component = component.with_stdout_to_stderr(args.json);
    // Calls go through the async executor, as an embedder's would.
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::Internal { message: format!("cannot start tokio: {e}") })?;
    let outcome = if command {
        run_command(&executor, &component, args.json)
    } else {
        run_invocations(&executor, &component, &args.invoke, args.json)
    };
    // A call abandoned at its deadline may leave a blocking write behind
    // (a stalled stdout): the command does not wait for it.
    executor.shutdown_background();
    outcome
}

/// Runs `wasi:cli/run`; the guest's exit status becomes the process's.
fn run_command(
    executor: &tokio::runtime::Runtime,
    component: &LoadedComponent,
    as_json: bool,
) -> Result<ExitCode, Failure> {
    let Some(export) = component.command_export() else {
        let names = component.export_names();
        let exports = if names.is_empty() { "it exports no functions".to_owned() } else { names.join(", ") };
        return Err(Failure::Usage(format!(
            "the component is not a command: it does not export `wasi:cli/run`; call one of its exports with --invoke instead (exports: {exports})"
        )));
    };
    let outcome = executor.block_on(component.call_async(&export, &[]));
    settle_output();
    let (status, report) = match outcome {
        // `run` returns `result`: ok is exit status 0, err is 1.
        Ok(outcome) => (i32::from(matches!(outcome.results.first(), Some(Val::Result(Err(_))))), outcome.report),
        Err(RuntimeError::Crash(crash)) => match crash.kind {
            CrashKind::Exited { status } => (status, crash.report),
            _ => return Err(RuntimeError::Crash(crash).into()),
        },
        Err(error) => return Err(error.into()),
    };
    if as_json {
        print_json(&json!({ "ok": status == 0, "exit_code": status, "report": report_json(&report) }));
    } else {
        crate::print::stderr_text(&captured_output(&report));
    }
    // Statuses past 255 wrap as a POSIX shell would see them.
    Ok(ExitCode::from((status & 0xff) as u8))
}

/// Runs each `--invoke` in order on one instance.
fn run_invocations(
    executor: &tokio::runtime::Runtime,
    component: &LoadedComponent,
    invocations: &[String],
    as_json: bool,
) -> Result<ExitCode, Failure> {
    // Parse and type-check what can be checked before any guest code runs.
    let mut parsed = Vec::with_capacity(invocations.len());
    for text in invocations {
        let call = Invocation::parse(text).map_err(Failure::Usage)?;
        let signature = component.signature(call.export).map_err(|error| match error {
            RuntimeError::NoSuchExport { name, available } => {
                let hint = crate::invoke::name_hint(&name, component);
                let message = format!("no exported function `{name}`; {available}");
                let span = 0..call.export.len();
                let mut text = crate::invoke::caret(call.text, span, &message);
                if !hint.is_empty() {
                    text.push_str(&format!("\n  help: {hint}"));
                }
                Failure::Usage(text)
            }
            other => other.into(),
        })?;
        parsed.push((call, signature));
    }
    // One call runs in a fresh instance under one deadline, instantiation
    // included; several share one live instance, each with its own deadline.
    let mut instance = match parsed.len() {
        1 => None,
        _ => Some(executor.block_on(component.instantiate_async(()))?),
    };
    let mut earlier: Vec<Vec<Val>> = Vec::new();
    let mut calls = Vec::new();
    for (call, signature) in &parsed {
        let params = call.values(signature, &earlier).map_err(Failure::Usage)?;
        let outcome = match &mut instance {
            Some(instance) => executor.block_on(instance.call_async(call.export, &params)),
            None => executor.block_on(component.call_async(call.export, &params)),
        };
        settle_output();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) if as_json => {
                let failure = Failure::Runtime(error);
                let mut body = failure.to_json();
                body["calls"] = json!(calls);
                body["failed_invoke"] = json!(call.text);
                if let Some(instance) = &instance {
                    body["instantiation"] = report_json(instance.instantiation_report());
                }
                print_json(&body);
                return Ok(ExitCode::from(failure.exit_code()));
            }
            Err(error) => return Err(error.into()),
        };
        let results = crate::print::results_text(&outcome.results);
        if as_json {
            let value = crate::print::results_json(&outcome.results);
            calls.push(json!({ "invoke": call.text, "result": results, "value": value, "report": report_json(&outcome.report) }));
        } else {
            crate::print::stdout_line(&results);
            crate::print::stderr_text(&captured_output(&outcome.report));
            crate::print::stderr_text(&format!("{}\n", report_line(&outcome.report)));
        }
        earlier.push(outcome.results);
    }
    if as_json {
        // One shape for any number of calls (docs/run-output.schema.json);
        // calls on one live instance say what its instantiation cost.
        let mut body = json!({ "ok": true, "calls": calls });
        if let Some(instance) = &instance {
            body["instantiation"] = report_json(instance.instantiation_report());
        }
        print_json(&body);
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest (from its file or from the limit flags) and the directory its
/// relative paths are relative to.
pub(crate) fn manifest(args: &LimitSource, policy: &HostPolicy) -> Result<(ComponentManifest, PathBuf), Failure> {
    let flags = [("--memory", &args.memory), ("--fuel", &args.fuel), ("--timeout", &args.timeout)];
    let given: Vec<&str> = flags.iter().filter(|(_, v)| v.is_some()).map(|(name, _)| *name).collect();
    match (&args.manifest, &args.memory, &args.fuel, &args.timeout) {
        (Some(_), ..) if !given.is_empty() => Err(Failure::Usage(format!(
            "--manifest and {} are alternatives: limits come from the manifest or from all three of --memory, --fuel and --timeout",
            given.join(", ")
        ))),
        (Some(path), ..) => {
            let manifest = ComponentManifest::from_path_with_policy(path, policy).map_err(RuntimeError::from)?;
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            };
            Ok((manifest, dir))
        }
        (None, Some(memory), Some(fuel), Some(timeout)) => {
            let flags = crate::limit_flags::LimitFlags { memory, fuel, timeout };
            let manifest = flags.manifest(policy).map_err(|error| match flags.explain(&error) {
                Some(said) => Failure::Usage(said),
                None => RuntimeError::from(error).into(),
            })?;
            Ok((manifest, PathBuf::from(".")))
        }
        _ if given.is_empty() => Err(Failure::Usage(
            "no limits given: pass --manifest FILE, or all three of --memory, --fuel and --timeout (e.g. --memory 1MiB --fuel 1000000 --timeout 1s)".into(),
        )),
        _ => {
            let missing: Vec<&str> = flags.iter().filter(|(_, v)| v.is_none()).map(|(name, _)| *name).collect();
            Err(Failure::Usage(format!(
                "missing {}: limits come from --manifest FILE, or from all three of --memory, --fuel and --timeout",
                missing.join(" and ")
            )))
        }
    }
}

/// Whether the manifest the limits come from names `[wasi] stdio` itself
/// (it was read and validated already; this only looks for the key).
fn manifest_sets_stdio(limits: &LimitSource) -> bool {
    let Some(path) = &limits.manifest else { return false };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let table: toml::Table = toml::from_str(&text).unwrap_or_default();
    table.get("wasi").and_then(toml::Value::as_table).is_some_and(|wasi| wasi.contains_key("stdio"))
}

/// The component file: the one named on the command line, or the manifest's `wasm`.
pub(crate) fn component_path(
    component: Option<&Path>,
    limits: &LimitSource,
    manifest: &ComponentManifest,
    manifest_dir: &Path,
) -> Result<PathBuf, Failure> {
    if let Some(path) = component {
        return Ok(path.to_owned());
    }
    match (&limits.manifest, &manifest.component.wasm) {
        (Some(_), Some(wasm)) => Ok(wasm.resolve(manifest_dir)),
        (Some(path), None) => Err(Failure::Usage(format!(
            "no component given: name it on the command line, or add `wasm = \"component.wasm\"` to [component] in {}",
            path.display()
        ))),
        (None, _) => Err(Failure::Usage("no component given: wasm-runtime run COMPONENT.wasm ...".into())),
    }
}

/// Lets the guest's inherited output reach the terminal before the CLI
/// prints its own lines; past a second of a stalled reader they may interleave.
fn settle_output() {
    runtime::wasi::flush_inherited_output(std::time::Instant::now() + std::time::Duration::from_secs(1));
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
        "queue_wait_us": report.queue_wait.as_micros(),
        "host_calls": report.host_calls,
        "host_us": report.host_time.as_micros(),
        "stdout": report.stdout,
        "stderr": report.stderr,
        "disk": report.disk.iter().map(|disk| json!({
            "guest_path": disk.guest_path,
            "bytes": disk.bytes,
            "max_bytes": disk.max_bytes,
            "entries": disk.entries,
            "max_entries": disk.max_entries,
            "refused": disk.refused,
        })).collect::<Vec<_>>(),
    })
}

/// The guest's captured output, labelled, for the human-readable mode. Text
/// cut at the capture cap says so and ends its line.
fn captured_output(report: &CallReport) -> String {
    [("stdout", &report.stdout), ("stderr", &report.stderr)]
        .into_iter()
        .filter_map(|(name, text)| {
            let text = text.as_deref().filter(|t| !t.is_empty())?;
            let mut block = format!("--- guest {name} ---\n{text}");
            if text.len() >= runtime::wasi::MAX_CAPTURED_OUTPUT_BYTES {
                block.push_str(&format!(
                    "\n--- guest {name} cut at {} bytes: the guest's later writes failed ---",
                    runtime::wasi::MAX_CAPTURED_OUTPUT_BYTES
                ));
            }
            if !block.ends_with('\n') {
                block.push('\n');
            }
            Some(block)
        })
        .collect()
}

fn report_line(report: &CallReport) -> String {
    let disk: String = report
        .disk
        .iter()
        .map(|disk| {
            let refused = match disk.refused {
                0 => String::new(),
                n => format!(", {n} refused at the quota"),
            };
            format!(
                ", disk {} {}/{} bytes {}/{} entries{refused}",
                disk.guest_path, disk.bytes, disk.max_bytes, disk.entries, disk.max_entries
            )
        })
        .collect();
    format!(
        "fuel {}/{}, peak memory {}/{} bytes, {:.3} ms (instantiate {:.3} ms), host calls {}{disk}",
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
