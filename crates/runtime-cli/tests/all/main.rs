//! Integration tests of the `wasm-runtime` binary: its CLI contract.

mod cache;
mod check;
mod command;
mod conventions;
mod inspect;
mod p3;
mod readme;
mod run;
mod serve;
mod toolchains;

use std::path::PathBuf;
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn wasm_runtime(args: &[&str]) -> Result<Output, std::io::Error> {
    Command::new(env!("CARGO_BIN_EXE_wasm-runtime")).args(args).env("NO_COLOR", "1").output()
}

/// Writes `text` to a scratch file named `name` and returns its path.
fn scratch(name: &str, text: &str) -> Result<PathBuf, std::io::Error> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{name}"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// A child process (a server), killed if a failed assertion leaves it running.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
