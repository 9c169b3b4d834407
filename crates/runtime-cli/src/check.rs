//! `wasm-runtime check`.

use std::path::Path;
use std::process::ExitCode;

use runtime::{ComponentManifest, HostPolicy};

/// Validates the manifest at `path`: the effective limits on stdout and exit
/// 0, or the diagnostics on stderr and exit 1.
pub(crate) fn check(path: &Path) -> ExitCode {
    let policy = HostPolicy::default();
    match ComponentManifest::from_path_with_policy(path, &policy) {
        Ok(manifest) => {
            let line = effective_limits(&manifest, &policy);
            crate::print::stdout_line(&line);
            ExitCode::SUCCESS
        }
        Err(error) => {
            crate::report_error(error);
            ExitCode::from(crate::EXIT_INVALID)
        }
    }
}

/// `ok: hello 0.1.0: memory 1MiB, fuel 50000000, timeout 100ms, table-elements 10000, instances 10`,
/// with defaults filled in from the policy so the line shows what is in force.
fn effective_limits(manifest: &ComponentManifest, policy: &HostPolicy) -> String {
    let component = &manifest.component;
    let resources = &manifest.resources;
    let mut line = format!(
        "ok: {} {}: memory {}, fuel {}, timeout {}, table-elements {}, instances {}",
        component.name,
        component.version,
        resources.memory,
        resources.fuel,
        resources.timeout,
        resources.effective_table_elements(policy),
        resources.effective_instances(policy),
    );
    if let Some(wasm) = &component.wasm {
        line.push_str(&format!(", wasm {wasm}"));
    }
    line
}
