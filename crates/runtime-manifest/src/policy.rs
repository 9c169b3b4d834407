//! [`HostPolicy`]: the ranges a host accepts for each limit of a manifest.

use std::fmt;

use crate::CompileBudget;
use crate::grants::GrantPolicy;
use crate::manifest::Resources;
use crate::units::{ByteSize, Fuel, Timeout};

/// Smallest memory budget of the default policy.
pub const DEFAULT_MIN_MEMORY: ByteSize = ByteSize::kib(512);
/// Largest memory budget of the default policy.
pub const DEFAULT_MAX_MEMORY: ByteSize = ByteSize::mib(4);
/// Largest fuel per call of the default policy: about ten seconds of guest CPU.
pub const DEFAULT_MAX_FUEL: Fuel = match Fuel::new(10_000_000_000) {
    Some(fuel) => fuel,
    None => Fuel::MAX,
};
/// Shortest timeout of the default policy.
pub const DEFAULT_MIN_TIMEOUT: Timeout = Timeout::from_millis(1);
/// Longest timeout of the default policy.
pub const DEFAULT_MAX_TIMEOUT: Timeout = Timeout::from_secs(60);
/// Table elements an instance gets when its manifest does not say.
pub const DEFAULT_TABLE_ELEMENTS: u32 = 10_000;
/// Most table elements (summed over all tables) the default policy allows.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u32 = 100_000;
/// Most concurrent instances of one component the default policy allows,
/// and what a manifest that does not say `resources.instances` gets.
pub const DEFAULT_MAX_INSTANCES: u32 = 100;
/// Instances alive at once across all components of a runtime: the size of
/// the pooling allocator and of the async executor's admission.
pub const DEFAULT_MAX_CONCURRENT_INSTANCES: u32 = 1_000;
/// Most resource handles one instance may hold at once (its own resources
/// and the host's, such as WASI pollables). wasmtime's own default is 100,000.
pub const DEFAULT_MAX_HANDLES: u32 = 10_000;
/// How many times its memory budget a guest may make the host copy out of
/// its memory in one transfer (an export's results, or one host call's
/// arguments), counting host values as wasmtime sizes them.
pub const DEFAULT_COPY_LIMIT_FACTOR: u32 = 8;
/// How many times its memory budget a guest may make the host hold on its
/// behalf outside its linear memory (HTTP fields and bodies, WASI objects,
/// queued output), all at once.
pub const DEFAULT_HOST_MEMORY_FACTOR: u32 = 4;

/// An inclusive range of accepted values for one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds<T> {
    /// The smallest accepted value.
    pub min: T,
    /// The largest accepted value.
    pub max: T,
}

impl<T: PartialOrd + Copy> Bounds<T> {
    fn new(min: T, max: T) -> Self {
        Self { min, max }
    }

    /// Whether `value` lies within the bounds.
    pub fn contains(&self, value: T) -> bool {
        self.min <= value && value <= self.max
    }
}

/// The ranges a host accepts for each limit. A manifest may ask for less than
/// the policy allows, never more: validation rejects any value outside it.
///
/// The default policy is documented by the `DEFAULT_*` constants. A host
/// widens or narrows it with [`HostPolicy::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPolicy {
    memory: Bounds<ByteSize>,
    fuel: Bounds<Fuel>,
    timeout: Bounds<Timeout>,
    max_table_elements: u32,
    max_instances: u32,
    max_concurrent_instances: u32,
    max_handles: u32,
    copy_limit_factor: u32,
    host_memory_factor: u32,
    compile: CompileBudget,
    grants: GrantPolicy,
    network_ranges: Vec<crate::AddressPattern>,
    component_model_async: bool,
}

impl Default for HostPolicy {
    fn default() -> Self {
        Self {
            memory: Bounds::new(DEFAULT_MIN_MEMORY, DEFAULT_MAX_MEMORY),
            fuel: Bounds::new(Fuel::MIN, DEFAULT_MAX_FUEL),
            timeout: Bounds::new(DEFAULT_MIN_TIMEOUT, DEFAULT_MAX_TIMEOUT),
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_concurrent_instances: DEFAULT_MAX_CONCURRENT_INSTANCES,
            max_handles: DEFAULT_MAX_HANDLES,
            copy_limit_factor: DEFAULT_COPY_LIMIT_FACTOR,
            host_memory_factor: DEFAULT_HOST_MEMORY_FACTOR,
            compile: CompileBudget::default(),
            grants: GrantPolicy::default(),
            network_ranges: Vec::new(),
            component_model_async: false,
        }
    }
}

impl HostPolicy {
    /// A builder starting from the default policy.
    pub fn builder() -> HostPolicyBuilder {
        HostPolicyBuilder { policy: Self::default() }
    }

    /// A builder starting from this policy, to derive a changed one.
    pub fn to_builder(&self) -> HostPolicyBuilder {
        HostPolicyBuilder { policy: self.clone() }
    }

    /// Accepted memory budgets (the sum of all linear memories of an instance).
    pub fn memory(&self) -> Bounds<ByteSize> {
        self.memory
    }

