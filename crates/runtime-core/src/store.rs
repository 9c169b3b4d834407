//! [`StoreState`]: what every store of the runtime carries, the embedder's
//! own state `T` included, and [`CallProgress`]: what a call is doing,
//! readable from outside the store.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use runtime_limits::clock::Instant;

use runtime_limits::{Deadline, DeadlineSource, InstanceBudget, ResourceLimits};

use crate::{DeadlinePhase, StoreExtension};

/// An import asked the host to keep more for an instance than its
/// host-memory budget allows ([`StoreState::charge_host_memory`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the host was asked to keep {asked} more bytes for this instance, which holds {held} of its {limit}-byte host-memory budget"
)]
#[non_exhaustive]
pub struct HostMemoryExceeded {
    /// Bytes asked for.
    pub asked: u64,
    /// Bytes charged before.
    pub held: u64,
    /// The budget.
    pub limit: u64,
}

/// The data of each wasmtime `Store`: the embedder's own state `T` (an
/// actor's id, its mailbox, a caller's identity), reachable from every host
/// function through [`host`](Self::host) and [`host_mut`](Self::host_mut),
/// and what the runtime needs to enforce the limits: the instance's budget,
/// the call's progress and deadline, the WASI state.
pub struct StoreState<T = ()> {
    /// The memory and table budget, also the store's limiter.
    pub(crate) budget: InstanceBudget,
    /// Phase and host-call accounting, shared with whoever awaits the call.
    pub(crate) progress: Arc<CallProgress>,
    /// What the guest may reach beyond its exports.
    pub(crate) capabilities: Arc<crate::Capabilities>,
    /// The deadline of the call in progress, read by the epoch callback.
    pub(crate) deadline: Deadline,
    /// The memory budget, which also caps what one WASI call may produce.
    pub(crate) memory_limit_bytes: u64,
    /// What the host may hold for the instance outside its linear memory.
    pub(crate) host_memory_bytes: u64,
    /// What the embedder's imports charged of it ([`charge_host_memory`](Self::charge_host_memory)).
    host_memory_charged: u64,
    /// Where the guest's stdout goes when `stdio` inherits it: the host's
    /// stderr when the host's stdout carries something else (the CLI's JSON).
    pub(crate) stdout_to_stderr: bool,
    /// What the current host call is doing, from the call hook.
    pub(crate) host_call: HostCallTracker,
    /// A host layer's state (runtime-wasi's context), made on first use.
    extension: Option<Box<dyn StoreExtension>>,
    /// Captured bytes of stdout and stderr written before the current call.
    output_mark: (usize, usize),
    extensions: HashMap<TypeId, Box<dyn Any + Send>>,
    host: T,
}

impl<T> std::fmt::Debug for StoreState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreState")
            .field("budget", &self.budget)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

impl<T> StoreState<T> {
    /// Fresh state for `limits` and a call due by `deadline`, reporting into
    /// `progress`, with the `capabilities` of its component and the
    /// embedder's `host` state.
    pub(crate) fn new(
        limits: &ResourceLimits,
        deadline: Deadline,
        progress: Arc<CallProgress>,
        capabilities: Arc<crate::Capabilities>,
        host: T,
    ) -> Self {
        Self {
            budget: InstanceBudget::new(limits),
            progress,
            capabilities,
            deadline,
            memory_limit_bytes: limits.memory_bytes(),
            host_memory_bytes: limits.host_memory_bytes(),
            host_memory_charged: 0,
            stdout_to_stderr: false,
            host_call: HostCallTracker::default(),
            extension: None,
            output_mark: (0, 0),
            extensions: HashMap::new(),
            host,
        }
    }

    /// The embedder's state of this instance.
    pub fn host(&self) -> &T {
        &self.host
    }

    /// The embedder's state of this instance, taken out of it.
    pub fn into_host(self) -> T {
        self.host
    }

    /// The embedder's state of this instance, mutably. Reached from inside
    /// an import that never marked its work (linked by hand without
    /// [`import_host`](Self::import_host)), it marks it as `import_host`
    /// does: wasmtime has lifted the arguments, so the import's own work has
    /// begun, and its errors are the host's from here on.
    pub fn host_mut(&mut self) -> &mut T {
        if self.host_call.depth == 1 && self.host_call.stage == HostStage::Lifting {
            self.enter_host_function(HostFunction::Linked);
        }
        &mut self.host
    }

    /// The getter to give `bindgen!`'s `add_to_linker` (with
    /// `HasSelf<T>`): it returns the embedder's state and, like every
    /// function of the runtime's own registry, marks where the host
    /// function's work begins, so the call is counted and timed in the
    /// report, the deadline covers it while it blocks, and its errors are
    /// reported as `host-error`.
    ///
    /// ```ignore
    /// Actor::add_to_linker::<_, HasSelf<MyState>>(linker, StoreState::import_host)?;
    /// ```
    pub fn import_host(state: &mut Self) -> &mut T {
        state.enter_host_function(HostFunction::Linked);
        &mut state.host
    }

