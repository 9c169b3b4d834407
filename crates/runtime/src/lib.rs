//! The facade of the component runtime: one dependency for embedders.
//!
//! A [`Runtime`] owns one engine (configured from a [`HostPolicy`]), a loader
//! with its caches and the linker. [`Runtime::load`] reads a `Component.toml`,
//! validates it against the policy and loads the component it names;
//! [`LoadedComponent::call`] runs an export in a fresh instance under the
//! manifest's memory budget, fuel and deadline, and returns the results with a
//! [`CallReport`], or a [`RuntimeError`] whose [`CrashReport`] says what the
//! guest did. Each crate's error is re-exported under its own name
//! (`ManifestError`, `LoadError`, ...).
//!
//! ```
//! use runtime::{ComponentManifest, CrashKind, Runtime, Val};
//!
//! let runtime = Runtime::builder().build()?;
//! let manifest: ComponentManifest = "[component]\nname = \"adder\"\nversion = \"0.1.0\"\n\
//!     [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n".parse()?;
//! let adder = runtime.load_bytes(br#"(component
//!   (core module $m
//!     (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
//!     (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1))))
//!   (core instance $i (instantiate $m))
//!   (func (export "add") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
//!   (func (export "div") (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "div"))))"#,
//!   &manifest)?;
//!
//! let sum = adder.call("add", &[Val::U32(2), Val::U32(3)])?;
//! assert_eq!(sum.results, [Val::U32(5)]);
//! assert!(sum.report.fuel_consumed > 0);
//!
//! let error = adder.call("div", &[Val::U32(1), Val::U32(0)]).unwrap_err();
//! assert_eq!(error.crash().map(|c| c.kind), Some(CrashKind::IntegerDivisionByZero));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The embedder's own state `T`, one value per instance, reached by a host
//! function; a live instance on Tokio, called through a typed export; limits
//! as values. `bindgen!`-generated imports link the same way through
//! [`RuntimeBuilder::link`] with [`StoreState::import_host`] as their getter
//! (see `examples/actor.rs`).
//!
//! ```
//! use runtime::{AsyncHostRegistry, ByteSize, ComponentManifest, Fuel, host::HostFuture, Resources, RuntimeBuilder, Timeout};
//!
//! /// What the host keeps for each instance.
//! #[derive(Default)]
//! struct Visitor { name: String, greetings: u32 }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let registry = AsyncHostRegistry::<Visitor>::new().func_async("example:host/visits", "count",
//!     |mut store, (): ()| -> HostFuture<'_, (u32,)> {
//!         let visitor = store.data_mut().host_mut();
//!         visitor.greetings += 1;
//!         let count = visitor.greetings;
//!         Box::new(async move { Ok((count,)) })
//!     });
//! let runtime = RuntimeBuilder::<Visitor>::new().host_functions(registry).build()?;
//! let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(1));
//! let manifest = ComponentManifest::from_resources("greeter".parse()?, resources);
//! let greeter = runtime.load_bytes(br#"(component
//!   (import "example:host/visits" (instance $visits (export "count" (func (result u32)))))
//!   (core func $count (canon lower (func $visits "count")))
//!   (core module $m (import "host" "count" (func $count (result i32)))
//!     (func (export "greet") (result i32) (call $count)))
//!   (core instance $i (instantiate $m (with "host" (instance (export "count" (func $count))))))
//!   (func (export "greet") (result u32) (canon lift (core func $i "greet"))))"#, &manifest)?;
//!
//! let mut ada = greeter.instantiate_async(Visitor { name: "Ada".into(), greetings: 0 }).await?;
//! let greet = ada.typed::<(), (u32,)>("greet")?;
//! ada.call_typed_async(&greet, ()).await?;
//! let second = ada.call_typed_async(&greet, ()).await?;
//! assert_eq!(second.results, (2,));
//! assert_eq!((ada.host().name.as_str(), ada.host().greetings), ("Ada", 2));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod component;
mod observing;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_async::{DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT};
use runtime_core::{ComponentLoader, RuntimeEngine};
use runtime_wasi::WasiGrants;
use wasmtime::component::Linker;

