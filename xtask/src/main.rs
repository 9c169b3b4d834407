//! `cargo xtask`: the project's own commands.
//!
//! - `adversarial [--quick] [--seed N]`: the attack suite, the README's main job.
//! - `fixtures`: rebuilds the Rust guest fixtures from source.
//! - `tidy`: checks the crate dependency rules of ARCHITECTURE.md.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod adversarial;
mod bench;
mod fixtures;
mod tidy;

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
    /// Check that crate dependencies point one way (manifest <- limits <- core <- async <- runtime).
    Tidy,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Adversarial(options)) => adversarial::run(&options),
        Some(Command::Tidy) => tidy::check().map(|()| true),
        Some(Command::Fixtures) => fixtures::rebuild().map(|()| true),
        Some(Command::Bench(options)) => bench::run(&options),
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