    /// The memory in use now and at peak.
    pub fn usage(&self) -> runtime_limits::Usage {
        self.budget.usage()
    }

    /// What the guest wrote to its captured stdout and stderr during the
    /// current call, when `stdio` is `capture` and the guest used WASI.
    pub(crate) fn captured_output(&self) -> Option<(String, String)> {
        self.extension.as_ref().and_then(|extension| extension.captured_output(self.output_mark))
    }

    /// The read-write grants' quotas the instance touched.
    pub(crate) fn disk_usage(&self) -> Vec<crate::DiskUsage> {
        self.extension.as_ref().map(|extension| extension.disk_usage()).unwrap_or_default()
    }

    /// Starts a call's captured output: what was written before is not its.
    pub(crate) fn mark_output(&mut self) {
        self.output_mark = self.extension.as_ref().map_or((0, 0), |extension| extension.captured_lengths());
    }

    /// The store's host-layer state, made by `make` on first use (or if the
    /// slot held another layer's).
    pub fn extension_or_insert_with<E: StoreExtension>(&mut self, make: impl FnOnce(&Self) -> E) -> &mut E {
        if !self.extension.as_deref().is_some_and(|extension| (extension as &dyn Any).is::<E>()) {
            let made = make(self);
            self.extension = Some(Box::new(made));
        }
        match self.extension.as_deref_mut().and_then(|extension| (extension as &mut dyn Any).downcast_mut::<E>()) {
            Some(extension) => extension,
            // Just inserted: an `E` is there.
            None => unreachable!("the extension slot holds the `E` just put there"),
        }
    }

    /// The store's host-layer state, if it is an `E` and was made.
    pub fn extension<E: StoreExtension>(&self) -> Option<&E> {
        self.extension.as_deref().and_then(|extension| (extension as &dyn Any).downcast_ref())
    }

    /// The store's host-layer state, for classifying a failure.
    pub(crate) fn store_extension(&self) -> Option<&dyn StoreExtension> {
        self.extension.as_deref()
    }

    /// The component's capabilities.
    pub fn capabilities(&self) -> &crate::Capabilities {
        &self.capabilities
    }

    /// The instance's memory budget in bytes (which also caps what one
    /// host call may produce for it).
    pub fn memory_limit_bytes(&self) -> u64 {
        self.memory_limit_bytes
    }

    /// What the host may hold for the instance outside its linear memory.
    pub fn host_memory_bytes(&self) -> u64 {
        self.host_memory_bytes
    }

    /// Whether an inherited stdout goes to the host's stderr.
    pub fn stdout_to_stderr(&self) -> bool {
        self.stdout_to_stderr
    }

    /// Charges `bytes` the host keeps for this instance (an actor's
    /// storage, its queued messages) against its host-memory budget
    /// (`[resources] host-memory-factor` times its memory). Past the
    /// budget nothing is charged and the error is returned: an import that
    /// returns it ends the call `host-memory-limit-exceeded`, the guest's
    /// doing, like a WASI object past its share.
    /// The charge lives with the instance: `Instance::restart` carries it
    /// to the fresh instance; a host state moved elsewhere by hand
    /// (`into_host`) is charged again by whoever keeps it.
    pub fn charge_host_memory(&mut self, bytes: u64) -> Result<(), HostMemoryExceeded> {
        let charged = self.host_memory_charged.saturating_add(bytes);
        if charged > self.host_memory_bytes {
            return Err(HostMemoryExceeded {
                asked: bytes,
                held: self.host_memory_charged,
                limit: self.host_memory_bytes,
            });
        }
        self.host_memory_charged = charged;
        Ok(())
    }

    /// Gives back `bytes` charged with [`charge_host_memory`](Self::charge_host_memory).
    pub fn release_host_memory(&mut self, bytes: u64) {
        self.host_memory_charged = self.host_memory_charged.saturating_sub(bytes);
    }

    /// Bytes the embedder's imports have charged and not given back.
    pub fn host_memory_charged(&self) -> u64 {
        self.host_memory_charged
    }

    /// Carries `bytes` charged in an earlier store of the same host state
    /// (a restart keeps the state, and so what it holds).
    pub(crate) fn carry_host_memory(&mut self, bytes: u64) {
        self.host_memory_charged = bytes;
    }

    /// When the call in progress is due.
    pub fn deadline_instant(&self) -> Instant {
        self.deadline.instant()
    }

