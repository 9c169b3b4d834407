//! Resource limits of one component instance, enforced through wasmtime.
//!
//! - [`ResourceLimits`]: what a validated manifest grants under a [`HostPolicy`],
//!   checked against that policy once more.
//! - [`InstanceBudget`]: a wasmtime `ResourceLimiter` that caps the SUM of all
//!   linear memories of an instance (wasmtime's own `StoreLimits` caps each
//!   memory separately) and its table elements, records every denial and
//!   tracks current and peak usage.
//! - [`EpochTicker`] and [`Deadline`]: one ticker thread per engine advances
//!   the epoch; a per-call deadline interrupts the guest once its instant passes.
//! - [`clock`]: the cheap clock calls and deadlines are timed with.
//! - Fuel: [`ResourceLimits::fuel`] per call, and [`fuel_consumed`].
//! - [`engine_config`]: the engine settings that are limits (fuel, epochs,
//!   the pool sized from the policy), which the one engine is built from.
//!
//! ```
//! use runtime_limits::{InstanceBudget, ResourceLimits};
//! use runtime_manifest::{ComponentManifest, HostPolicy};
//! use wasmtime::ResourceLimiter as _;
//!
//! let manifest: ComponentManifest = "[component]\nname = \"a\"\nversion = \"0.1.0\"\n\
//!     [resources]\nmemory = \"1MiB\"\nfuel = 1_000\ntimeout = \"10ms\"\n".parse()?;
//! let limits = ResourceLimits::new(&manifest.resources, &HostPolicy::default())?;
//! let mut budget = InstanceBudget::new(&limits);
//! // Two memories of 512KiB fit the 1MiB budget; a third byte more does not.
//! assert!(budget.memory_growing(0, 512 * 1024, None)?);
//! assert!(budget.memory_growing(0, 512 * 1024, None)?);
//! assert!(!budget.memory_growing(0, 64 * 1024, None)?);
//! assert_eq!(budget.usage().peak_memory_bytes, 1024 * 1024);
//! assert_eq!(budget.denials().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod budget;
pub mod clock;
mod engine_config;
mod epoch;
mod limits;

pub use budget::{Denial, InstanceBudget, LimitedResource, Usage};
pub use engine_config::{
    Allocation, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
    MEMORIES_PER_SLOT, TABLES_PER_SLOT, engine_config,
};
pub use epoch::{Deadline, DeadlineSource, EPOCH_TICK, EpochTicker};
pub use limits::{Error, ResourceLimits, fuel_consumed};
pub use runtime_manifest::HostPolicy;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
