//! The call kernel: call compiled components under the limits of their
//! manifest, with typed crash reports. Components come compiled from
//! runtime-loader (re-exported here: [`RuntimeEngine`], [`ComponentLoader`]).
//!
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

mod capabilities;
mod classify;
mod component;
mod crash;
mod error;
mod host;
mod instance;
mod report;
mod store;
mod typecheck;

pub use capabilities::{Capabilities, CapabilityDenied, StoreExtension};
pub use component::{ExportSignature, LoadedComponent};
pub use crash::{CrashKind, CrashReport, DeadlinePhase};
pub use error::{PoisonCause, RuntimeError};
pub use host::{HostFunctionError, panic_message};
pub use instance::{CallOutcome, ComponentInstance, StoreFuture, TypedExport, TypedOutcome};
pub use report::{CallReport, DiskUsage};
pub use runtime_limits::Deadline;
pub use store::{CallProgress, HostFunction, HostMemoryExceeded, StoreState};
// The loader's names, for the layers above that reach them through here.
pub use runtime_loader::{
    Allocation, CACHE_BUDGET_ENV, CacheDirProblem, CacheSource, CacheState, CompileWorker, CompiledComponent,
    ComponentLoader, ContentHash, DEFAULT_DISK_CACHE_BYTES, DEFAULT_MAX_COMPONENT_BYTES, DEFAULT_MEMORY_CACHE_BYTES,
    DeclaredFigures, DiskCache, LoadError, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT,
    MAX_TABLES_PER_COMPONENT, MEMORIES_PER_SLOT, RuntimeEngine, STALE_TEMPORARY, TABLES_PER_SLOT, check_cache_dir,
    compile_worker_main, component_binary, declared_figures, engine_config,
};

/// The result type of this crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