    /// Accepted fuel per call.
    pub fn fuel(&self) -> Bounds<Fuel> {
        self.fuel
    }

    /// Accepted timeouts per call.
    pub fn timeout(&self) -> Bounds<Timeout> {
        self.timeout
    }

    /// Accepted table elements, summed over all tables of an instance.
    pub fn table_elements(&self) -> Bounds<u32> {
        Bounds::new(1, self.max_table_elements)
    }

    /// Accepted concurrent instances of one component.
    pub fn instances(&self) -> Bounds<u32> {
        Bounds::new(1, self.max_instances)
    }

    /// Instances alive at once across the whole runtime.
    pub fn max_concurrent_instances(&self) -> u32 {
        self.max_concurrent_instances
    }

    /// The addresses network grants may name (`[grants] network-ranges`):
    /// every pattern of a grant must lie inside one of them. Empty: any,
    /// once `[grants] network` allows network grants at all.
    pub fn network_ranges(&self) -> &[crate::AddressPattern] {
        &self.network_ranges
    }

    /// Every grant of `wasi` this policy refuses, as (manifest key, policy
    /// key): the kinds of grant [`GrantPolicy::refusals`] refuses, and
    /// network addresses outside the policy's ranges.
    pub fn grant_refusals(&self, wasi: &crate::WasiConfig) -> Vec<(&'static str, &'static str)> {
        let mut refused = self.grants.refusals(wasi);
        let network = &wasi.network;
        let outside =
            |pattern: &crate::AddressPattern| !self.network_ranges.iter().any(|range| range.contains(pattern));
        let patterns = network.tcp_connect.iter().chain(&network.tcp_bind).chain(&network.udp);
        if !self.network_ranges.is_empty() && patterns.into_iter().any(outside) {
            refused.push(("wasi.network", "network-ranges"));
        }
        refused
    }

    /// Whether the engine runs component-model async components (WASI 0.3:
    /// async functions, streams, futures, tasks). Off by default: wasmtime's
    /// concurrency support makes every call of every component slower
    /// (measured: a warm synchronous call 3.7x, an instantiation 1.25x), so
    /// a host turns it on only where it runs such components.
    pub fn component_model_async(&self) -> bool {
        self.component_model_async
    }

    /// Resource handles one instance may hold at once.
    pub fn max_handles(&self) -> u32 {
        self.max_handles
    }

    /// How many times its memory budget a guest may make the host copy in
    /// one transfer (see [`DEFAULT_COPY_LIMIT_FACTOR`]).
    pub fn copy_limit_factor(&self) -> u32 {
        self.copy_limit_factor
    }

    /// How many times its memory budget a guest may make the host hold
    /// outside its linear memory (see [`DEFAULT_HOST_MEMORY_FACTOR`]).
    pub fn host_memory_factor(&self) -> u32 {
        self.host_memory_factor
    }

    /// What a component may contain before it is compiled.
    pub fn compile_budget(&self) -> &CompileBudget {
        &self.compile
    }

    /// Which kinds of capability grant manifests may ask for.
    pub fn grants(&self) -> &GrantPolicy {
        &self.grants
    }

    /// The smallest and largest accepted value of `key`, as written in a manifest.
    pub fn bounds_text(&self, key: LimitKey) -> (String, String) {
        fn text<T: fmt::Display>(bounds: Bounds<T>) -> (String, String) {
            (bounds.min.to_string(), bounds.max.to_string())
        }
        match key {
            LimitKey::Memory => text(self.memory),
            LimitKey::Fuel => text(self.fuel),
            LimitKey::Timeout => text(self.timeout),
            LimitKey::TableElements => text(self.table_elements()),
            LimitKey::Instances => text(self.instances()),
        }
    }

