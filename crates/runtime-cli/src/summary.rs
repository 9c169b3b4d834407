//! One-line summaries of what a manifest grants.

use runtime::{ComponentManifest, HostPolicy};

/// `hello 0.1.0: memory 1MiB, fuel 50000000, timeout 100ms, table-elements 10000, instances 10`,
/// with defaults filled in from the policy so the line shows what is in force.
pub(crate) fn effective_limits(manifest: &ComponentManifest, policy: &HostPolicy) -> String {
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
