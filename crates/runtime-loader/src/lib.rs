//! Components from bytes to compiled code, and the engine that compiles
//! them: the loader knows nothing of stores, calls or WASI.
//!
//! - [`RuntimeEngine`]: the one engine, configured once (component model,
//!   fuel, epoch interruption, pooling allocator sized from the policy), with
//!   its epoch ticker.
//! - [`ComponentLoader`]: sniffs, caps, validates and compiles (in a
//!   [`CompileWorker`] process when one is set); caches by content hash in
//!   memory and on disk ([`DiskCache`]), each entry bound to its key.
//! - [`LoadError`]: why a component could not be loaded, with its kind.
//!
//! ```
//! use runtime_loader::{Allocation, CacheSource, ComponentLoader, LoadError, RuntimeEngine};
//! use runtime_manifest::HostPolicy;
//!
//! let engine = RuntimeEngine::new(HostPolicy::default(), Allocation::OnDemand)?;
//! let loader = ComponentLoader::new(engine);
//! let compiled = loader.load_bytes(b"(component)")?;
//! assert_eq!(compiled.source, CacheSource::Compiled);
//! // The same bytes again come from the memory cache.
//! assert_eq!(loader.load_bytes(b"(component)")?.source, CacheSource::Memory);
//! // A core module is not a component.
//! let refused = loader.load_bytes(b"(module)").unwrap_err();
//! assert!(matches!(refused, LoadError::NotAComponent));
//! assert_eq!(refused.kind(), "not-a-component");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod cache;
mod engine;
mod error;
mod loader;
mod sniff;
mod worker;

pub use cache::{
    CacheDirProblem, CacheSource, ContentHash, DEFAULT_DISK_CACHE_BYTES, DEFAULT_MEMORY_CACHE_BYTES, DiskCache,
    STALE_TEMPORARY, check_cache_dir,
};
pub use engine::RuntimeEngine;
// The engine settings that are limits, which the engine is built from.
pub use error::{BudgetOver, LoadError};
pub use loader::{CacheState, CompiledComponent, ComponentLoader, DEFAULT_MAX_COMPONENT_BYTES};
pub use runtime_limits::{
    Allocation, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
    MEMORIES_PER_SLOT, TABLES_PER_SLOT, engine_config,
};
pub use sniff::{DeclaredFigures, component_binary, declared_figures};
pub use worker::{CACHE_BUDGET_ENV, CompileWorker, compile_worker_main};
