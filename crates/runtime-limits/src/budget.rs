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

/// One budget: what is in use, the limit, and the last growth granted (taken
/// back if wasmtime then fails to perform it).
#[derive(Debug, Clone, Copy)]
struct Counter {
    used: u64,
    limit: u64,
    last_grant: u64,
}

impl Counter {
    fn new(limit: u64) -> Self {
        Self { used: 0, limit, last_grant: 0 }
    }

    /// Grants the growth from `current` to `desired`, or returns the total it
    /// would have reached.
    fn grow(&mut self, current: usize, desired: usize) -> Result<(), u64> {
        let delta = (desired as u64).saturating_sub(current as u64);
        let total = self.used.saturating_add(delta);
        if total > self.limit {
            return Err(total);
        }
        self.used = total;
        self.last_grant = delta;
        Ok(())
    }

    fn take_back(&mut self) {
        self.used = self.used.saturating_sub(std::mem::take(&mut self.last_grant));
    }
}

/// A wasmtime `ResourceLimiter` that caps the sum
/// of all linear memories and of all table elements of one store.
///
/// Contract, as wasmtime defines it: `Ok(true)` allows a growth, `Ok(false)`
/// denies it (`memory.grow` returns -1 to the guest, instantiation fails), and
/// this limiter never returns `Err`, so a denial is never a trap by itself. Every
/// denial is recorded so that a later trap can be attributed to it, and
/// forgotten when a later growth of the same resource succeeds: the guest
/// survived it.
#[derive(Debug, Clone)]
pub struct InstanceBudget {
    memory: Counter,
    tables: Counter,
    peak_memory: u64,
    denials: Vec<Denial>,
}

impl InstanceBudget {
    /// Most denials kept: a guest retrying `memory.grow` in a loop must not
    /// grow the host's memory instead.
    pub const MAX_RECORDED_DENIALS: usize = 64;

    /// An empty budget for `limits`.
    pub fn new(limits: &ResourceLimits) -> Self {
        Self {
            memory: Counter::new(limits.memory_bytes()),
            tables: Counter::new(u64::from(limits.table_elements())),
            peak_memory: 0,
            denials: Vec::new(),
        }
    }

    /// Memory and table use now and at peak.
    pub fn usage(&self) -> Usage {
        Usage {
            current_memory_bytes: self.memory.used,
            peak_memory_bytes: self.peak_memory,
            table_elements: self.tables.used,
        }
    }

    /// The denials so far (at most [`Self::MAX_RECORDED_DENIALS`]).
    pub fn denials(&self) -> &[Denial] {
        &self.denials
    }

    /// Whether a growth of `resource` has been denied, and no growth of it
    /// succeeded since.
    pub fn was_denied(&self, resource: LimitedResource) -> bool {
        self.denials.iter().any(|d| d.resource == resource)
    }

    /// Forgets the denials, keeping the usage: a reused instance starts each
    /// call with a clean record.
    pub fn clear_denials(&mut self) {
        self.denials.clear();
    }

    /// Starts a new call of a reused instance: forgets the denials, and the
    /// peak starts again at the memory in use, so the call's report shows
    /// its own peak, not one of an earlier call (linear memory never
    /// shrinks, but a growth granted and then failed in wasmtime is taken
    /// back).
    pub fn begin_call(&mut self) {
        self.clear_denials();
        self.peak_memory = self.memory.used;
    }

    fn grow(&mut self, resource: LimitedResource, current: usize, desired: usize) -> bool {
        let counter = match resource {
            LimitedResource::Memory => &mut self.memory,
            LimitedResource::TableElements => &mut self.tables,
        };
        let limit = counter.limit;
        match counter.grow(current, desired) {
            Ok(()) => {
                self.peak_memory = self.peak_memory.max(self.memory.used);
                if !self.denials.is_empty() {
                    self.denials.retain(|denial| denial.resource != resource);
                }
                true
            }
            Err(requested) => {
                if self.denials.len() < Self::MAX_RECORDED_DENIALS {
                    self.denials.push(Denial { resource, requested, limit });
                }
                false
            }
        }
    }
}

impl wasmtime::ResourceLimiter for InstanceBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(LimitedResource::Memory, current, desired))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The growth we granted did not happen (e.g. past the memory's own maximum).
        self.memory.take_back();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(self.grow(LimitedResource::TableElements, current, desired))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables.take_back();
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
