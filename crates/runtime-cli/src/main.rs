//! `wasm-runtime`: check, run, inspect and serve WebAssembly components.
//!
//! Exit codes are part of the contract scripts rely on: 0 ok, 1 usage or
//! manifest error, 2 load error, 3 guest crash.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod compile;
mod grants;
mod inspect;
mod invoke;
mod limit_flags;
mod print;
mod run;
mod serve;

/// Exit code for a usage error or an invalid manifest.
const EXIT_INVALID: u8 = 1;
/// Exit code for a component that cannot be loaded.
const EXIT_LOAD: u8 = 2;
/// Exit code for a guest crash.
const EXIT_CRASH: u8 = 3;

/// `--version`: the runtime's version and the wasmtime it is built on.
static VERSION: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{} (wasmtime {})", env!("CARGO_PKG_VERSION"), wasmtime_environ::VERSION));

#[derive(Debug, Parser)]
#[command(name = "wasm-runtime", version = VERSION.as_str(), about = "Run WebAssembly components under enforced limits")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// What a guest logs through `wasm-runtime:host/log` (and the runtime's
    /// own warnings) is printed on stderr from this level up: trace, debug,
    /// info, warn, error or off. `RUST_LOG` (`target=level,...`) overrides it.
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info",
          value_parser = ["trace", "debug", "info", "warn", "error", "off"])]
    log_level: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a Component.toml: exit 0 and print the effective limits, or
    /// exit 1 and explain every problem.
    #[command(after_help = "Example:\n  wasm-runtime check examples/hello/Component.toml")]
    Check {
        /// The manifest to validate.
        manifest: Option<PathBuf>,
        /// The host policy file to validate against; `check --policy FILE`
        /// alone shows the effective policy.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Call an export of a component under the limits of a manifest or of flags.
    #[command(after_help = "Examples:\n  \
        wasm-runtime run hello.wasm --manifest Component.toml --invoke 'greet(\"x\")'\n  \
        wasm-runtime run examples/loop/loop.wat --memory 1MiB --fuel 1000000 --timeout 100ms --invoke 'spin()' --json\n\n\
        Exit codes: 0 ok, 1 usage or manifest error, 2 load error, 3 guest crash.")]
    Run(Box<run::RunArgs>),
    /// Show a component's size, functions and initial memory beside the
    /// policy, its exported functions as `--invoke` takes them, its imports
    /// and exports as WIT, and whether it is in the compile cache.
    #[command(after_help = "Example:\n  wasm-runtime inspect fixtures/guests/rust-guest.wasm")]
    Inspect(inspect::InspectArgs),
    /// Serve a `wasi:http/proxy` component over HTTP/1.1: one fresh
    /// instance per request under the manifest's limits.
    #[command(after_help = "Example:\n  \
        wasm-runtime serve fixtures/guests/rust-http.wasm --memory 4MiB --fuel 100000000 --timeout 1s --addr 127.0.0.1:8080\n  \
        curl http://127.0.0.1:8080/hello\n\n\
        A failed guest is 500 with `x-wasm-runtime-kind: KIND`; overload is 503 with `retry-after`;\n\
        a declared body over --max-request-body is 413. SIGTERM or SIGINT drains and exits 0.\n\
        Exit codes: 0 stopped by a signal, 1 usage or manifest error, 2 load error (not a proxy component).")]
    Serve(Box<serve::ServeArgs>),
    /// Compile a component ahead of time into a cache directory that `run`
    /// and `serve` with the same `--cache-dir` and policy load without
    /// compiling.
    #[command(after_help = "Example:\n  \
        wasm-runtime compile fixtures/guests/rust-http.wasm --cache-dir /var/cache/wasm-runtime\n\n\
        Exit codes: 0 compiled (or already cached), 1 usage or policy error, 2 load error.")]
    Compile(compile::CompileArgs),
    /// Print a completion script for SHELL on stdout.
    #[command(after_help = "Example:\n  \
        wasm-runtime completions bash > ~/.local/share/bash-completion/completions/wasm-runtime")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Internal: the man page (roff) on stdout, for `cargo xtask man`.
    #[command(name = "__man", hide = true)]
    Man,
    /// Internal: compiles one component into a cache directory under the
    /// policy's compile limits, for a parent `wasm-runtime` process.
    /// Its arguments are the loader's to write and read.
    #[command(name = "__compile-worker", hide = true)]
    CompileWorker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are not errors; everything else is a usage error (1).
            let code = if error.use_stderr() { EXIT_INVALID } else { 0 };
            let _ = without_hidden_suggestions(error).print();
            return ExitCode::from(code);
        }
    };
    // Kept to the end: dropping it flushes the log lines still queued.
    let _logging = init_logging(&cli.log_level);
    init_diagnostics();
    // One guest at a time here: the soft limit can only be too low.
    runtime::cli_support::raise_descriptor_limit();
    match cli.command {
        Command::Check { manifest, policy } => check::check(manifest.as_deref(), policy.as_deref()),
        Command::Run(args) => run::run(&args),
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Serve(args) => serve::serve(&args),
        Command::Compile(args) => compile::compile(&args),
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "wasm-runtime", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory as _;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("cannot write the man page: {error}");
                    ExitCode::from(EXIT_INVALID)
                }
            }
        }
        Command::CompileWorker { args } => ExitCode::from(runtime::cli_support::compile_worker_main(&args)),
    }
}

