//! `wasm-runtime`: check, run and inspect WebAssembly components.
//!
//! Exit codes are part of the contract scripts rely on: 0 ok, 1 usage or
//! manifest error (2 load error and 3 guest crash arrive with `run`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use runtime::{ComponentManifest, HostPolicy};

mod summary;

/// Exit code for a usage error or an invalid manifest.
const EXIT_INVALID: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "wasm-runtime",
    version,
    about = "Run WebAssembly components under enforced limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a Component.toml: exit 0 and print the effective limits, or
    /// exit 1 and explain every problem.
    #[command(after_help = "Example:\n  wasm-runtime check examples/hello/Component.toml")]
    Check {
        /// The manifest to validate.
        manifest: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are not errors; everything else is a usage error (1).
            let code = if error.use_stderr() { EXIT_INVALID } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check { manifest } => check(&manifest),
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let policy = HostPolicy::default();
    match ComponentManifest::from_path_with_policy(path, &policy) {
        Ok(manifest) => {
            let line = summary::effective_limits(&manifest, &policy);
            #[expect(
                clippy::print_stdout,
                reason = "the summary line is the command's output"
            )]
            {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{:?}", miette::Report::new(error));
            ExitCode::from(EXIT_INVALID)
        }
    }
}
