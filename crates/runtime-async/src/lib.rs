//! Tokio execution of components: many calls at once, each bounded by one
//! deadline, cancellable, calling async host functions, and unable to hurt
//! the host when one of those panics.
//!
//! - [`AsyncExecutor`]: admission (at most `max_concurrent` instances alive,
//!   a bounded queue, then `busy`), one deadline per call covering
//!   instantiation, guest code and blocked host calls, cancellation by
//!   dropping the future or by a [`CancellationToken`].
//! - [`AsyncHostRegistry`]: async host functions registered against WIT
//!   interfaces, counted, timed and wrapped in a panic boundary; the
//!   reference functions of `wit/host.wit` (log, sleep, key-value), each
//!   answering only a manifest that names it in `[wasi] host-functions`.
//!
//! This is the only crate of the runtime that names tokio.
//!
//! ```
//! use runtime_async::{AsyncExecutor, AsyncHostRegistry, TIME_INTERFACE};
//! use runtime_core::{Allocation, Capabilities, ComponentLoader, CrashKind, DeadlinePhase, LoadedComponent, RuntimeEngine};
//! use runtime_limits::ResourceLimits;
//! use runtime_manifest::{ComponentManifest, HostPolicy};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let engine = RuntimeEngine::new(HostPolicy::default(), Allocation::OnDemand)?;
//! let linker = AsyncHostRegistry::with_reference_functions().linker(engine.engine())?;
//! // A guest that asks the host to sleep for ten seconds.
//! let wat = format!(r#"(component
//!   (import "{TIME_INTERFACE}" (instance $time (export "sleep" (func (param "ms" u32)))))
//!   (core func $sleep (canon lower (func $time "sleep")))
//!   (core module $m (import "host" "sleep" (func $sleep (param i32)))
//!     (func (export "run") (call $sleep (i32.const 10000))))
//!   (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
//!   (func (export "run") (canon lift (core func $i "run"))))"#);
//! let compiled = ComponentLoader::new(engine.clone()).load_bytes(wat.as_bytes())?;
//! let manifest: ComponentManifest = "[component]\nname = \"sleepy\"\nversion = \"0.1.0\"\n\
//!     [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"50ms\"\n\
//!     [wasi]\nhost-functions = [\"time\"]\n".parse()?;
//! let limits = ResourceLimits::new(&manifest.resources, engine.policy())?;
//! let capabilities = Capabilities::new(manifest.wasi.host_functions.clone(), None);
//! let component = LoadedComponent::new(&engine, compiled, &linker, limits)?.with_capabilities(capabilities);
//!
//! let error = AsyncExecutor::new(10).call(&component, (), "run", &[], None).await.unwrap_err();
//! let crash = error.crash().ok_or("a crash")?;
//! assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: DeadlinePhase::HostCall });
//! assert_eq!(crash.report.host_calls, 1, "the sleep, counted when it was abandoned");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod executor;
mod reference;
mod registry;

pub use executor::{
    Admission, AsyncExecutor, ComponentQuota, DEFAULT_MAX_QUEUED, DEFAULT_QUEUE_TIMEOUT, QuotaPermit, add_queue_wait,
};
pub use reference::{
    KV_CAPACITY_BYTES, KV_INTERFACE, LOG_INTERFACE, Level, MAX_KV_KEY_BYTES, MAX_LOG_MESSAGE_BYTES, TIME_INTERFACE,
};
pub use registry::{AsyncHostRegistry, HostFuture};
pub use tokio_util::sync::CancellationToken;

/// Runs blocking work (reading and compiling a component) on Tokio's blocking
/// pool, so that no async worker is held up by it.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, runtime_core::RuntimeError> + Send + 'static,
) -> Result<T, runtime_core::RuntimeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| runtime_core::RuntimeError::Internal { message: format!("blocking task failed: {error}") })?
}