pub use component::{CallCanceller, Instance, LoadedComponent, RestartFailed};
pub use observing::{CallMetrics, CallObserver};
pub use runtime_async::{AsyncHostRegistry, CancellationToken};
pub use runtime_core::{
    Allocation, CallOutcome, CallReport, CompileWorker, CrashKind, CrashReport, DeadlinePhase, ExportSignature,
    LoadError, PoisonCause, RuntimeError, StoreFuture, StoreState, TypedExport, TypedOutcome,
};
pub use runtime_limits::{ResourceLimits, Usage};
pub use runtime_manifest::{self as manifest, ByteSize, ComponentManifest, Fuel, HostPolicy, Resources, Timeout};

/// Below the facade: the engine, the loader and its caches, for an embedder
/// that compiles ahead or inspects what [`Runtime::loader`] holds.
pub mod loader {
    pub use runtime_core::{
        CacheSource, CacheState, CompiledComponent, ComponentLoader, ContentHash, DiskCache, RuntimeEngine,
    };
}

/// The WASI host's bounds and serving entry: what one instance's WASI may
/// hold, the headers that bound work caused by a served request, and the
/// flush a process that inherited guest output calls before it exits.
pub mod wasi {
    pub use crate::component::InstanceWasi;
    pub use runtime_core::{CapabilityDenied, DiskUsage};
    pub use runtime_wasi::{
        DEADLINE_HEADER, HOPS_HEADER, IncomingHttp, MAX_CAPTURED_OUTPUT_BYTES, MAX_DEBUG_STRING_BYTES, MAX_HOPS,
        MAX_OUTGOING_REQUESTS_PER_PROCESS, MAX_QUEUED_OUTPUT_BYTES, MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS,
        MAX_WASI_OBJECTS, flush_inherited_output,
    };
}

/// Host functions: the reference interfaces' names, the future an async
/// host function returns, and the error of one that failed.
pub mod host {
    pub use runtime_async::{HostFuture, KV_INTERFACE, LOG_INTERFACE, TIME_INTERFACE};
    pub use runtime_core::{HostFunctionError, HostMemoryExceeded};
}

/// What a call observer sees, beyond [`CallObserver`] and [`CallMetrics`].
pub mod observe {
    pub use crate::observing::{CallEvent, KindMetrics, LATENCY_BUCKETS};
}

/// Limits that are not a manifest's: the admission queue's defaults, and
/// the error of limits that do not fit a policy.
pub mod limits {
    pub use runtime_async::{DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT};
    pub use runtime_limits::Error;
}

/// What the `wasm-runtime` CLI needs beyond an embedder's API: its compile
/// worker's entry, the cache directory's checks, the component scan behind
/// `inspect`, and the descriptor limit it raises. Stable only as far as the
/// CLI needs it.
pub mod cli_support {
    pub use runtime_core::{
        CACHE_BUDGET_ENV, CacheDirProblem, DeclaredFigures, STALE_TEMPORARY, check_cache_dir, compile_worker_main,
        component_binary, declared_figures,
    };

    /// Raises the process's soft descriptor limit to its hard limit; the
    /// new soft limit, if it could be read.
    pub fn raise_descriptor_limit() -> Option<u64> {
        crate::raise_descriptor_limit()
    }
}

/// The wasmtime this runtime is built on, so that `wasmtime::component::bindgen!`
/// and the types it generates resolve through this crate alone
/// (`use runtime::wasmtime;`, then `wasmtime::component::bindgen!({ ... })`).
pub use wasmtime;
pub use wasmtime::component::{Type, Val};

/// The linker every component of a `Runtime<T>` is linked against.
pub type HostLinker<T> = Linker<StoreState<T>>;

// `Send`, so that a builder can be made on one thread and built on another.
type LinkHook<T> = Box<dyn FnOnce(&mut HostLinker<T>) -> wasmtime::Result<()> + Send>;
type EngineHook = Box<dyn Fn(&mut wasmtime::Config) + Send>;
/// A builder's disk cache directory, cache budgets (memory, disk) and largest component.
type CacheSettings = (Option<PathBuf>, (Option<u64>, Option<u64>), Option<u64>);

