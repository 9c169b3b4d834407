//! [`RuntimeEngine`]: the one wasmtime `Engine` of a runtime, and its epoch ticker.

use std::sync::Arc;

use runtime_limits::EpochTicker;
use runtime_manifest::HostPolicy;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::LoadError;

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
/// several slots (see [`RuntimeEngine::pool_slots`]).
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

/// The engine every component of a runtime is compiled for and run in,
/// configured once: component model, Cranelift, fuel, epoch interruption,
/// wasm backtraces, and the allocator sized from the [`HostPolicy`]. Cloning
/// is cheap; the epoch ticker stops when the last clone is dropped.
#[derive(Clone)]
pub struct RuntimeEngine {
    engine: Engine,
    policy: Arc<HostPolicy>,
    allocation: Allocation,
    _ticker: Arc<EpochTicker>,
}

impl std::fmt::Debug for RuntimeEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeEngine").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl RuntimeEngine {
    /// An engine for `policy` with the given allocation strategy.
    pub fn new(policy: HostPolicy, allocation: Allocation) -> Result<Self, LoadError> {
        Self::with_config(policy, allocation, |_| {})
    }

    /// Like [`new`](Self::new), letting `configure` change the wasmtime
    /// configuration the policy made: the embedder's escape hatch for
    /// options the runtime has no setting for. Unstable: turning off fuel,
    /// epoch interruption or the component model breaks the runtime's limits.
    pub fn with_config(
        policy: HostPolicy,
        allocation: Allocation,
        configure: impl Fn(&mut Config),
    ) -> Result<Self, LoadError> {
        let build = |allocation| {
            let mut config = engine_config(&policy, allocation);
            configure(&mut config);
            #[expect(clippy::disallowed_methods, reason = "runtime-loader is the one place that builds engines")]
            Engine::new(&config)
        };
        let (engine, allocation) = match build(allocation) {
            Ok(engine) => (engine, allocation),
            // The pool reserves its address space up front; a host that
            // cannot give it (a small address space, a tight `ulimit -v`)
            // still runs guests, each memory mapped when it is created.
            Err(error) if allocation == Allocation::Pooling => {
                tracing::warn!(%error, "cannot reserve the instance pool; allocating on demand instead");
                let engine =
                    build(Allocation::OnDemand).map_err(|e| LoadError::Engine { message: format!("{e:#}") })?;
                (engine, Allocation::OnDemand)
            }
            Err(error) => return Err(LoadError::Engine { message: format!("{error:#}") }),
        };
        let ticker = EpochTicker::start(engine.clone())
            .map_err(|e| LoadError::Engine { message: format!("cannot start the epoch ticker: {e}") })?;
        Ok(Self { engine, policy: Arc::new(policy), allocation, _ticker: Arc::new(ticker) })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The policy the engine was sized for and that limits are checked against.
    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }

    /// How instances get their memory: what was asked for, unless the pool
    /// could not be reserved.
    pub fn allocation(&self) -> Allocation {
        self.allocation
    }

    /// How many of the runtime's instance slots one instance of `component`
    /// takes: a pool slot holds [`MEMORIES_PER_SLOT`] memories and
    /// [`TABLES_PER_SLOT`] tables (core instances are only counted, up to
    /// [`MAX_CORE_INSTANCES_PER_COMPONENT`] per slot), so admission takes as
    /// many slots as the pool needs to place the instance, and a call that
    /// is admitted always finds its memories. Without a pool, one. A
    /// component that could never be placed is refused with its figures.
    pub fn pool_slots(&self, component: &Component) -> Result<u32, LoadError> {
        if self.allocation != Allocation::Pooling {
            return Ok(1);
        }
        // `None`: the component instantiates an imported core module, whose
        // needs are unknown; assume the most a component may define.
        let (memories, tables) = component
            .resources_required()
            .map_or((MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT), |r| (r.num_memories, r.num_tables));
        let needed = memories.div_ceil(MEMORIES_PER_SLOT).max(tables.div_ceil(TABLES_PER_SLOT)).max(1);
        let slots = self.policy.max_concurrent_instances();
        if needed > slots {
            return Err(LoadError::PoolTooSmall { memories, tables, needed, slots });
        }
        Ok(needed)
    }
}

/// The engine configuration for `policy`. Public so that benchmarks can build
/// a bare wasmtime engine with exactly the same settings.
pub fn engine_config(policy: &HostPolicy, allocation: Allocation) -> Config {
    #[expect(clippy::disallowed_methods, reason = "runtime-core is the one place that configures engines")]
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_multi_memory(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        // Wasm backtraces stay at wasmtime's default (on, 20 frames): crash
        // reports carry them.
        .concurrency_support(false);
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
