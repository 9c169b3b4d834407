//! What a component may reach beyond its own exports, as the kernel sees
//! it: the runtime's reference host interfaces by name, and, opaque, the
//! per-component and per-store state of a host layer above the kernel
//! (runtime-wasi's grants and WASI context). The kernel knows no WASI: it
//! asks a store's [`StoreExtension`] for what a report or a crash needs.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use runtime_manifest::HostInterface;

use crate::DiskUsage;

/// A component's capabilities, shared by every store made from it.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// The runtime's reference host interfaces it may call (`[wasi]
    /// host-functions`); a call into another fails `capability-denied`.
    pub host_interfaces: BTreeSet<HostInterface>,
    /// A host layer's own per-component state (runtime-wasi's resolved
    /// grants), read back by that layer with [`Capabilities::layer`].
    pub layer: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capabilities").field("host_interfaces", &self.host_interfaces).finish_non_exhaustive()
    }
}

impl Capabilities {
    /// Capabilities with `host_interfaces` and a layer's state.
    pub fn new(host_interfaces: BTreeSet<HostInterface>, layer: Option<Arc<dyn Any + Send + Sync>>) -> Self {
        Self { host_interfaces, layer }
    }

    /// The layer's state, if it is an `L`.
    pub fn layer<L: Any>(&self) -> Option<&L> {
        self.layer.as_deref().and_then(|layer| (layer as &dyn Any).downcast_ref())
    }
}

/// A store's state of a host layer above the kernel, made on the guest's
/// first call into that layer: what the kernel asks of it for a call's
/// report and its crash's kind. Every method has a neutral default.
pub trait StoreExtension: Any + Send {
    /// Captured stdout and stderr past `since` (bytes of each written
    /// before the call began), as (lossy) UTF-8.
    fn captured_output(&self, since: (usize, usize)) -> Option<(String, String)> {
        let _ = since;
        None
    }

    /// Bytes captured so far on stdout and stderr.
    fn captured_lengths(&self) -> (usize, usize) {
        (0, 0)
    }

    /// The directory quotas the instance touched.
    fn disk_usage(&self) -> Vec<DiskUsage> {
        Vec::new()
    }

    /// The status, if `error` is the guest's own exit (`wasi:cli/exit`).
    fn exit_status(&self, error: &wasmtime::Error) -> Option<i32> {
        let _ = error;
        None
    }

    /// Whether `error` is a host-side budget the guest overdrew (a
    /// `wasi:http` `fields` past its share).
    fn overdrew_host_budget(&self, error: &wasmtime::Error) -> bool {
        let _ = error;
        false
    }
}

/// The grant that allows a reference host interface, as the manifest and the CLI write it.
pub(crate) const fn host_interface_grant(interface: HostInterface) -> &'static str {
    match interface {
        HostInterface::Log => "`[wasi] host-functions = [\"log\"]` (CLI: --host-functions log)",
        HostInterface::Time => "`[wasi] host-functions = [\"time\"]` (CLI: --host-functions time)",
        HostInterface::Kv => "`[wasi] host-functions = [\"kv\"]` (CLI: --host-functions kv)",
        _ => "`[wasi] host-functions` naming it",
    }
}

/// A guest called into an interface that no grant of its manifest links.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{interface}` gives this component nothing: it needs {grant}")]
#[non_exhaustive]
pub struct CapabilityDenied {
    /// The interface called, e.g. `wasi:http/types`.
    pub interface: &'static str,
    /// The grant that would link it.
    pub grant: &'static str,
}

impl CapabilityDenied {
    /// `interface` needs `grant`.
    pub fn new(interface: &'static str, grant: &'static str) -> Self {
        Self { interface, grant }
    }
}