/// Builds a [`Runtime`]: the host policy, the allocation strategy, a disk
/// cache directory, the largest component accepted, the host functions, the
/// admission queue and the call observer. `T` is the embedder's state of
/// each instance (`()` by default; name it with `RuntimeBuilder::<T>::new()`).
pub struct RuntimeBuilder<T: 'static = ()> {
    policy: Option<HostPolicy>,
    allocation: Option<Allocation>,
    /// Another runtime's engine, caches and admission, to share.
    sharing: Option<Parts>,
    cache_dir: Option<PathBuf>,
    cache_budgets: (Option<u64>, Option<u64>),
    max_component_bytes: Option<u64>,
    host: Option<AsyncHostRegistry<T>>,
    links: Vec<LinkHook<T>>,
    queue: Option<(usize, Duration)>,
    observer: Option<Arc<dyn CallObserver>>,
    engine_hook: Option<EngineHook>,
    worker: Option<CompileWorker>,
}

impl<T> std::fmt::Debug for RuntimeBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("policy", &self.policy)
            .field("allocation", &self.allocation)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl<T> Default for RuntimeBuilder<T> {
    fn default() -> Self {
        Self {
            policy: None,
            allocation: None,
            sharing: None,
            cache_dir: None,
            cache_budgets: (None, None),
            max_component_bytes: None,
            host: None,
            links: Vec::new(),
            queue: None,
            observer: None,
            engine_hook: None,
            worker: None,
        }
    }
}

