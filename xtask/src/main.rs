//! `cargo xtask`: the project's own commands.
//!
//! - `adversarial [--quick] [--seed N]`: the attack suite, the README's main job.
//! - `fixtures`: rebuilds the Rust guest fixtures from source.
//! - `wasi-testsuite [--suite DIR]`: the wasi-testsuite's wasip1 tests through the CLI.
//! - `tidy`: checks the crate dependency rules of ARCHITECTURE.md and that
//!   every README command builds wasmtime with one feature set.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod adversarial;
mod bench;
mod fixtures;
mod tidy;
mod wasi_testsuite;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation: the attack suite and repository checks")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every attack against the runtime and report how each was stopped.
    Adversarial(adversarial::Options),
    /// Measure the key operations through the runtime and through bare wasmtime, and print the ratios.
    Bench(bench::Options),
    /// Rebuild the Rust guest fixtures (needs `rustup target add wasm32-wasip2`).
    Fixtures,
    /// Check that crate dependencies point one way (manifest <- limits <- core <- async <- runtime)
    /// and that every README command builds wasmtime with one feature set.
    Tidy,
    /// Run the wasi-testsuite's wasm32-wasip1 tests through the CLI as commands (90% must pass).
    WasiTestsuite(wasi_testsuite::Options),
    /// The part of an attack that runs in a process of its own (started by `adversarial`).
    #[command(hide = true)]
    AdversarialWorker { name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Adversarial(options)) => adversarial::run(&options),
        Some(Command::Tidy) => tidy::check().map(|()| true),
        Some(Command::Fixtures) => fixtures::rebuild().map(|()| true),
        Some(Command::Bench(options)) => bench::run(&options),
        Some(Command::WasiTestsuite(options)) => wasi_testsuite::run(&options),
        Some(Command::AdversarialWorker { name }) => adversarial::worker(&name),
        None => {
            use clap::CommandFactory as _;
            let _ = Cli::command().print_help();
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("{:?}", miette::Report::msg(error));
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one directory below it.
fn workspace_root() -> std::path::PathBuf {
    let xtask_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// The cargo target directory, honouring `CARGO_TARGET_DIR`.
fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), Into::into)
}

/// The `wasm-runtime` binary, built once per suite run.
pub(crate) fn cli_binary() -> Result<&'static std::path::Path, String> {
    static BINARY: std::sync::OnceLock<Result<std::path::PathBuf, String>> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| build_cli(false)).as_deref().map_err(Clone::clone)
}

/// Builds `wasm-runtime` (optimized with `release`) and returns its path.
pub(crate) fn build_cli(release: bool) -> Result<std::path::PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--quiet", "-p", "runtime-cli"]);
    if release {
        command.arg("--release");
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build{} -p runtime-cli failed", if release { " --release" } else { "" }));
    }
    Ok(target_dir().join(if release { "release" } else { "debug" }).join("wasm-runtime"))
}

/// A manifest made of values (`"1MiB"`, `"1_000_000"`, `"100ms"`), as an
/// embedder would make one: no TOML text in between. The runtime checks it
/// against its policy when it loads a component.
pub(crate) fn limits_manifest(memory: &str, fuel: &str, timeout: &str) -> Result<runtime::ComponentManifest, String> {
    let memory: runtime::ByteSize = memory.parse().map_err(|e| format!("memory {memory}: {e}"))?;
    let units: u64 = fuel.replace('_', "").parse().map_err(|e| format!("fuel {fuel}: {e}"))?;
    let fuel = runtime::Fuel::new(units).ok_or_else(|| format!("fuel {fuel} is too large"))?;
    let timeout: runtime::Timeout = timeout.parse().map_err(|e| format!("timeout {timeout}: {e}"))?;
    let name = "xtask".parse().map_err(|e: &str| e.to_owned())?;
    // The suite's guests may call the reference host functions: their own bounds are under attack too.
    let wasi = runtime::manifest::WasiConfig::default().with_host_functions(runtime::manifest::HostInterface::ALL);
    Ok(runtime::ComponentManifest::from_resources(name, runtime::Resources::new(memory, fuel, timeout)).with_wasi(wasi))
}
