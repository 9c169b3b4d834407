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
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use runtime_async::{
    AsyncExecutor, AsyncHostRegistry, CancellationToken, DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT, HostFuture,
    KV_INTERFACE, LOG_INTERFACE, TIME_INTERFACE,
};
#[cfg(feature = "wasi")]
pub use runtime_core::MAX_CAPTURED_OUTPUT_BYTES;
pub use runtime_core::{
    Allocation, CacheSource, CacheState, CallOutcome, CallReport, ComponentInstance, ComponentLoader, CrashKind,
    CrashReport, DeadlinePhase, ExportSignature, LoadError, LoadedComponent, RuntimeEngine, RuntimeError, StoreState,
    WasiGrants,
};
pub use runtime_core::{
    CallProgress, ContentHash, DeclaredFigures, HostFunctionError, component_binary, declared_figures, engine_config,
};
pub use runtime_limits::{Error as LimitsError, ResourceLimits, Usage};
pub use runtime_manifest::{
    self as manifest, ByteSize, ComponentManifest, DirGrant, DirMode, Error as ManifestError, Fuel, GrantPolicy,
    HostPolicy, HttpGrant, HttpOrigin, LimitFlags, ManifestProblem, NetworkGrant, Resources, Stdin, Stdio, Timeout,
    WasiConfig,
};
pub use wasmtime;
pub use wasmtime::component::{Type, Val};

/// Builds a [`Runtime`]: the host policy, the allocation strategy, a disk
/// cache directory, the largest component accepted, the host functions and
/// the admission queue.
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    policy: HostPolicy,
    allocation: Allocation,
    cache_dir: Option<PathBuf>,
    max_component_bytes: Option<u64>,
    host: Option<AsyncHostRegistry>,
    queue: Option<(usize, Duration)>,
}

impl RuntimeBuilder {
    /// The policy manifests are validated against (default: [`HostPolicy::default`]).
    pub fn policy(mut self, policy: HostPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Pooling (default) or on-demand allocation.
    pub fn allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// Caches compiled components in `dir` as well as in memory. The
    /// directory must not be writable by untrusted parties.
    pub fn disk_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Refuses component inputs larger than `bytes`.
    pub fn max_component_bytes(mut self, bytes: u64) -> Self {
        self.max_component_bytes = Some(bytes);
        self
    }

    /// The host functions components may import (default: the reference
    /// functions of `wit/host.wit`, [`AsyncHostRegistry::with_reference_functions`]).
    pub fn host_functions(mut self, registry: AsyncHostRegistry) -> Self {
        self.host = Some(registry);
        self
    }

    /// Lets at most `max_waiting` async calls wait for an instance slot, each
    /// at most `timeout`, before they fail with [`RuntimeError::Busy`].
    pub fn queue(mut self, max_waiting: usize, timeout: Duration) -> Self {
        self.queue = Some((max_waiting, timeout));
        self
    }

    /// The runtime: creates the engine and starts its epoch ticker.
    pub fn build(self) -> Result<Runtime, RuntimeError> {
        let engine = RuntimeEngine::new(self.policy, self.allocation)?;
        let mut loader = ComponentLoader::new(engine.clone());
        if let Some(dir) = self.cache_dir {
            loader = loader.with_disk_cache(dir);
        }
        if let Some(bytes) = self.max_component_bytes {
            loader = loader.with_max_bytes(bytes);
        }
        let host = self.host.unwrap_or_else(AsyncHostRegistry::with_reference_functions);
        #[cfg_attr(not(feature = "wasi"), expect(unused_mut, reason = "only WASI adds to the linker here"))]
        let mut linker = host.linker(engine.engine())?;
        #[cfg(feature = "wasi")]
        runtime_core::add_wasi_to_linker(&mut linker)
            .map_err(|error| RuntimeError::Internal { message: format!("cannot add WASI to the linker: {error:#}") })?;
        let (max_waiting, timeout) = self.queue.unwrap_or((DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT));
        let executor = AsyncExecutor::new(engine.policy().max_concurrent_instances()).with_queue(max_waiting, timeout);
        Ok(Runtime { engine, loader: Arc::new(loader), linker, executor })
    }
}

/// Loads components and runs them under the limits of their manifests.
pub struct Runtime {
    engine: RuntimeEngine,
    loader: Arc<ComponentLoader>,
    linker: wasmtime::component::Linker<StoreState>,
    executor: AsyncExecutor,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("engine", &self.engine).finish_non_exhaustive()
    }
}

