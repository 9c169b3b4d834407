//! Embedding the runtime: load a component with its manifest, call it on
//! Tokio, read the report, and handle a crash.
//!
//! Run it from the workspace root: `cargo run -p runtime --example embed`.
#![allow(clippy::print_stdout, reason = "an example shows its results on stdout")]

use std::path::Path;

use runtime::{ComponentManifest, CrashKind, Runtime, RuntimeError, Val};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let runtime = Runtime::builder().build()?;

    // The manifest is validated against the host policy; `wasm` points at the component.
    let hello = runtime.load_async(root.join("examples/hello/Component.toml")).await?;
    let outcome = hello.call_async("hello", &[]).await?;
    println!("hello() = {:?}", outcome.results);
    println!(
        "used {} fuel, {} bytes of memory at peak, {:?} in all",
        outcome.report.fuel_consumed, outcome.report.peak_memory_bytes, outcome.report.wall
    );

    // The same Rust guest under a budget too small for what it is asked to do.
    let manifest: ComponentManifest =
        "[component]\nname = \"guest\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\nfuel = 100_000_000\ntimeout = \"1s\"\n"
            .parse()?;
    let guest = runtime.load_file(root.join("fixtures/guests/rust-guest.wasm"), &manifest, ".")?;
    match guest.call_async("allocate", &[Val::U64(64 << 20)]).await {
        Ok(outcome) => println!("allocated: {:?}", outcome.results),
        Err(RuntimeError::Crash(crash)) if crash.kind == CrashKind::MemoryLimitExceeded => {
            println!("stopped: {} ({})", crash.kind, crash.kind.help());
            println!("peak memory {} of {} bytes", crash.report.peak_memory_bytes, crash.report.memory_limit_bytes);
        }
        Err(other) => return Err(other.into()),
    }
    Ok(())
}