impl<T: Send + 'static> RuntimeBuilder<T> {
    /// A builder with the default policy and pooling allocation.
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy manifests are validated against (default: [`HostPolicy::default`]).
    pub fn policy(mut self, policy: HostPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Pooling (default) or on-demand allocation.
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = Some(allocation);
        self
    }

    /// Caches compiled components in `dir` as well as in memory. The
    /// directory must not be writable by untrusted parties: [`build`](Self::build)
    /// refuses one that another user owns or may write, or that cannot be
    /// used, with a `LoadError::CacheDir` naming it.
    pub fn disk_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Bounds the compile caches: at most `memory` bytes of compiled code
    /// kept in memory (default 512 MiB), at most `disk` bytes of entries in
    /// the disk cache (default 2 GiB). The least recently used component,
    /// the oldest entry, go first.
    pub fn cache_budgets(mut self, memory: u64, disk: u64) -> Self {
        self.cache_budgets = (Some(memory), Some(disk));
        self
    }

    /// Refuses component inputs larger than `bytes`.
    pub fn max_component_bytes(mut self, bytes: u64) -> Self {
        self.max_component_bytes = Some(bytes);
        self
    }

    /// The host functions components may import (default: the reference
    /// functions of `wit/host.wit`, [`AsyncHostRegistry::with_reference_functions`]).
    pub fn host_functions(mut self, registry: AsyncHostRegistry<T>) -> Self {
        self.host = Some(registry);
        self
    }

    /// Adds imports to the linker: `bindgen!`-generated ones (give their
    /// `add_to_linker` [`StoreState::import_host`] as the getter) or
    /// hand-written ones, resources included (keep a `ResourceTable` in `T`).
    /// A hand-written function reaches its state through
    /// `StoreState::import_host(store.data_mut())` too: that call marks where
    /// the function's own work begins, so it is counted and timed in the
    /// report, an async one is covered by the deadline while it waits, and
    /// its errors are `host-error`. A panic in any linked function ends that
    /// call only (`host-panic`). A synchronous function that blocks its
    /// thread cannot be interrupted: make slow imports async.
    pub fn link(mut self, add: impl FnOnce(&mut HostLinker<T>) -> wasmtime::Result<()> + Send + 'static) -> Self {
        self.links.push(Box::new(add));
        self
    }

    /// Compiles components the caches do not hold in a child process run as
    /// `worker` describes (for the `wasm-runtime` binary:
    /// `CompileWorker::new(path_to_wasm_runtime, ["__compile-worker"])`),
    /// killed past the policy's `[compile] max-compile-time` and limited to
    /// its `max-compile-memory`; past either the load fails
    /// `compile-limit-exceeded`. Without it (the default) Cranelift runs in
    /// this process. Ignored with [`unstable_engine_config`](Self::unstable_engine_config),
    /// whose settings a worker cannot reproduce.
    pub fn compile_worker(mut self, worker: CompileWorker) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Lets at most `max_waiting` async calls wait for an instance slot, each
    /// at most `timeout`, before they fail with [`RuntimeError::Busy`].
    pub fn queue(mut self, max_waiting: usize, timeout: Duration) -> Self {
        self.queue = Some((max_waiting, timeout));
        self
    }

    /// Tells `observer` of every call's and instantiation's outcome (see
    /// [`CallMetrics`] for one that counts).
    pub fn observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// **Unstable.** Changes the wasmtime configuration after the runtime
    /// made it from the policy, for options the runtime has no setting for
    /// (profiling, debug info, Cranelift flags). Turning off what the runtime
    /// relies on (fuel, epoch interruption, the component model) breaks its
    /// limits; what this accepts may change with any wasmtime upgrade.
    pub fn unstable_engine_config(mut self, configure: impl Fn(&mut wasmtime::Config) + Send + 'static) -> Self {
        self.engine_hook = Some(Box::new(configure));
        self
    }

    /// Shares `other`'s engine (with its policy and pool), compile caches
    /// and compile worker, and admission (its instance slots and queue):
    /// runtimes for different kinds of actor, each with its own state type
    /// `T`, host functions and observer, run on one engine and one pool.
    /// Settings of those shared parts ([`policy`](Self::policy),
    /// [`allocation`](Self::allocation), caches, the largest component, the
    /// queue, the compile worker, the engine hook) are refused with it.
    pub fn sharing<U>(mut self, other: &Runtime<U>) -> Self {
        self.sharing = Some(other.parts());
        self
    }

    /// The runtime: creates the engine and starts its epoch ticker.
    pub fn build(self) -> Result<Runtime<T>, RuntimeError> {
        let (parts, links, host, observer) = match self.sharing {
            Some(parts) => {
                let set = [
                    ("policy", self.policy.is_some()),
                    ("allocation", self.allocation.is_some()),
                    ("disk_cache", self.cache_dir.is_some()),
                    ("cache_budgets", self.cache_budgets != (None, None)),
                    ("max_component_bytes", self.max_component_bytes.is_some()),
                    ("queue", self.queue.is_some()),
                    ("compile_worker", self.worker.is_some()),
                    ("unstable_engine_config", self.engine_hook.is_some()),
                ];
                if let Some((setting, _)) = set.iter().find(|(_, set)| *set) {
                    let message = format!(
                        "`{setting}` is the shared runtime's: a builder with `sharing` takes its engine, caches and admission as they are"
                    );
                    return Err(RuntimeError::Usage { message });
                }
                (parts, self.links, self.host, self.observer)
            }
            None => {
                let (links, host, observer) = (self.links, self.host, self.observer);
                let built = Self::parts_of(
                    self.policy.unwrap_or_default(),
                    self.allocation.unwrap_or_default(),
                    (self.cache_dir, self.cache_budgets, self.max_component_bytes),
                    self.queue,
                    (self.engine_hook, self.worker),
                )?;
                (built, links, host, observer)
            }
        };
        let Parts { engine, loader, executor, quotas } = parts;
        let host = host.unwrap_or_else(AsyncHostRegistry::with_reference_functions);
        let mut linker = host.linker(engine.engine())?;
        let wasi_error = |error: wasmtime::Error| RuntimeError::Internal {
            message: format!("cannot add WASI to the linker: {error:#}"),
        };
        runtime_wasi::add_wasi_to_linker(&mut linker).map_err(wasi_error)?;
        // WASI 0.3's host functions are concurrent: only an engine with
        // component-model async takes them.
        if engine.policy().component_model_async() {
            runtime_wasi::add_wasi_p3_to_linker(&mut linker).map_err(wasi_error)?;
        }
        for add in links {
            add(&mut linker)
                .map_err(|error| RuntimeError::Internal { message: format!("cannot link the imports: {error:#}") })?;
        }
        let shared = component::Shared { executor, observer };
        Ok(Runtime { engine, loader, linker, shared, quotas })
    }

    /// A new engine with its caches and admission.
    fn parts_of(
        policy: HostPolicy,
        allocation: Allocation,
        (cache_dir, cache_budgets, max_component_bytes): CacheSettings,
        queue: Option<(usize, Duration)>,
        (engine_hook, worker): (Option<EngineHook>, Option<CompileWorker>),
    ) -> Result<Parts, RuntimeError> {
        let hooked = engine_hook.is_some();
        let engine = match engine_hook {
            Some(configure) => RuntimeEngine::with_config(policy, allocation, configure)?,
            None => RuntimeEngine::new(policy, allocation)?,
        };
        let mut loader = ComponentLoader::new(engine.clone());
        if let (Some(bytes), _) = cache_budgets {
            loader = loader.with_memory_cache_budget(bytes);
        }
        match (cache_dir, cache_budgets.1) {
            (Some(dir), Some(bytes)) => loader = loader.with_disk_cache_budget(dir, bytes),
            (Some(dir), None) => loader = loader.with_disk_cache(dir),
            (None, _) => {}
        }
        if let Some(bytes) = max_component_bytes {
            loader = loader.with_max_bytes(bytes);
        }
        // A directory that is a file, read-only, another user's or writable
        // by others fails here, naming it, not later as a compile failure.
        if let Some(disk) = loader.disk_cache() {
            disk.check_dir()?;
        }
        // A worker builds its engine from the policy alone: with an engine
        // hook its code would not fit this engine, so the hook's runtime
        // compiles in process.
        if let Some(worker) = worker.filter(|_| !hooked) {
            loader = loader.with_compile_worker(worker);
        }
        let concurrent = concurrent_instances(engine.policy());
        let (max_waiting, timeout) = queue.unwrap_or((DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT));
        let executor = runtime_async::AsyncExecutor::new(concurrent).with_queue(max_waiting, timeout);
        Ok(Parts { engine, loader: Arc::new(loader), executor, quotas: Quotas::default() })
    }
}