impl Runtime {
    /// A builder with the default policy and pooling allocation.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The engine and its policy.
    pub fn engine(&self) -> &RuntimeEngine {
        &self.engine
    }

    /// The loader, for inspecting its caches.
    pub fn loader(&self) -> &ComponentLoader {
        &self.loader
    }

    /// Reads the manifest at `manifest_path`, validates it against the
    /// policy, and loads the component its `wasm` key names (relative to the
    /// manifest's directory).
    pub fn load(&self, manifest_path: impl AsRef<Path>) -> Result<LoadedComponent, RuntimeError> {
        let manifest_path = manifest_path.as_ref();
        let (manifest, compiled, wasm) = compile_from_manifest(&self.loader, self.engine.policy(), manifest_path)?;
        self.link(compiled, &manifest, manifest_dir(manifest_path), &program_name(&wasm))
    }

    /// Loads the component file (`.wasm` or `.wat`) at `path` under
    /// `manifest`'s limits and grants; relative directories it grants are
    /// resolved against the current directory.
    pub fn load_file(
        &self,
        path: impl AsRef<Path>,
        manifest: &ComponentManifest,
    ) -> Result<LoadedComponent, RuntimeError> {
        let path = path.as_ref();
        let compiled = self.loader.load_file(path)?;
        self.link(compiled, manifest, Path::new("."), &program_name(path))
    }

    /// Like [`load_file`](Self::load_file), resolving relative granted
    /// directories against `grants_dir` (the manifest's directory, usually).
    pub fn load_file_in(
        &self,
        path: impl AsRef<Path>,
        manifest: &ComponentManifest,
        grants_dir: impl AsRef<Path>,
    ) -> Result<LoadedComponent, RuntimeError> {
        let path = path.as_ref();
        let compiled = self.loader.load_file(path)?;
        self.link(compiled, manifest, grants_dir.as_ref(), &program_name(path))
    }

    /// Loads a component binary or WAT text under `manifest`'s limits.
    pub fn load_bytes(&self, bytes: &[u8], manifest: &ComponentManifest) -> Result<LoadedComponent, RuntimeError> {
        let compiled = self.loader.load_bytes(bytes)?;
        self.link(compiled, manifest, Path::new("."), "component")
    }

    /// Calls `export` of `component` in a fresh instance (see [`LoadedComponent::call`]).
    pub fn call(&self, component: &LoadedComponent, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        component.call(export, args)
    }

    /// Like [`load`](Self::load), reading and compiling on Tokio's blocking pool.
    pub async fn load_async(&self, manifest_path: impl AsRef<Path>) -> Result<LoadedComponent, RuntimeError> {
        let manifest_path = manifest_path.as_ref().to_owned();
        let policy = self.engine.policy().clone();
        let loader = self.loader.clone();
        let path = manifest_path.clone();
        let (manifest, compiled, wasm) =
            runtime_async::run_blocking(move || compile_from_manifest(&loader, &policy, &path)).await?;
        self.link(compiled, &manifest, manifest_dir(&manifest_path), &program_name(&wasm))
    }

