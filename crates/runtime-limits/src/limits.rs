//! [`ResourceLimits`]: the limits in force for one component.

use std::time::Duration;

use runtime_manifest::{HostPolicy, PolicyViolation, Resources};

/// Why limits could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The resources lie outside the host policy (e.g. a manifest validated
    /// under a wider policy than the one in force now).
    #[error("the limits exceed the host policy: {}", describe(violations))]
    PolicyViolation {
        /// Every limit outside the policy.
        violations: Vec<PolicyViolation>,
    },
}

fn describe(violations: &[PolicyViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{} = {} (allowed {}..={})", v.key, v.value, v.min, v.max))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The limits in force for one component: the manifest's values, with
/// defaults from the policy for optional ones, and never outside the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLimits {
    memory_bytes: u64,
    fuel: u64,
    timeout: Duration,
    table_elements: u32,
    instances: u32,
    copy_limit_bytes: u64,
    host_memory_bytes: u64,
    max_handles: u32,
}

impl ResourceLimits {
    /// Limits from `resources`, checked against `policy`.
    pub fn new(resources: &Resources, policy: &HostPolicy) -> Result<Self, Error> {
        resources.check(policy).map_err(|violations| Error::PolicyViolation { violations })?;
        Ok(Self {
            memory_bytes: resources.memory.as_bytes(),
            fuel: resources.fuel.get(),
            timeout: resources.timeout.as_duration(),
            table_elements: resources.effective_table_elements(policy),
            instances: resources.effective_instances(policy),
            copy_limit_bytes: resources.memory.as_bytes().saturating_mul(u64::from(policy.copy_limit_factor())),
            host_memory_bytes: resources.memory.as_bytes().saturating_mul(u64::from(policy.host_memory_factor())),
            max_handles: policy.max_handles(),
        })
    }

    /// Budget for the sum of all linear memories, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// Fuel per call.
    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    /// Wall-clock deadline per call, instantiation included.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Table elements, summed over all tables.
    pub fn table_elements(&self) -> u32 {
        self.table_elements
    }

    /// The most bytes of host values one transfer out of the guest (an
    /// export's results, or one host call's arguments) may produce: the
    /// memory budget times the policy's copy-limit factor.
    pub fn copy_limit_bytes(&self) -> u64 {
        self.copy_limit_bytes
    }

    /// The most bytes the host holds for the instance outside its linear
    /// memory at once: the memory budget times the policy's host-memory factor.
    pub fn host_memory_bytes(&self) -> u64 {
        self.host_memory_bytes
    }

    /// Resource handles the instance may hold at once.
    pub fn max_handles(&self) -> u32 {
        self.max_handles
    }

    /// Concurrent instances of the component.
    pub fn instances(&self) -> u32 {
        self.instances
    }
}

/// Fuel a call consumed: what it was given minus what is left.
pub fn fuel_consumed<T>(store: &wasmtime::Store<T>, given: u64) -> u64 {
    // `get_fuel` fails only when fuel is not enabled, which the engine always enables.
    given.saturating_sub(store.get_fuel().unwrap_or(given))
}
