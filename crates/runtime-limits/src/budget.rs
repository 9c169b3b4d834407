//! [`InstanceBudget`]: the memory and table budget of one instance.

use crate::ResourceLimits;

/// Most core instances, memories and tables one store may create. Components
/// instantiate a few core modules each; the cap bounds what a hostile one can
/// ask the allocator for.
const MAX_CORE_OBJECTS: usize = 100;

/// Which budget a denial concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitedResource {
    /// Linear memory, in bytes, summed over all memories.
    Memory,
    /// Table elements, summed over all tables.
    TableElements,
}

/// One growth the budget refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    /// The budget concerned.
    pub resource: LimitedResource,
    /// The total the growth would have reached.
    pub requested: u64,
    /// The budget.
    pub limit: u64,
}

/// Memory in use by an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Bytes of linear memory now, summed over all memories.
    pub current_memory_bytes: u64,
    /// The most bytes of linear memory held at once.
    pub peak_memory_bytes: u64,
    /// Table elements now, summed over all tables.
    pub table_elements: u64,
}

/// A wasmtime `ResourceLimiter` (and `ResourceLimiterAsync`) that caps the sum
/// of all linear memories and of all table elements of one store.
///
/// Contract, as wasmtime defines it: `Ok(true)` allows a growth, `Ok(false)`
/// denies it (`memory.grow` returns -1 to the guest, instantiation fails), and
/// this limiter never returns `Err`, so a denial is never a trap by itself. Every
/// denial is recorded so that a later trap can be attributed to it.
#[derive(Debug, Clone)]
pub struct InstanceBudget {
    memory_limit: u64,
    table_limit: u64,
    usage: Usage,
    /// The last granted growth, taken back if wasmtime then fails to grow.
    last_memory_grant: u64,
    last_table_grant: u64,
    denials: Vec<Denial>,
}

impl InstanceBudget {
    /// Most denials kept: a guest retrying `memory.grow` in a loop must not
    /// grow the host's memory instead.
    pub const MAX_RECORDED_DENIALS: usize = 64;

    /// An empty budget for `limits`.
    pub fn new(limits: &ResourceLimits) -> Self {
        Self {
            memory_limit: limits.memory_bytes(),
            table_limit: u64::from(limits.table_elements()),
            usage: Usage::default(),
            last_memory_grant: 0,
            last_table_grant: 0,
            denials: Vec::new(),
        }
    }

    /// Memory and table use now and at peak.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The denials so far (at most [`Self::MAX_RECORDED_DENIALS`]).
    pub fn denials(&self) -> &[Denial] {
        &self.denials
    }

    /// Whether a growth of `resource` has been denied.
    pub fn was_denied(&self, resource: LimitedResource) -> bool {
        self.denials.iter().any(|d| d.resource == resource)
    }

    /// Forgets the denials, keeping the usage: a reused instance starts each
    /// call with a clean record.
    pub fn clear_denials(&mut self) {
        self.denials.clear();
    }

    fn deny(&mut self, resource: LimitedResource, requested: u64, limit: u64) -> bool {
        if self.denials.len() < Self::MAX_RECORDED_DENIALS {
            self.denials.push(Denial { resource, requested, limit });
        }
        false
    }

    fn grow_memory(&mut self, current: usize, desired: usize) -> bool {
        let delta = (desired as u64).saturating_sub(current as u64);
        let total = self.usage.current_memory_bytes.saturating_add(delta);
        if total > self.memory_limit {
            return self.deny(LimitedResource::Memory, total, self.memory_limit);
        }
        self.usage.current_memory_bytes = total;
        self.usage.peak_memory_bytes = self.usage.peak_memory_bytes.max(total);
        self.last_memory_grant = delta;
        true
    }

    fn grow_table(&mut self, current: usize, desired: usize) -> bool {
        let delta = (desired as u64).saturating_sub(current as u64);
        let total = self.usage.table_elements.saturating_add(delta);
        if total > self.table_limit {
            return self.deny(LimitedResource::TableElements, total, self.table_limit);
        }
        self.usage.table_elements = total;
        self.last_table_grant = delta;
        true
    }
}

impl wasmtime::ResourceLimiter for InstanceBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow_memory(current, desired))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The growth we granted did not happen (e.g. past the memory's own maximum).
        self.usage.current_memory_bytes -= std::mem::take(&mut self.last_memory_grant);
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow_table(current, desired))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.usage.table_elements -= std::mem::take(&mut self.last_table_grant);
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_CORE_OBJECTS
    }

    fn tables(&self) -> usize {
        MAX_CORE_OBJECTS
    }

    fn memories(&self) -> usize {
        MAX_CORE_OBJECTS
    }
}

#[async_trait::async_trait]
impl wasmtime::ResourceLimiterAsync for InstanceBudget {
    async fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow_memory(current, desired))
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        wasmtime::ResourceLimiter::memory_grow_failed(self, error)
    }

    async fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow_table(current, desired))
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        wasmtime::ResourceLimiter::table_grow_failed(self, error)
    }

    fn instances(&self) -> usize {
        MAX_CORE_OBJECTS
    }

    fn tables(&self) -> usize {
        MAX_CORE_OBJECTS
    }

    fn memories(&self) -> usize {
        MAX_CORE_OBJECTS
    }
}