    /// Every limit of `resources` that lies outside this policy.
    ///
    /// The manifest parser reports these with their place in the file; code
    /// that builds limits from a manifest checks again, so a manifest validated
    /// under a wider policy cannot slip through a narrower one.
    pub fn violations(&self, resources: &Resources) -> Vec<PolicyViolation> {
        [
            PolicyViolation::check(LimitKey::Memory, resources.memory, self.memory),
            PolicyViolation::check(LimitKey::Fuel, resources.fuel, self.fuel),
            PolicyViolation::check(LimitKey::Timeout, resources.timeout, self.timeout),
            resources
                .table_elements
                .and_then(|value| PolicyViolation::check(LimitKey::TableElements, value, self.table_elements())),
            resources.instances.and_then(|value| PolicyViolation::check(LimitKey::Instances, value, self.instances())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Builds a [`HostPolicy`], starting from the default one.
#[derive(Debug, Clone)]
pub struct HostPolicyBuilder {
    policy: HostPolicy,
}

impl HostPolicyBuilder {
    /// Accept memory budgets from `min` to `max`, inclusive.
    pub fn memory(mut self, min: ByteSize, max: ByteSize) -> Self {
        self.policy.memory = Bounds::new(min, max);
        self
    }

    /// Accept fuel per call from `min` to `max`, inclusive.
    pub fn fuel(mut self, min: Fuel, max: Fuel) -> Self {
        self.policy.fuel = Bounds::new(min, max);
        self
    }

    /// Accept timeouts from `min` to `max`, inclusive.
    pub fn timeout(mut self, min: Timeout, max: Timeout) -> Self {
        self.policy.timeout = Bounds::new(min, max);
        self
    }

    /// Accept at most `max` table elements per instance.
    pub fn max_table_elements(mut self, max: u32) -> Self {
        self.policy.max_table_elements = max;
        self
    }

    /// Accept at most `max` concurrent instances per component.
    pub fn max_instances(mut self, max: u32) -> Self {
        self.policy.max_instances = max;
        self
    }

    /// Network grants may name only addresses inside `ranges`; see
    /// [`HostPolicy::network_ranges`].
    pub fn network_ranges(mut self, ranges: Vec<crate::AddressPattern>) -> Self {
        self.policy.network_ranges = ranges;
        self
    }

    /// Run component-model async (WASI 0.3) components; see
    /// [`HostPolicy::component_model_async`].
    pub fn component_model_async(mut self, enabled: bool) -> Self {
        self.policy.component_model_async = enabled;
        self
    }

    /// Keep at most `max` instances alive at once across the runtime.
    pub fn max_concurrent_instances(mut self, max: u32) -> Self {
        self.policy.max_concurrent_instances = max;
        self
    }

    /// Let one instance hold at most `max` resource handles at once.
    pub fn max_handles(mut self, max: u32) -> Self {
        self.policy.max_handles = max;
        self
    }

    /// Let a guest make the host copy at most `factor` times its memory
    /// budget in one transfer.
    pub fn copy_limit_factor(mut self, factor: u32) -> Self {
        self.policy.copy_limit_factor = factor;
        self
    }

    /// Let a guest make the host hold at most `factor` times its memory
    /// budget outside its linear memory.
    pub fn host_memory_factor(mut self, factor: u32) -> Self {
        self.policy.host_memory_factor = factor;
        self
    }

    /// What a component may contain before it is compiled.
    pub fn compile_budget(mut self, budget: CompileBudget) -> Self {
        self.policy.compile = budget;
        self
    }

    /// Which kinds of capability grant manifests may ask for.
    pub fn grants(mut self, grants: GrantPolicy) -> Self {
        self.policy.grants = grants;
        self
    }

    /// The policy, or an error if a range is empty or admits an unlimited
    /// (zero) value.
    pub fn build(self) -> Result<HostPolicy, PolicyError> {
        let p = &self.policy;
        let ranges = [
            (LimitKey::Memory, p.memory.min.as_bytes(), p.memory.max.as_bytes()),
            (LimitKey::Fuel, p.fuel.min.get(), p.fuel.max.get()),
            (LimitKey::Timeout, p.timeout.min.as_millis(), p.timeout.max.as_millis()),
            (LimitKey::TableElements, 1, u64::from(p.max_table_elements)),
            (LimitKey::Instances, 1, u64::from(p.max_instances)),
            (LimitKey::Instances, 1, u64::from(p.max_concurrent_instances)),
            (LimitKey::Instances, 1, u64::from(p.max_handles)),
            (LimitKey::Memory, 1, u64::from(p.copy_limit_factor)),
            (LimitKey::Memory, 1, u64::from(p.host_memory_factor)),
        ];
        for (key, min, max) in ranges {
            if min == 0 || max == 0 {
                return Err(PolicyError::Zero { key });
            }
            if min > max {
                return Err(PolicyError::EmptyRange { key });
            }
        }
        Ok(self.policy)
    }
}

/// A [`HostPolicy`] that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A bound is zero, which would mean "nothing" or, to some readers, "unlimited".
    #[error("the host policy for `{key}` has a zero bound")]
    Zero {
        /// The limit concerned.
        key: LimitKey,
    },
    /// The minimum is above the maximum.
    #[error("the host policy for `{key}` has its minimum above its maximum")]
    EmptyRange {
        /// The limit concerned.
        key: LimitKey,
    },
}

/// The limits of the `[resources]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitKey {
    /// `memory`
    Memory,
    /// `fuel`
    Fuel,
    /// `timeout`
    Timeout,
    /// `table-elements`
    TableElements,
    /// `instances`
    Instances,
}

impl LimitKey {
    /// The key as written in a manifest.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Fuel => "fuel",
            Self::Timeout => "timeout",
            Self::TableElements => "table-elements",
            Self::Instances => "instances",
        }
    }
}

impl fmt::Display for LimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A limit outside the [`HostPolicy`], with values formatted as in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyViolation {
    /// The limit concerned.
    pub key: LimitKey,
    /// The value asked for.
    pub value: String,
    /// The smallest accepted value.
    pub min: String,
    /// The largest accepted value.
    pub max: String,
}

impl PolicyViolation {
    pub(crate) fn check<T: PartialOrd + Copy + fmt::Display>(
        key: LimitKey,
        value: T,
        bounds: Bounds<T>,
    ) -> Option<Self> {
        (!bounds.contains(value)).then(|| Self {
            key,
            value: value.to_string(),
            min: bounds.min.to_string(),
            max: bounds.max.to_string(),
        })
    }
}
