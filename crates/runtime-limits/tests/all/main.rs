//! Integration tests of runtime-limits: the budget's arithmetic and contract,
//! limits against the policy, and the ticker's life cycle.

mod budget;
mod limits;

use runtime_limits::ResourceLimits;
use runtime_manifest::{ComponentManifest, HostPolicy};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn limits(resources: &str) -> Result<ResourceLimits, Box<dyn std::error::Error>> {
    let manifest: ComponentManifest =
        format!("[component]\nname = \"t\"\nversion = \"0.1.0\"\n[resources]\n{resources}\n").parse()?;
    Ok(ResourceLimits::new(&manifest.resources, &HostPolicy::default())?)
}
