//! The engine configuration that is limits: fuel, epoch interruption and
//! the instance pool sized from the policy. runtime-loader builds the one
//! engine from it; benches build bare wasmtime with exactly the same.

use runtime_manifest::HostPolicy;
use wasmtime::{Config, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Linear memories one component may define (multi-memory guests).
pub const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables one component may define.
pub const MAX_TABLES_PER_COMPONENT: u32 = 8;
/// The guard region after each pooled memory.
const POOL_GUARD_BYTES: u64 = 64 << 10;
const WASM_PAGE: u64 = 64 << 10;
/// Core module instances one component may create.
pub const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
/// Linear memories one pool slot holds; a component defining more takes
/// several slots (see `RuntimeEngine::pool_slots` in runtime-loader).
pub const MEMORIES_PER_SLOT: u32 = 2;
/// Tables one pool slot holds.
pub const TABLES_PER_SLOT: u32 = 2;

/// How instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Allocation {
    /// Pre-reserved slots, reused between instances (fast instantiation),
    /// one per instance the policy lets live at once
    /// ([`HostPolicy::max_concurrent_instances`]).
    #[default]
    Pooling,
    /// Memory mapped per instance when it is created.
    OnDemand,
}

/// The engine configuration for `policy`. Public so that benchmarks can build
/// a bare wasmtime engine with exactly the same settings.
pub fn engine_config(policy: &HostPolicy, allocation: Allocation) -> Config {
    #[expect(clippy::disallowed_methods, reason = "runtime-limits is the one place that configures engines")]
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_multi_memory(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        // Wasm backtraces stay at wasmtime's default (on, 20 frames): crash
        // reports carry them.
        // wasmtime's concurrency support slows every call (see
        // `HostPolicy::component_model_async`): on only where the policy runs
        // component-model async components.
        .concurrency_support(policy.component_model_async());
    if allocation == Allocation::Pooling {
        let instances = policy.max_concurrent_instances();
        let mut pool = PoolingAllocationConfig::new();
        let memory_max = usize::try_from(policy.memory().max.as_bytes()).unwrap_or(usize::MAX);
        pool.total_component_instances(instances)
            // Core instances are only counted by the pool (their state is
            // allocated when they are made): every slot may hold a
            // component's most. Memories and tables are reserved up front,
            // so a component defining more takes several slots.
            .total_core_instances(instances.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT))
            .total_memories(instances.saturating_mul(MEMORIES_PER_SLOT))
            .total_tables(instances.saturating_mul(TABLES_PER_SLOT))
            .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
            .max_memories_per_module(MAX_MEMORIES_PER_COMPONENT)
            .max_tables_per_module(MAX_TABLES_PER_COMPONENT)
            .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memory_size(memory_max)
            .table_elements(policy.table_elements().max as usize)
            // Twice the instances: with exactly one stack per admitted call,
            // about one call in 30,000 failed as `busy` under load (10,000
            // concurrent sleeping calls, 40 rounds): wasmtime's stack pool
            // was full while only 999 other stores were alive, so a stack can
            // outlive its store's admission briefly. Unused stacks cost
            // address space only.
            .total_stacks(instances.saturating_mul(2));
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Each memory slot reserves what the policy lets one memory reach,
        // not wasmtime's default 4 GiB plus guard: 2,000 slots of 4 GiB are
        // 8 TiB of address space, more than a host with 39-bit addresses
        // has. Memories then need explicit bounds checks; a small guard
        // still lets wasmtime skip the check for small constant offsets.
        let reservation = (memory_max as u64).max(WASM_PAGE).next_multiple_of(WASM_PAGE);
        config.memory_reservation(reservation).memory_guard_size(POOL_GUARD_BYTES);
    }
    config
}