/// What runtimes built with [`RuntimeBuilder::sharing`] share.
#[derive(Clone)]
struct Parts {
    engine: RuntimeEngine,
    loader: Arc<ComponentLoader>,
    executor: runtime_async::AsyncExecutor,
    /// Each component's quota by name, kept across reloads.
    quotas: Quotas,
}

type Quotas = Arc<std::sync::Mutex<std::collections::HashMap<Arc<str>, runtime_async::ComponentQuota>>>;

/// Loads components and runs them under the limits of their manifests. `T`
/// is the embedder's state of each instance.
pub struct Runtime<T: 'static = ()> {
    engine: RuntimeEngine,
    loader: Arc<ComponentLoader>,
    linker: HostLinker<T>,
    shared: component::Shared,
    quotas: Quotas,
}

impl<T> Runtime<T> {
    fn parts(&self) -> Parts {
        Parts {
            engine: self.engine.clone(),
            loader: self.loader.clone(),
            executor: self.shared.executor.clone(),
            quotas: self.quotas.clone(),
        }
    }

    /// The quota of the component named `name`: the one an earlier load of
    /// it has (made `instances` if its `resources.instances` changed), so a
    /// reload never gives a component a second quota beside its live
    /// instances.
    fn quota_of(&self, name: &Arc<str>, instances: u32) -> runtime_async::ComponentQuota {
        let fresh = || runtime_async::ComponentQuota::new(name.clone(), instances, &self.shared.executor);
        let Ok(mut quotas) = self.quotas.lock() else { return fresh() };
        match quotas.get(name) {
            Some(quota) => {
                // A changed quota changes for the old load's clones too:
                // its live instances still count.
                quota.resize(instances);
                quota.clone()
            }
            None => {
                let quota = fresh();
                quotas.insert(name.clone(), quota.clone());
                quota
            }
        }
    }
}

impl<T> std::fmt::Debug for Runtime<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the default policy and pooling allocation, for
    /// instances without host state; `RuntimeBuilder::<T>::new()` for
    /// instances with state `T`.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }
}