/// A mistyped subcommand's error, suggesting only visible subcommands:
/// clap also suggests hidden ones (`__compile-worker` for `compil`).
fn without_hidden_suggestions(error: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::Strings(suggested)) = error.get(ContextKind::SuggestedSubcommand) else { return error };
    if !suggested.iter().any(|name| name.starts_with("__")) {
        return error;
    }
    let visible: Vec<String> = suggested.iter().filter(|name| !name.starts_with("__")).cloned().collect();
    let mut mended = clap::Error::new(error.kind()).with_cmd(&<Cli as clap::CommandFactory>::command());
    for (kind, value) in error.context() {
        let value = match kind {
            ContextKind::SuggestedSubcommand => ContextValue::Strings(visible.clone()),
            _ => value.clone(),
        };
        if kind != ContextKind::SuggestedSubcommand || !visible.is_empty() {
            mended.insert(kind, value);
        }
    }
    mended
}

/// Prints guest log records (target `guest`) from `level` up and the
/// runtime's warnings on stderr; `RUST_LOG` takes precedence when set.
/// Lines go through a bounded queue written by a thread of its own: when
/// stderr stalls (a log collector that stops reading), lines past the
/// queue's bound are dropped and no caller ever blocks.
fn init_logging(level: &str) -> tracing_appender::non_blocking::WorkerGuard {
    use tracing_subscriber::filter::Targets;
    let filter = match std::env::var("RUST_LOG") {
        Ok(text) if !text.is_empty() => text.parse::<Targets>(),
        // The server's one line per request shows at the default level.
        _ => format!("warn,guest={level},wasm_runtime::serve={level}").parse::<Targets>(),
    };
    // A malformed RUST_LOG falls back to warnings only rather than failing the command.
    let filter = filter.unwrap_or_else(|_| Targets::new().with_default(tracing_subscriber::filter::LevelFilter::WARN));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(MAX_QUEUED_LOG_LINES)
        .lossy(true)
        .thread_name("wasm-runtime-log")
        .finish(std::io::stderr());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .without_time()
        .with_ansi(false)
        // A closed stderr must not turn into a panic (the default reports write errors with eprintln!).
        .log_internal_errors(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::layer::SubscriberExt::with(subscriber, filter));
    guard
}

/// Log lines queued for a stalled stderr before new ones are dropped.
const MAX_QUEUED_LOG_LINES: usize = 4096;

