//! The synchronous core of the runtime: load components and call them under
//! the limits of their manifest, with typed crash reports.
//!
//! - [`RuntimeEngine`]: the one engine, configured once (component model,
//!   fuel, epoch interruption, pooling allocator sized from the policy), with
//!   its epoch ticker.
//! - [`ComponentLoader`]: sniffs, caps, validates and compiles; caches by
//!   content hash in memory and on disk.
//! - [`LoadedComponent`]: linked once, called in a fresh store per call;
//!   [`ComponentInstance`] for stateful guests.
//! - [`RuntimeError`], [`CrashKind`], [`CrashReport`] and [`CallReport`].
//!
//! ```
//! use runtime_core::{Allocation, ComponentLoader, CrashKind, LoadedComponent, RuntimeEngine, StoreState};
//! use runtime_limits::ResourceLimits;
//! use runtime_manifest::{ComponentManifest, HostPolicy};
//! use wasmtime::component::{Linker, Val};
//!
//! let engine = RuntimeEngine::new(HostPolicy::default(), Allocation::OnDemand)?;
//! let loader = ComponentLoader::new(engine.clone());
//! let compiled = loader.load_bytes(br#"(component
//!   (core module $m (func (export "spin") (loop $l (br $l))))
//!   (core instance $i (instantiate $m))
//!   (func (export "spin") (canon lift (core func $i "spin"))))"#)?;
//! let manifest: ComponentManifest = "[component]\nname = \"spin\"\nversion = \"0.1.0\"\n\
//!     [resources]\nmemory = \"1MiB\"\nfuel = 100_000\ntimeout = \"10s\"\n".parse()?;
//! let limits = ResourceLimits::new(&manifest.resources, engine.policy())?;
//! let component = LoadedComponent::new(&engine, compiled, &Linker::<StoreState>::new(engine.engine()), limits)?;
//!
//! let error = component.call("spin", &[]).unwrap_err();
//! let crash = error.crash().ok_or("a crash")?;
//! assert_eq!(crash.kind, CrashKind::OutOfFuel);
//! assert_eq!(crash.report.fuel_consumed, 100_000);
//! # let _ = Val::Bool(true);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod cache;
mod classify;
mod component;
mod crash;
mod engine;
mod error;
mod grant_dir;
mod grants;
mod host;
mod instance;
mod loader;
mod report;
mod sniff;
mod store;
mod typecheck;
#[cfg(feature = "wasi")]
mod wasi;
mod worker;

pub use cache::{
    CacheDirProblem, CacheSource, ContentHash, DEFAULT_DISK_CACHE_BYTES, DEFAULT_MEMORY_CACHE_BYTES, DiskCache,
    STALE_TEMPORARY, check_cache_dir,
};
pub use component::{ExportSignature, LoadedComponent};
pub use crash::{CrashKind, CrashReport, DeadlinePhase};
pub use engine::{
    Allocation, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
    MEMORIES_PER_SLOT, RuntimeEngine, TABLES_PER_SLOT, engine_config,
};
pub use error::{LoadError, RuntimeError};
pub use grants::{CapabilityDenied, WasiGrants};
pub use host::{HostFunctionError, panic_message};
pub use instance::{CallOutcome, ComponentInstance, StoreFuture, TypedExport, TypedOutcome};
pub use loader::{CacheState, CompiledComponent, ComponentLoader, DEFAULT_MAX_COMPONENT_BYTES};
pub use report::{CallReport, DiskUsage};
pub use runtime_limits::Deadline;
pub use sniff::{DeclaredFigures, component_binary, declared_figures};
pub use store::{CallProgress, HostFunction, StoreState};
#[cfg(feature = "wasi")]
pub use wasi::{
    DEADLINE_HEADER, HOPS_HEADER, MAX_CAPTURED_OUTPUT_BYTES, MAX_DEBUG_STRING_BYTES, MAX_HOPS,
    MAX_OUTGOING_REQUESTS_PER_PROCESS, MAX_QUEUED_OUTPUT_BYTES, MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS, MAX_WASI_OBJECTS,
    add_wasi_to_linker, flush_inherited_output,
};
pub use worker::{CACHE_BUDGET_ENV, CompileWorker, compile_worker_main};

/// The result type of this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
