//! `wasm-runtime check`: a manifest, a policy file, or both.

use std::path::Path;
use std::process::ExitCode;

use runtime::{ComponentManifest, HostPolicy};

/// Validates the manifest at `manifest` against the policy file at `policy`
/// (or the default policy): the effective limits and grants on stdout and
/// exit 0, or the diagnostics on stderr and exit 1. With only `--policy`, the
/// effective policy is printed.
pub(crate) fn check(manifest: Option<&Path>, policy: Option<&Path>) -> ExitCode {
    let policy_given = policy.is_some();
    let policy = match crate::load_policy(policy) {
        Ok(policy) => policy,
        Err(error) => {
            crate::report_error(error);
            return ExitCode::from(crate::EXIT_INVALID);
        }
    };
    if policy_given {
        crate::print::stdout_line(&format!("# effective host policy\n{}", policy.to_toml().trim_end()));
    }
    let Some(path) = manifest else {
        if policy_given {
            return ExitCode::SUCCESS;
        }
        crate::print::stderr_text(
            "error: nothing to check: give a manifest (check Component.toml), a policy (check --policy FILE), or both\n",
        );
        return ExitCode::from(crate::EXIT_INVALID);
    };
    match ComponentManifest::from_path_with_policy(path, &policy) {
        Ok(manifest) => {
            crate::print::stdout_line(&effective_limits(&manifest, &policy));
            ExitCode::SUCCESS
        }
        Err(error) => {
            crate::report_error(error);
            ExitCode::from(crate::EXIT_INVALID)
        }
    }
}

/// `ok: hello 0.1.0: memory 1MiB, fuel 50000000, timeout 100ms, table-elements 10000, instances 10`,
/// with defaults filled in from the policy so the line shows what is in force,
/// then the `[wasi]` grants when there are any.
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
    let text = manifest.to_toml();
    if let Some(at) = text.find("[wasi") {
        line.push_str(&format!("\ngrants:\n{}", text[at..].trim_end()));
    }
    line
}
