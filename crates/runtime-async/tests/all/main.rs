//! Integration tests of runtime-async: concurrency, deadlines over host
//! calls, cancellation, the panic boundary and backpressure.

mod backpressure;
mod cancel;
mod concurrency;
mod host;

use std::sync::{Condvar, Mutex, PoisonError};

use runtime_async::{AsyncExecutor, AsyncHostRegistry, TIME_INTERFACE};
use runtime_core::{
    Allocation, Capabilities, ComponentLoader, LoadedComponent, RuntimeEngine, RuntimeError, StoreState,
};
use runtime_limits::ResourceLimits;
use runtime_manifest::{ComponentManifest, HostInterface, HostPolicy};
use wasmtime::component::Linker;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An engine, the linker of `registry`, and an executor, for `policy`.
struct Host {
    engine: RuntimeEngine,
    linker: Linker<StoreState<()>>,
    executor: AsyncExecutor,
    _process: ProcessShare,
}

/// RSS is one number for the whole test process: a test that measures it
/// runs alone ([`Host::reference_alone`]) while the others share the
/// process. The state counts the sharing hosts, or is -1 for one alone; a
/// `Condvar` wakes the waiters. (A `RwLock` guard is not `Send`, and hosts
/// move between tasks.)
static PROCESS: (Mutex<i64>, Condvar) = (Mutex::new(0), Condvar::new());

struct ProcessShare {
    alone: bool,
}

impl ProcessShare {
    fn take(alone: bool) -> Self {
        let (state, changed) = &PROCESS;
        let mut holders = state.lock().unwrap_or_else(PoisonError::into_inner);
        while if alone { *holders != 0 } else { *holders < 0 } {
            holders = changed.wait(holders).unwrap_or_else(PoisonError::into_inner);
        }
        *holders = if alone { -1 } else { *holders + 1 };
        Self { alone }
    }
}

impl Drop for ProcessShare {
    fn drop(&mut self) {
        let (state, changed) = &PROCESS;
        let mut holders = state.lock().unwrap_or_else(PoisonError::into_inner);
        *holders = if self.alone { 0 } else { *holders - 1 };
        changed.notify_all();
    }
}

impl Host {
    fn new(policy: HostPolicy, registry: &AsyncHostRegistry) -> Result<Self, RuntimeError> {
        let share = ProcessShare::take(false);
        Self::with_share(policy, registry, share)
    }

    fn with_share(policy: HostPolicy, registry: &AsyncHostRegistry, share: ProcessShare) -> Result<Self, RuntimeError> {
        let engine = RuntimeEngine::new(policy, Allocation::Pooling)?;
        let linker = registry.linker(engine.engine())?;
        let executor = AsyncExecutor::new(engine.policy().max_concurrent_instances());
        Ok(Self { engine, linker, executor, _process: share })
    }

    fn reference() -> Result<Self, RuntimeError> {
        Self::new(HostPolicy::default(), &AsyncHostRegistry::with_reference_functions())
    }

    /// The reference host, with no other test running while it lives.
    fn reference_alone() -> Result<Self, RuntimeError> {
        let share = ProcessShare::take(true);
        Self::with_share(HostPolicy::default(), &AsyncHostRegistry::with_reference_functions(), share)
    }

    fn load(&self, wat: &str, resources: &str) -> Result<LoadedComponent, RuntimeError> {
        let compiled = ComponentLoader::new(self.engine.clone()).load_bytes(wat.as_bytes())?;
        let manifest: ComponentManifest =
            format!("[component]\nname = \"t\"\nversion = \"0.1.0\"\n[resources]\n{resources}\n").parse()?;
        let limits = ResourceLimits::new(&manifest.resources, self.engine.policy())?;
        // Every test guest may call the reference host functions.
        let capabilities = Capabilities::new(HostInterface::ALL.iter().copied().collect(), None);
        Ok(LoadedComponent::new(&self.engine, compiled, &self.linker, limits)?.with_capabilities(capabilities))
    }
}

/// A guest with `echo(n) -> n`, `trap`, `spin` (forever) and `nap(ms)`,
/// which asks the host to sleep.
fn mixed_guest() -> String {
    format!(
        r#"(component
  (import "{TIME_INTERFACE}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m
    (import "host" "sleep" (func $sleep (param i32)))
    (func (export "echo") (param i32) (result i32) (local.get 0))
    (func (export "trap") unreachable)
    (func (export "spin") (loop $l (br $l)))
    (func (export "nap") (param i32) (call $sleep (local.get 0))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo")))
  (func (export "trap") (canon lift (core func $i "trap")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "nap") (param "ms" u32) (canon lift (core func $i "nap"))))"#
    )
}

/// Limits whose 100ms deadline the tests rely on.
const LIMITS: &str = "memory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"100ms\"";
/// Limits whose deadline a loaded test machine never reaches, for calls
/// that must succeed.
const PATIENT: &str = "memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"30s\"";
