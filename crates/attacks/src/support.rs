//! What the suite needs of the workspace: where it is, the CLI binary it
//! attacks, and manifests made of values.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root: this crate lives two directories below it.
pub fn workspace_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().and_then(Path::parent).unwrap_or(crate_dir).to_path_buf()
}

/// The cargo target directory, honouring `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), Into::into)
}

/// The `wasm-runtime` binary, built once per suite run.
pub fn cli_binary() -> Result<&'static Path, String> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY.get_or_init(|| build_cli(false)).as_deref().map_err(Clone::clone)
}

/// Builds `wasm-runtime` (optimized with `release`) and returns its path.
pub fn build_cli(release: bool) -> Result<PathBuf, String> {
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
pub fn limits_manifest(memory: &str, fuel: &str, timeout: &str) -> Result<runtime::ComponentManifest, String> {
    let memory: runtime::ByteSize = memory.parse().map_err(|e| format!("memory {memory}: {e}"))?;
    let units: u64 = fuel.replace('_', "").parse().map_err(|e| format!("fuel {fuel}: {e}"))?;
    let fuel = runtime::Fuel::new(units).ok_or_else(|| format!("fuel {fuel} is too large"))?;
    let timeout: runtime::Timeout = timeout.parse().map_err(|e| format!("timeout {timeout}: {e}"))?;
    let name = "xtask".parse().map_err(|e: &str| e.to_owned())?;
    // The suite's guests may call the reference host functions: their own bounds are under attack too.
    let wasi = runtime::manifest::WasiConfig::default().with_host_functions(runtime::manifest::HostInterface::ALL);
    Ok(runtime::ComponentManifest::from_resources(name, runtime::Resources::new(memory, fuel, timeout)).with_wasi(wasi))
}

/// Whether the CLI's stderr shows a panic of the host itself: a
/// `panicked at` outside the guest's own output, which the CLI shows of a
/// crashed guest between a `--- guest stdout/stderr ---` line and its
/// diagnostic (whose first line is its `runtime::` code).
pub fn host_panicked(stderr: &str) -> bool {
    let mut in_guest = false;
    for line in stderr.lines() {
        if line.starts_with("--- guest stdout ---") || line.starts_with("--- guest stderr ---") {
            in_guest = true;
        } else if line.starts_with("runtime::") {
            in_guest = false;
        } else if !in_guest && line.contains("panicked") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_guest_s_panic_in_its_shown_output_is_not_the_host_s() {
        let guest =
            "--- guest stderr ---\nthread '<unnamed>' panicked at src/main.rs:1:1:\nruntime::crash::unreachable\n";
        assert!(!super::host_panicked(guest));
        let host = "thread 'main' panicked at crates/runtime/src/lib.rs:1:1:\n";
        assert!(super::host_panicked(host));
        assert!(super::host_panicked(&format!("{guest}{host}")), "after the guest's block, it is the host's");
    }
}