/// Wraps diagnostics to the width of a terminal only: piped into a log, a
/// message stays on one line so that `grep` finds it whole. Colours (and
/// the Unicode frame) go to a terminal whose user did not set `NO_COLOR`.
fn init_diagnostics() {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let color = use_color(terminal, std::env::var_os("NO_COLOR").as_deref());
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(terminal).color(color).unicode(color).build())
    }));
}

/// Whether diagnostics are coloured: on a terminal, unless `NO_COLOR` is
/// set to anything but the empty string (no-color.org).
fn use_color(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// A runtime builder whose cache misses compile in a child `wasm-runtime`
/// (this binary's `__compile-worker`), bounded by the policy's compile
/// limits; `WASM_RUNTIME_COMPILE_IN_PROCESS=1` compiles in this process.
fn runtime_builder() -> runtime::RuntimeBuilder {
    let builder = runtime::Runtime::builder();
    if std::env::var_os("WASM_RUNTIME_COMPILE_IN_PROCESS").is_some_and(|v| v == "1") {
        return builder;
    }
    match std::env::current_exe() {
        Ok(program) => builder.compile_worker(runtime::CompileWorker::new(program, ["__compile-worker"])),
        // Without a path to itself the CLI compiles in process.
        Err(_) => builder,
    }
}

/// The host policy: the file's, or the default one.
fn load_policy(path: Option<&std::path::Path>) -> Result<runtime::HostPolicy, runtime::RuntimeError> {
    match path {
        Some(path) => Ok(runtime::HostPolicy::from_path(path)?),
        None => Ok(runtime::HostPolicy::default()),
    }
}

/// Prints a diagnostic to stderr with miette's graphical renderer.
fn report_error(error: impl miette::Diagnostic + Send + Sync + 'static) {
    let report = format!("{:?}\n", miette::Report::new(error));
    crate::print::stderr_text(&escape_keeping_colour(&report));
}

/// [`escape_for_terminal`](runtime::manifest::escape_for_terminal), except
/// for colour sequences (SGR: `ESC [ digits ; ... m`), which a coloured
/// report is made of and which can only change colours: every other
/// control (cursor moves, titles, links, clears) is shown escaped, whoever
/// wrote it.
fn escape_keeping_colour(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        out.push_str(&runtime::manifest::escape_for_terminal(&rest[..at]));
        let sequence = &rest[at..];
        let parameters = sequence.strip_prefix("\u{1b}[").map(|tail| {
            tail.find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .map_or((tail, None), |end| (&tail[..end], tail[end..].chars().next()))
        });
        match parameters {
            Some((digits, Some('m'))) => {
                let length = 2 + digits.len() + 1;
                out.push_str(&sequence[..length]);
                rest = &sequence[length..];
            }
            _ => {
                out.push_str(&runtime::manifest::escape_for_terminal("\u{1b}"));
                rest = &sequence[1..];
            }
        }
    }
    out.push_str(&runtime::manifest::escape_for_terminal(rest));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn colour_goes_to_a_terminal_unless_no_color_says_otherwise() {
        use std::ffi::OsStr;
        assert!(super::use_color(true, None));
        assert!(super::use_color(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!super::use_color(true, Some(OsStr::new("1"))));
        assert!(!super::use_color(false, None), "never into a pipe or a file");
    }

    #[test]
    fn a_report_keeps_its_colours_and_nothing_else_a_terminal_obeys() {
        let coloured = "\u{1b}[31mred\u{1b}[0m and \u{1b}[1;4mbold\u{1b}[m";
        assert_eq!(super::escape_keeping_colour(coloured), coloured);
        // A guest's cursor move, clear, title and bidi override are shown, not obeyed.
        let hostile = "a\u{1b}[2Jb\u{1b}]0;title\u{7}c\u{1b}[10;10Hd\u{202e}e\u{1b}";
        assert_eq!(
            super::escape_keeping_colour(hostile),
            "a\\u{001b}[2Jb\\u{001b}]0;title\\u{0007}c\\u{001b}[10;10Hd\\u{202e}e\\u{001b}"
        );
    }
}
