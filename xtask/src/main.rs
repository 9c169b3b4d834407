//! `cargo xtask`: the project's own commands.
//!
//! - `adversarial [--quick] [--seed N]`: the attack suite, the README's main job.
//! - `fixtures`: rebuilds the Rust guest fixtures from source.
//! - `wasi-testsuite [--suite DIR]`: the wasi-testsuite's wasip1 tests through the CLI.
//! - `tidy`: checks the crate dependency rules of ARCHITECTURE.md and that
//!   every README command builds wasmtime with one feature set.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod fixtures;
mod tidy;
mod wasi_testsuite;
mod wasi_testsuite_runner;

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "Project automation: the attack suite and repository checks")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every attack against the runtime and report how each was stopped.
    Adversarial(attacks::Options),
    /// Measure the key operations through the runtime and through bare wasmtime, and print the ratios.
    Bench(benches::harness::Options),
    /// Rebuild the Rust guest fixtures (needs `rustup target add wasm32-wasip2`).
    Fixtures,
    /// Write the man page of `wasm-runtime` to target/man/wasm-runtime.1 (view it with `man -l`).
    Man,
    /// Check that crate dependencies point one way (manifest <- limits <- loader <- core <- wasi <- runtime)
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
        Some(Command::Adversarial(options)) => attacks::run(&options),
        Some(Command::Tidy) => tidy::check().map(|()| true),
        Some(Command::Fixtures) => fixtures::rebuild().map(|()| true),
        Some(Command::Man) => man().map(|()| true),
        Some(Command::Bench(options)) => benches::harness::run(&options),
        Some(Command::WasiTestsuite(options)) => wasi_testsuite::run(&options),
        Some(Command::AdversarialWorker { name }) => attacks::worker(&name),
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

use attacks::support::{cli_binary, target_dir, workspace_root};

/// `cargo xtask man`: the CLI renders its own page (clap_mangen, from the
/// same definitions as `--help`); this writes it where `man -l` reads it.
fn man() -> Result<(), String> {
    let output = std::process::Command::new(cli_binary()?)
        .arg("__man")
        .output()
        .map_err(|e| format!("cannot run wasm-runtime __man: {e}"))?;
    if !output.status.success() {
        return Err(format!("wasm-runtime __man failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    let dir = target_dir().join("man");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let page = dir.join("wasm-runtime.1");
    std::fs::write(&page, &output.stdout).map_err(|e| format!("cannot write {}: {e}", page.display()))?;
    eprintln!("wrote {} (man -l {})", page.display(), page.display());
    Ok(())
}