impl<T: Send + 'static> Runtime<T> {
    /// The policy the runtime enforces.
    pub fn policy(&self) -> &HostPolicy {
        self.engine.policy()
    }

    /// The wasmtime engine (for `bindgen!` and pooling metrics).
    pub fn wasmtime_engine(&self) -> &wasmtime::Engine {
        self.engine.engine()
    }

    /// The loader, for inspecting and evicting its caches.
    pub fn loader(&self) -> &ComponentLoader {
        &self.loader
    }

    /// Instance slots free now.
    pub fn available_slots(&self) -> usize {
        self.shared.executor.available_slots()
    }

    /// Reads the manifest at `manifest_path`, validates it against the
    /// policy, and loads the component its `wasm` key names (relative to the
    /// manifest's directory).
    pub fn load(&self, manifest_path: impl AsRef<Path>) -> Result<LoadedComponent<T>, RuntimeError> {
        let manifest_path = manifest_path.as_ref();
        let span = tracing::info_span!("load", path = %manifest_path.display());
        let _entered = span.enter();
        let (manifest, checked, wasm) = compile_from_manifest(&self.loader, self.engine.policy(), manifest_path)?;
        self.link(checked, &manifest, manifest_dir(manifest_path), &program_name(&wasm))
    }

    /// Loads the component file (`.wasm` or `.wat`) at `path` under
    /// `manifest`'s limits and grants; relative directories it grants are
    /// resolved against `grants_dir` (the manifest's directory, usually;
    /// `.` for the current directory).
    pub fn load_file(
        &self,
        path: impl AsRef<Path>,
        manifest: &ComponentManifest,
        grants_dir: impl AsRef<Path>,
    ) -> Result<LoadedComponent<T>, RuntimeError> {
        let path = path.as_ref();
        let span = tracing::info_span!("load", path = %path.display());
        let _entered = span.enter();
        let limits = self.limits(manifest)?;
        let compiled = self.loader.load_file_within(path, Some(&limits))?;
        self.link(Checked { compiled, limits }, manifest, grants_dir.as_ref(), &program_name(path))
    }

    /// Loads a component binary or WAT text under `manifest`'s limits.
    pub fn load_bytes(&self, bytes: &[u8], manifest: &ComponentManifest) -> Result<LoadedComponent<T>, RuntimeError> {
        let span = tracing::info_span!("load", bytes = bytes.len());
        let _entered = span.enter();
        let limits = self.limits(manifest)?;
        let compiled = self.loader.load_bytes_within(bytes, Some(&limits))?;
        self.link(Checked { compiled, limits }, manifest, Path::new("."), "component")
    }

    /// The limits `manifest` gives each instance under this runtime's policy.
    fn limits(&self, manifest: &ComponentManifest) -> Result<ResourceLimits, RuntimeError> {
        Ok(ResourceLimits::new(&manifest.resources, self.engine.policy())?)
    }

    /// Like [`load`](Self::load), reading and compiling on Tokio's blocking pool.
    pub async fn load_async(&self, manifest_path: impl AsRef<Path>) -> Result<LoadedComponent<T>, RuntimeError> {
        let manifest_path = manifest_path.as_ref().to_owned();
        let policy = self.engine.policy().clone();
        let loader = self.loader.clone();
        let path = manifest_path.clone();
        let (manifest, checked, wasm) =
            runtime_async::run_blocking(move || compile_from_manifest(&loader, &policy, &path)).await?;
        self.link(checked, &manifest, manifest_dir(&manifest_path), &program_name(&wasm))
    }

    /// Like [`load_bytes`](Self::load_bytes), compiling on Tokio's blocking pool.
    pub async fn load_bytes_async(
        &self,
        bytes: Vec<u8>,
        manifest: &ComponentManifest,
    ) -> Result<LoadedComponent<T>, RuntimeError> {
        let loader = self.loader.clone();
        let limits = self.limits(manifest)?;
        let checked = runtime_async::run_blocking(move || {
            let compiled = loader.load_bytes_within(&bytes, Some(&limits))?;
            Ok(Checked { compiled, limits })
        })
        .await?;
        self.link(checked, manifest, Path::new("."), "component")
    }

    /// Binds the compiled component to `manifest`'s limits (checked against
    /// this runtime's policy before loading) and grants; `base_dir` is where
    /// relative granted directories live, `program_name` is argv\[0\].
    fn link(
        &self,
        Checked { compiled, limits }: Checked,
        manifest: &ComponentManifest,
        base_dir: &Path,
        program_name: &str,
    ) -> Result<LoadedComponent<T>, RuntimeError> {
        let started = Instant::now();
        // The runtime's own policy is the last gate, whatever policy the
        // manifest was parsed or built with.
        let policy = self.engine.policy();
        if let Some((grant, policy_key)) = policy.grant_refusals(&manifest.wasi).into_iter().next() {
            return Err(LoadError::GrantRefused { grant, policy_key }.into());
        }
        let grants = WasiGrants::resolve(&manifest.wasi, base_dir, policy.grants())?.with_program_name(program_name);
        let core = runtime_core::LoadedComponent::new(&self.engine, compiled, &self.linker, limits)?
            .with_capabilities(grants.into_capabilities());
        // Every function this runtime's linker provides may be async (host
        // registry and WASI), so a component that imports any needs the
        // async entry points, and so does one with async exports.
        let requires_async = core.has_imports() || core.has_async_exports();
        let core = core.requiring_async(requires_async);
        let name: Arc<str> = manifest.component.name.as_str().into();
        tracing::debug!(component = %name, link_us = started.elapsed().as_micros() as u64, "linked");
        let quota = self.quota_of(&name, core.limits().instances());
        let base_dir = Arc::from(base_dir);
        let grant_policy = *policy.grants();
        Ok(LoadedComponent { core, shared: self.shared.clone(), name, quota, base_dir, grant_policy })
    }
}

