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

/// One `run --json` output, parsed and validated against the published
/// schema (docs/run-output.schema.json): every such output the tests read
/// goes through here.
fn run_json(stdout: &[u8]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    static SCHEMA: std::sync::OnceLock<Result<jsonschema::Validator, String>> = std::sync::OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let text = include_str!("../../../../docs/run-output.schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        jsonschema::validator_for(&schema).map_err(|e| e.to_string())
    });
    let validator = validator.as_ref().map_err(|e| format!("the schema does not compile: {e}"))?;
    let body: serde_json::Value = serde_json::from_slice(stdout)?;
    let problems: Vec<String> = validator.iter_errors(&body).map(|e| format!("{e} at {}", e.instance_path)).collect();
    if !problems.is_empty() {
        return Err(format!("not as docs/run-output.schema.json says: {problems:?}\n{body}").into());
    }
    Ok(body)
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
