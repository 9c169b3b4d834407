//! [`StoreState`]: what every store of the runtime carries, and
//! [`CallProgress`]: what a call is doing, readable from outside the store.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use runtime_limits::{Deadline, DeadlineSource, InstanceBudget, ResourceLimits};

use crate::DeadlinePhase;

/// The data of each wasmtime `Store`: the instance's budget, the call's
/// progress, and per-instance state of host functions.
pub struct StoreState {
    /// The memory and table budget, also the store's limiter.
    pub budget: InstanceBudget,
    /// Phase and host-call accounting, shared with whoever awaits the call.
    pub progress: Arc<CallProgress>,
    /// What the guest's stdout and stderr may do (WASI).
    pub stdio: runtime_manifest::Stdio,
    /// The deadline of the call in progress, read by the epoch callback.
    pub deadline: Deadline,
    #[cfg(feature = "wasi")]
    pub(crate) wasi: Option<Box<crate::wasi::WasiState>>,
    extensions: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl std::fmt::Debug for StoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("budget", &self.budget)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl StoreState {
    /// Fresh state for `limits` and a call due by `deadline`, reporting into
    /// `progress`, with the guest's stdout and stderr handled as `stdio` says.
    pub fn new(
        limits: &ResourceLimits,
        deadline: Deadline,
        progress: Arc<CallProgress>,
        stdio: runtime_manifest::Stdio,
    ) -> Self {
        Self {
            budget: InstanceBudget::new(limits),
            progress,
            stdio,
            deadline,
            #[cfg(feature = "wasi")]
            wasi: None,
            extensions: HashMap::new(),
        }
    }

    /// The guest's captured stdout and stderr, when `stdio` is `capture` and
    /// the guest used WASI.
    pub fn captured_output(&self) -> Option<(String, String)> {
        #[cfg(feature = "wasi")]
        {
            self.wasi.as_ref().and_then(|wasi| wasi.captured())
        }
        #[cfg(not(feature = "wasi"))]
        {
            None
        }
    }

    /// Runs `f` on per-instance state of type `T` for host functions,
    /// created with `T::default()` on first use.
    pub fn with_extension<T: Default + Send + 'static, R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        let id = TypeId::of::<T>();
        let mut value: Box<T> = self.extensions.remove(&id).and_then(|b| b.downcast::<T>().ok()).unwrap_or_default();
        let result = f(&mut value);
        self.extensions.insert(id, value);
        result
    }
}

/// What a call is doing and how much host time it used, updated by the call
/// and by host functions and readable while the call runs or after it was
/// abandoned (a timeout or cancellation drops the store, not this).
#[derive(Debug, Default)]
pub struct CallProgress {
    phase: AtomicU8,
    host_calls: AtomicU64,
    host_nanos: AtomicU64,
}

impl CallProgress {
    /// A tracker starting in the instantiation phase.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `progress` made ready for a new call: reset in place when nobody else
    /// holds it (a synchronous call on a live instance), else replaced. Saves
    /// an allocation per warm call.
    pub fn renew(progress: &mut Arc<Self>) {
        match Arc::get_mut(progress) {
            Some(unshared) => *unshared = Self::default(),
            None => *progress = Self::new(),
        }
    }

    /// Records the phase the call entered.
    pub fn enter(&self, phase: DeadlinePhase) {
        let code = match phase {
            DeadlinePhase::Instantiation => 0,
            DeadlinePhase::Guest => 1,
            DeadlinePhase::HostCall => 2,
        };
        self.phase.store(code, Ordering::Release);
    }

    /// The phase the call is in.
    pub fn phase(&self) -> DeadlinePhase {
        match self.phase.load(Ordering::Acquire) {
            0 => DeadlinePhase::Instantiation,
            2 => DeadlinePhase::HostCall,
            _ => DeadlinePhase::Guest,
        }
    }

    /// Records one finished host call that took `elapsed`.
    pub fn record_host_call(&self, elapsed: Duration) {
        self.host_calls.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.host_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Host calls so far.
    pub fn host_calls(&self) -> u64 {
        self.host_calls.load(Ordering::Relaxed)
    }

    /// Time spent in host functions so far.
    pub fn host_time(&self) -> Duration {
        Duration::from_nanos(self.host_nanos.load(Ordering::Relaxed))
    }
}

impl DeadlineSource for StoreState {
    fn deadline(&self) -> Deadline {
        self.deadline
    }
}