    /// Marks the start of a host function's own work (its arguments are
    /// lifted): the call is now waiting on the host, for the deadline's
    /// classification, and an error from here on is the host function's.
    /// Host functions registered with the runtime and every WASI function
    /// call this; the call hook counts and times them.
    pub fn enter_host_function(&mut self, function: HostFunction) {
        if self.host_call.depth == 1 {
            self.host_call.stage = HostStage::Body(function);
            self.progress.enter_host();
        }
    }

    /// Marks the end of a host function's own work: from here until it
    /// returns, the runtime lowers its results into the guest.
    pub fn leave_host_function(&mut self) {
        if let HostStage::Body(function) = std::mem::take(&mut self.host_call.stage) {
            self.host_call.stage = HostStage::Lowering(function);
        }
    }

    /// Whether the manifest grants `interface`, one of the runtime's
    /// reference host interfaces, imported as `qualified`. When it does not,
    /// the host call in progress fails `capability-denied` when it returns,
    /// whatever the function returns: it should then do nothing.
    pub fn grants_host_interface(
        &mut self,
        interface: runtime_manifest::HostInterface,
        qualified: &'static str,
    ) -> bool {
        let granted = self.capabilities.host_interfaces.contains(&interface);
        if !granted {
            self.deny(crate::CapabilityDenied {
                interface: qualified,
                grant: crate::capabilities::host_interface_grant(interface),
            });
        }
        granted
    }

    /// Records that the host call in progress entered an interface the
    /// manifest does not grant: when it returns, the call hook turns it
    /// into a `capability-denied` trap, whatever the function returned.
    pub fn deny(&mut self, denied: crate::CapabilityDenied) {
        if self.host_call.depth >= 1 {
            self.host_call.denied = Some(denied);
        }
    }

    /// Follows wasmtime's call hook: host calls (and libcalls such as
    /// `memory.grow`) entered and left, and wasm entered from inside them
    /// (`cabi_realloc` while results are lowered). Fails a host call that
    /// entered an ungranted interface ([`deny`](Self::deny)).
    pub(crate) fn on_call_hook(&mut self, hook: wasmtime::CallHook) -> wasmtime::Result<()> {
        use wasmtime::CallHook;
        let host = &mut self.host_call;
        match hook {
            CallHook::CallingHost => {
                host.depth += 1;
                if host.depth == 1 {
                    host.stage = HostStage::Lifting;
                    host.entered = Some(Instant::now());
                    self.progress.host_edge();
                }
            }
            CallHook::ReturningFromHost => {
                if host.depth == 1 {
                    self.progress.host_edge();
                    let stage = std::mem::take(&mut host.stage);
                    let took = host.entered.map(|entered| entered.elapsed()).unwrap_or_default();
                    match stage {
                        HostStage::Body(_) | HostStage::Lowering(_) => self.progress.record_host_call(took),
                        // A libcall, or an import that never marked its
                        // body: counted only if it failed
                        // (`count_unmarked_host_call`).
                        _ => host.unmarked_took = took,
                    }
                    self.progress.leave_host();
                    host.last_exit = stage;
                }
                host.depth = host.depth.saturating_sub(1);
                if host.depth == 0
                    && let Some(denied) = host.denied.take()
                {
                    return Err(wasmtime::Error::new(denied));
                }
            }
            CallHook::CallingWasm => {
                // Wasm entered from a host function (`cabi_realloc`) lowers
                // its results; a second entry (a list of strings) keeps the
                // stage, so the call is still counted when it returns.
                match std::mem::take(&mut host.stage) {
                    HostStage::Body(function) => host.stage = HostStage::Lowering(function),
                    other => {
                        host.stage = other;
                        if host.depth == 0 {
                            host.last_exit = HostStage::Idle;
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// How the last host call (or libcall) the guest made ended, for the
    /// classification of an error raised while guest frames were live.
    pub(crate) fn last_host_exit(&self) -> &HostStage {
        &self.host_call.last_exit
    }

    /// Counts the last host call, which never marked its body (an import
    /// linked without [`import_host`](Self::import_host)) and whose error
    /// ended the call: it is the host's, and counted and timed as such.
    pub(crate) fn count_unmarked_host_call(&self) {
        self.progress.record_host_call(self.host_call.unmarked_took);
    }

    /// Runs `f` on per-instance state of type `E` for host functions,
    /// created with `E::default()` on first use.
    pub fn with_extension<E: Default + Send + 'static, R>(&mut self, f: impl FnOnce(&mut E) -> R) -> R {
        let id = TypeId::of::<E>();
        let mut value: Box<E> = self.extensions.remove(&id).and_then(|b| b.downcast::<E>().ok()).unwrap_or_default();
        let result = f(&mut value);
        self.extensions.insert(id, value);
        result
    }
}

/// A host function, as the runtime names it in reports and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostFunction {
    /// A WASI interface, e.g. `wasi:random/random`.
    Wasi(&'static str),
    /// A function registered by the host, as `interface#name`.
    Registered(Arc<str>),
    /// A function the embedder linked itself (`bindgen!` imports), reaching
    /// its state through [`StoreState::import_host`].
    Linked,
}

impl std::fmt::Display for HostFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Wasi(interface) => write!(f, "{interface} (WASI)"),
            Self::Registered(name) => f.write_str(name),
            Self::Linked => f.write_str("an import the embedder linked"),
        }
    }
}

/// Where a host call is, between wasmtime's `CallingHost` and
/// `ReturningFromHost` hooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum HostStage {
    /// No host call.
    #[default]
    Idle,
    /// wasmtime lifts the arguments, or runs a libcall (`memory.grow`,
    /// `resource.drop`, ...): failures here are the guest's.
    Lifting,
    /// The host function runs: failures here are the host function's.
    Body(HostFunction),
    /// wasmtime lowers the results (and may call `cabi_realloc`): failures
    /// here are the guest's.
    Lowering(HostFunction),
}

/// The state behind [`HostStage`]: nesting depth (a libcall inside
/// `cabi_realloc` inside a host call), the stage, and when the call began.
#[derive(Debug, Default)]
pub(crate) struct HostCallTracker {
    depth: u32,
    stage: HostStage,
    /// When the current host call (or libcall) was entered.
    entered: Option<Instant>,
    /// How long the last one that never marked its body took.
    unmarked_took: std::time::Duration,
    last_exit: HostStage,
    /// An ungranted interface the current host call entered.
    denied: Option<crate::CapabilityDenied>,
}

/// What a call is doing and how much host time it used, updated by the call
/// and by host functions and readable while the call runs or after it was
/// abandoned (a timeout or cancellation drops the store, not this).
#[derive(Debug, Default)]
pub struct CallProgress {
    phase: AtomicU8,
    in_host: AtomicBool,
    host_calls: AtomicU64,
    host_nanos: AtomicU64,
    /// Host calls (and libcalls) entered and left, counted at both ends,
    /// marked or not: odd while one is in progress.
    host_edges: AtomicU64,
}

impl CallProgress {
    /// A tracker starting in the instantiation phase.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `progress` made ready for a new call: reset in place when nobody else
    /// holds it (a synchronous call on a live instance), else replaced. Saves
    /// an allocation per warm call. No `Weak` of a tracker is ever made, so a
    /// strong count of one is this handle alone (a plain load, where
    /// `Arc::get_mut` takes a lock on the weak count).
    pub fn renew(progress: &mut Arc<Self>) {
        if Arc::strong_count(progress) == 1 {
            progress.reset();
        } else {
            *progress = Self::new();
        }
    }