/// Descriptors the host keeps for itself beside its guests' (its own files,
/// the cache, listeners).
const HOST_DESCRIPTORS: u64 = 64;

/// Raises this process's soft limit on open descriptors to its hard limit
/// (Unix; `ulimit -n` is often 1,024 while the hard limit is far higher) and
/// returns the soft limit now in force, or `None` where there is none to read.
fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The instances that may run at once: the policy's figure, unless every
/// one holding its descriptor cap would take more descriptors than the
/// process may open (then one guest's opens could fail another's, or the
/// host's own, with "too many open files"). A policy that left the figure
/// at its default gets as many as fit, quietly; one that set it is warned
/// and kept to its word.
fn concurrent_instances(policy: &HostPolicy) -> u32 {
    let wanted = policy.max_concurrent_instances();
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let per_instance = u64::from(policy.grants().max_descriptors).max(1);
        let fit = u32::try_from(soft.saturating_sub(HOST_DESCRIPTORS) / per_instance).unwrap_or(u32::MAX).max(1);
        if fit < wanted && wanted == HostPolicy::default().max_concurrent_instances() {
            tracing::debug!(fit, limit = soft, "concurrent instances fitted to the descriptor limit");
            return fit;
        }
        if fit < wanted {
            tracing::warn!(
                needed = u64::from(wanted) * per_instance + HOST_DESCRIPTORS,
                limit = soft,
                "{wanted} concurrent instances x {per_instance} descriptors each (+{HOST_DESCRIPTORS} for the host) exceed this process's descriptor limit: raise it (`ulimit -n`, or runtime::cli_support::raise_descriptor_limit), or lower `concurrent-instances` or `[grants] max-descriptors` in the policy",
            );
        }
    }
    wanted
}

/// A compiled component and the limits, under the runtime's own policy, it
/// was loaded within: computed once, before loading, and bound at `link`.
struct Checked {
    compiled: runtime_core::CompiledComponent,
    limits: ResourceLimits,
}

/// Reads and validates the manifest at `manifest_path`, then compiles the
/// component its `wasm` key names, relative to the manifest's directory.
fn compile_from_manifest(
    loader: &ComponentLoader,
    policy: &HostPolicy,
    manifest_path: &Path,
) -> Result<(ComponentManifest, Checked, PathBuf), RuntimeError> {
    let manifest = ComponentManifest::from_path_with_policy(manifest_path, policy)?;
    let wasm = manifest
        .component
        .wasm
        .as_ref()
        .ok_or_else(|| LoadError::NoComponentPath { manifest: manifest_path.to_owned() })?;
    let wasm = wasm.resolve(manifest_dir(manifest_path));
    let limits = ResourceLimits::new(&manifest.resources, policy)?;
    let compiled = loader.load_file_within(&wasm, Some(&limits))?;
    Ok((manifest, Checked { compiled, limits }, wasm))
}

/// The directory holding a manifest: what its relative paths are relative to.
fn manifest_dir(manifest_path: &Path) -> &Path {
    match manifest_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// argv\[0\] of a component loaded from `path`: its file name.
fn program_name(path: &Path) -> String {
    path.file_name().map_or_else(|| "component".to_owned(), |name| name.to_string_lossy().into_owned())
}
