//! Integration tests of the facade: real components end to end.

mod admission;
mod boundary;
mod declared;
mod embedder;
mod grants;
mod p3;
// `readme` sets the process's directory to the repository's root, as a
// reader's is: every other test names its paths absolutely.
mod readme;
mod readme_actor;
mod readme_blocks;
mod rust_guest;
mod wasi;

use std::path::PathBuf;
use std::sync::OnceLock;

use runtime::{ComponentManifest, LoadedComponent, Runtime, RuntimeError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One runtime for the binary: engines are costly to create.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| Runtime::builder().build().unwrap_or_else(|error| panic!("cannot build the runtime: {error}")))
}

fn tokio() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// The committed build of `fixtures/guests/rust-guest`.
fn rust_guest_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-guest.wasm")
}

fn manifest(resources: &str, wasi: &str) -> Result<ComponentManifest, RuntimeError> {
    Ok(format!("[component]\nname = \"rust-guest\"\nversion = \"0.1.0\"\n[resources]\n{resources}\n{wasi}").parse()?)
}

fn rust_guest(resources: &str, wasi: &str) -> Result<LoadedComponent, RuntimeError> {
    runtime().load_file(rust_guest_path(), &manifest(resources, wasi)?, ".")
}

const FOUR_MIB: &str = "memory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"10s\"";
