//! Integration tests of runtime-async: concurrency, deadlines over host
//! calls, cancellation, the panic boundary and backpressure.

mod backpressure;
mod cancel;
mod concurrency;
mod host;

use runtime_async::{AsyncExecutor, AsyncHostRegistry, TIME_INTERFACE};
use runtime_core::{Allocation, ComponentLoader, LoadedComponent, RuntimeEngine, RuntimeError, StoreState};
use runtime_limits::ResourceLimits;
use runtime_manifest::{ComponentManifest, HostPolicy};
use wasmtime::component::Linker;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An engine, the linker of `registry`, and an executor, for `policy`.
struct Host {
    engine: RuntimeEngine,
    linker: Linker<StoreState>,
    executor: AsyncExecutor,
}

impl Host {
    fn new(policy: HostPolicy, registry: &AsyncHostRegistry) -> Result<Self, RuntimeError> {
        let engine = RuntimeEngine::new(policy, Allocation::Pooling)?;
        let linker = registry.linker(engine.engine())?;
        let executor = AsyncExecutor::new(engine.policy().max_concurrent_instances());
        Ok(Self { engine, linker, executor })
    }

    fn reference() -> Result<Self, RuntimeError> {
        Self::new(HostPolicy::default(), &AsyncHostRegistry::with_reference_functions())
    }

    fn load(&self, wat: &str, resources: &str) -> Result<LoadedComponent, RuntimeError> {
        let compiled = ComponentLoader::new(self.engine.clone()).load_bytes(wat.as_bytes())?;
        let manifest: ComponentManifest =
            format!("[component]\nname = \"t\"\nversion = \"0.1.0\"\n[resources]\n{resources}\n").parse()?;
        let limits = ResourceLimits::new(&manifest.resources, self.engine.policy())?;
        Ok(LoadedComponent::new(&self.engine, compiled, &self.linker, limits)?)
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
