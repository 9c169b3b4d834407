//! [`StoreState`]: what every store of the runtime carries.

use std::time::Duration;

use runtime_limits::{InstanceBudget, ResourceLimits};

/// The data of each wasmtime `Store`: the instance's budget and host-call
/// accounting.
#[derive(Debug)]
pub struct StoreState {
    /// The memory and table budget, also the store's limiter.
    pub budget: InstanceBudget,
    /// Host functions called so far.
    pub host_calls: u64,
    /// Wall time spent in host functions so far.
    pub host_time: Duration,
}

impl StoreState {
    /// Fresh state for `limits`.
    pub fn new(limits: &ResourceLimits) -> Self {
        Self {
            budget: InstanceBudget::new(limits),
            host_calls: 0,
            host_time: Duration::ZERO,
        }
    }
}