    /// Like [`load_bytes`](Self::load_bytes), compiling on Tokio's blocking pool.
    pub async fn load_bytes_async(
        &self,
        bytes: Vec<u8>,
        manifest: &ComponentManifest,
    ) -> Result<LoadedComponent, RuntimeError> {
        let loader = self.loader.clone();
        let compiled = runtime_async::run_blocking(move || Ok(loader.load_bytes(&bytes)?)).await?;
        self.link(compiled, manifest, Path::new("."), "component")
    }

    /// Calls `export` in a fresh instance on Tokio: at most
    /// [`HostPolicy::max_concurrent_instances`] calls run at once (others
    /// wait in the queue, then fail with `busy`), one deadline covers the
    /// whole call including blocked host functions, and dropping the future
    /// cancels it.
    pub async fn call_async(
        &self,
        component: &LoadedComponent,
        export: &str,
        args: &[Val],
    ) -> Result<CallOutcome, RuntimeError> {
        self.executor.call(component, export, args, None).await
    }

    /// Like [`call_async`](Self::call_async), also ended with
    /// [`RuntimeError::Cancelled`] when `cancel` is cancelled.
    pub async fn call_async_cancellable(
        &self,
        component: &LoadedComponent,
        export: &str,
        args: &[Val],
        cancel: &CancellationToken,
    ) -> Result<CallOutcome, RuntimeError> {
        self.executor.call(component, export, args, Some(cancel)).await
    }

    /// An instance for several async calls that share state; call it with
    /// [`Runtime::call_instance_async`]. Instantiation runs under the
    /// component's deadline, start functions and host calls included.
    pub async fn instantiate_async(&self, component: &LoadedComponent) -> Result<ComponentInstance, RuntimeError> {
        self.executor.instantiate(component).await
    }

    /// Calls `export` on an instance from [`instantiate_async`](Self::instantiate_async)
    /// with fresh fuel and a fresh deadline that also covers host calls; a
    /// call stopped at its deadline poisons the instance.
    pub async fn call_instance_async(
        &self,
        instance: &mut ComponentInstance,
        component: &LoadedComponent,
        export: &str,
        args: &[Val],
    ) -> Result<CallOutcome, RuntimeError> {
        self.executor.call_instance(instance, component, export, args, None).await
    }

    /// The async executor (slots free, queue settings).
    pub fn executor(&self) -> &AsyncExecutor {
        &self.executor
    }

    /// Binds `compiled` to `manifest`'s limits and grants; `base_dir` is
    /// where relative granted directories live, `program_name` is argv\[0\].
    fn link(
        &self,
        compiled: runtime_core::CompiledComponent,
        manifest: &ComponentManifest,
        base_dir: &Path,
        program_name: &str,
    ) -> Result<LoadedComponent, RuntimeError> {
        let limits = ResourceLimits::new(&manifest.resources, self.engine.policy())?;
        let grants = WasiGrants::resolve(&manifest.wasi, base_dir)?.with_program_name(program_name);
        let component = LoadedComponent::new(&self.engine, compiled, &self.linker, limits)?.with_wasi(grants);
        // Every function this runtime's linker provides is async (host
        // registry and WASI), so a component that imports any needs call_async.
        let requires_async = component.has_imports();
        Ok(component.requiring_async(requires_async))
    }
}

/// Reads and validates the manifest at `manifest_path`, then compiles the
/// component its `wasm` key names, relative to the manifest's directory.
fn compile_from_manifest(
    loader: &ComponentLoader,
    policy: &HostPolicy,
    manifest_path: &Path,
) -> Result<(ComponentManifest, runtime_core::CompiledComponent, PathBuf), RuntimeError> {
    let manifest = ComponentManifest::from_path_with_policy(manifest_path, policy)?;
    let wasm = manifest
        .component
        .wasm
        .as_ref()
        .ok_or_else(|| LoadError::NoComponentPath { manifest: manifest_path.to_owned() })?;
    let wasm = wasm.resolve(manifest_dir(manifest_path));
    let compiled = loader.load_file(&wasm)?;
    Ok((manifest, compiled, wasm))
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