    /// Back to [`Default`]: the pattern names every field, so a new one
    /// cannot be forgotten here.
    fn reset(&self) {
        let Self { phase, in_host, host_calls, host_nanos, host_edges } = self;
        phase.store(0, Ordering::Relaxed);
        in_host.store(false, Ordering::Relaxed);
        for counter in [host_calls, host_nanos, host_edges] {
            counter.store(0, Ordering::Relaxed);
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

    /// Records that the call now waits on a host function.
    pub fn enter_host(&self) {
        self.in_host.store(true, Ordering::Release);
    }

    /// Records that the host function returned.
    pub fn leave_host(&self) {
        self.in_host.store(false, Ordering::Release);
    }

    /// Records that a host call (or a libcall) was entered or left, whether
    /// or not the host function marks its work: the call hook calls this.
    pub(crate) fn host_edge(&self) {
        self.host_edges.fetch_add(1, Ordering::AcqRel);
    }

    /// The host call (or libcall) the call is in now, if any, as a token:
    /// the same token read at two instants means the call stayed in that
    /// one host call in between. A guest that yields to its executor (epoch
    /// ticks, fuel chunks) leaves the libcall it yielded in each time it is
    /// polled again; a linked import that never marks its work (no
    /// [`StoreState::import_host`]) and waits on a future does not, so this
    /// tells a guest blocked in such an import from one that runs.
    pub fn host_call_in_progress(&self) -> Option<u64> {
        let edges = self.host_edges.load(Ordering::Acquire);
        (edges % 2 == 1).then_some(edges)
    }

    /// The phase the call is in: a host call, or else the phase entered last.
    pub fn phase(&self) -> DeadlinePhase {
        if self.in_host.load(Ordering::Acquire) {
            return DeadlinePhase::HostCall;
        }
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

impl<T> DeadlineSource for StoreState<T> {
    fn deadline(&self) -> Deadline {
        self.deadline
    }
}
