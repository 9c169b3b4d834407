//! [`RuntimeEngine`]: the one wasmtime `Engine` of a runtime, and its epoch ticker.

use std::sync::Arc;

use runtime_limits::{
    Allocation, EpochTicker, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT, MEMORIES_PER_SLOT, TABLES_PER_SLOT,
    engine_config,
};
use runtime_manifest::HostPolicy;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::LoadError;

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
