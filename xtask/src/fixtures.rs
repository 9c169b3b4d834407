//! `cargo xtask fixtures`: rebuilds the Rust guest fixtures from source where
//! the `wasm32-wasip2` target is installed. Tests never need this: the built
//! `.wasm` files are committed beside their source.

use std::path::Path;
use std::process::Command;

/// Each guest: its source directory under `fixtures/guests`, and the built file.
const GUESTS: &[(&str, &str)] = &[("rust-guest", "rust_guest.wasm")];

/// Builds every guest and copies it to `fixtures/guests/<name>.wasm`.
pub(crate) fn rebuild() -> Result<(), String> {
    let guests = crate::workspace_root().join("fixtures/guests");
    for (name, artifact) in GUESTS {
        let dir = guests.join(name);
        eprintln!("building {}", dir.display());
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("building {name} failed; is the target installed? (rustup target add wasm32-wasip2)"));
        }
        let built = dir.join("target/wasm32-wasip2/release").join(artifact);
        let committed = guests.join(format!("{name}.wasm"));
        copy(&built, &committed)?;
        eprintln!("wrote {}", committed.display());
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to).map(drop).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}
