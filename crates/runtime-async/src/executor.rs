//! [`AsyncExecutor`]: admission, one deadline per call, cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use runtime_limits::clock::Instant;

use runtime_core::{
    CallOutcome, CallProgress, CallReport, ComponentInstance, CrashKind, CrashReport, DeadlinePhase, LoadedComponent,
    PoisonCause, RuntimeError, StoreFuture, StoreState, TypedExport, TypedOutcome,
};
use runtime_limits::{Deadline, EPOCH_TICK};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use wasmtime::StoreContextMut;
use wasmtime::component::Instance;
use wasmtime::component::{ComponentNamedList, Lift, Lower, Val};

/// How long a call waits for an instance slot by default.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// How many calls may wait for a slot at once by default.
pub const DEFAULT_MAX_QUEUED: usize = 100_000;

/// Runs calls on Tokio: at most `max_concurrent` instances alive at once,
/// further calls waiting in a bounded queue for a limited time, each call
/// bounded by one deadline and cancellable.
#[derive(Debug, Clone)]
pub struct AsyncExecutor {
    slots: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    queue_timeout: Duration,
}

impl AsyncExecutor {
    /// An executor admitting `max_concurrent` instances at once.
    pub fn new(max_concurrent: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent as usize)),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: DEFAULT_MAX_QUEUED,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
        }
    }

    /// Lets at most `max_queued` calls wait, each at most `timeout`, before `busy`.
    pub fn with_queue(mut self, max_queued: usize, timeout: Duration) -> Self {
        self.max_queued = max_queued;
        self.queue_timeout = timeout;
        self
    }

    /// Instance slots free now.
    pub fn available_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The slots one instance of `component` takes now, or `busy`: for
    /// synchronous calls, which do not wait.
    pub fn try_admit<T: 'static>(&self, component: &LoadedComponent<T>) -> Result<Admission, RuntimeError> {
        let permit = self
            .slots
            .clone()
            .try_acquire_many_owned(component.pool_slots())
            .map_err(|_| RuntimeError::Busy { waited: Duration::ZERO })?;
        Ok(Admission { _permit: permit, waited: Duration::ZERO })
    }

    /// Waits for the slots one instance of `component` takes (see
    /// [`LoadedComponent::pool_slots`]), within the queue's bounds: an
    /// admitted call always finds room in the instance pool.
    pub async fn admit<T: 'static>(&self, component: &LoadedComponent<T>) -> Result<Admission, RuntimeError> {
        self.admit_within(component, self.queue_timeout).await
    }

    /// [`admit`](Self::admit), waiting at most `within` (and never longer
    /// than the queue's own wait).
    async fn admit_within<T: 'static>(
        &self,
        component: &LoadedComponent<T>,
        within: Duration,
    ) -> Result<Admission, RuntimeError> {
        let slots = component.pool_slots();
        let wait = within.min(self.queue_timeout);
        let (permit, waited) = acquire(&self.slots, slots, &self.queued, self.max_queued, wait)
            .await
            .map_err(|waited| RuntimeError::Busy { waited })?;
        Ok(Admission { _permit: permit, waited })
    }

    /// Calls `export` of `component` in a fresh instance whose host state is
    /// `state`, once admitted. One deadline covers instantiation, guest code
    /// and time blocked in host functions; a cancelled `cancel` token, or
    /// dropping the returned future, ends the call and releases its store,
    /// slot and memory. The report says how long the call queued.
    pub async fn call<T: Send + 'static>(
        &self,
        component: &LoadedComponent<T>,
        state: T,
        export: &str,
        args: &[Val],
        cancel: Option<&CancellationToken>,
    ) -> Result<CallOutcome, RuntimeError> {
        let admission = self.admit(component).await?;
        let (started, deadline, progress) = start(component);
        let mut instance = component.vacant_async(state, started, deadline);
        // Boxed: wasmtime's instantiation and call futures make this one
        // about 8 KiB, which every layer above would otherwise copy.
        let call = Box::pin(async {
            instance.instantiate_async(progress.clone()).await?;
            instance.call_async(export, args, deadline, progress.clone(), true).await
        });
        let outcome = guard(call, deadline, &progress, cancel).await;
        let outcome = settle(outcome, &mut instance, &progress, started);
        add_queue_wait(outcome, admission.waited, |outcome| &mut outcome.report)
    }

    /// [`call`](Self::call) of a typed export: `P` and `R` are checked
    /// against the export's signature in the fresh instance (a mismatch is
    /// `invalid-arguments`), then it is called without `Val`s.
    pub async fn call_typed_fresh<T, P, R>(
        &self,
        component: &LoadedComponent<T>,
        state: T,
        export: &str,
        params: P,
        cancel: Option<&CancellationToken>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        T: Send + 'static,
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let admission = self.admit(component).await?;
        let (started, deadline, progress) = start(component);
        let mut instance = component.vacant_async(state, started, deadline);
        let call = Box::pin(async {
            instance.instantiate_async(progress.clone()).await?;
            instance.call_typed_fresh_async(export, params).await
        });
        let outcome = guard(call, deadline, &progress, cancel).await;
        let outcome = settle(outcome, &mut instance, &progress, started);
        add_queue_wait(outcome, admission.waited, |outcome| &mut outcome.report)
    }

    /// A live instance of `component` with host state `state`, instantiated
    /// under the component's deadline once admitted; a start function still
    /// pending at the deadline is abandoned like a call. The [`Admission`]
    /// returned with it is the instance's slot: keep it while the instance
    /// lives.
    pub async fn instantiate<T: Send + 'static>(
        &self,
        component: &LoadedComponent<T>,
        state: T,
        cancel: Option<&CancellationToken>,
    ) -> Result<(ComponentInstance<T>, Admission), RuntimeError> {
        let admission = self.admit(component).await?;
        let (started, deadline, progress) = start(component);
        let instance = Self::instantiate_admitted(component, state, (started, deadline, progress), cancel).await?;
        Ok((instance, admission))
    }

    /// [`instantiate`](Self::instantiate) for work whose deadline began
    /// before it queued (a served request's): it waits for its slot at most
    /// until `by`, and is `busy` if none came by then (or `by` passed while
    /// it waited), never `deadline-exceeded`, which would blame the guest
    /// for the host's overload; instantiation gets what is left of `by`.
    pub async fn instantiate_by<T: Send + 'static>(
        &self,
        component: &LoadedComponent<T>,
        state: T,
        by: std::time::Instant,
        cancel: Option<&CancellationToken>,
    ) -> Result<(ComponentInstance<T>, Admission), RuntimeError> {
        let admission = self.admit_within(component, by.saturating_duration_since(std::time::Instant::now())).await?;
        let left = by.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(RuntimeError::Busy { waited: admission.waited });
        }
        let timing = starting(left.min(component.limits().timeout()));
        let instance = Self::instantiate_admitted(component, state, timing, cancel).await?;
        Ok((instance, admission))
    }

    /// A fresh instance of `component` with host state `state`, which
    /// holds `charged` bytes of its host-memory budget, in a slot the caller
    /// already holds (an instance restarted in place); refused, it gives
    /// `state` back with the error.
    pub async fn reinstantiate<T: Send + 'static>(
        component: &LoadedComponent<T>,
        (state, charged): (T, u64),
        cancel: Option<&CancellationToken>,
    ) -> Result<ComponentInstance<T>, (RuntimeError, T)> {
        let timing = start(component);
        let mut instance = component.vacant_async(state, timing.0, timing.1);
        // What the state holds is charged before any of its start code runs.
        instance.carry_host_memory(charged);
        Self::instantiated(instance, timing, cancel).await.map_err(|(error, instance)| (error, instance.into_host()))
    }

    async fn instantiate_admitted<T: Send + 'static>(
        component: &LoadedComponent<T>,
        state: T,
        timing: (Instant, Deadline, Arc<CallProgress>),
        cancel: Option<&CancellationToken>,
    ) -> Result<ComponentInstance<T>, RuntimeError> {
        let instance = component.vacant_async(state, timing.0, timing.1);
        Self::instantiated(instance, timing, cancel).await.map_err(|(error, _)| error)
    }

    /// Instantiates the vacant `instance` under its deadline; refused, the
    /// instance comes back with the error (its host state in it).
    async fn instantiated<T: Send + 'static>(
        mut instance: ComponentInstance<T>,
        (started, deadline, progress): (Instant, Deadline, Arc<CallProgress>),
        cancel: Option<&CancellationToken>,
    ) -> Result<ComponentInstance<T>, (RuntimeError, ComponentInstance<T>)> {
        let instantiate = Box::pin(instance.instantiate_async(progress.clone()));
        let outcome = guard(instantiate, deadline, &progress, cancel).await;
        match settle(outcome, &mut instance, &progress, started) {
            Ok(()) => Ok(instance),
            Err(error) => Err((error, instance)),
        }
    }

    /// Calls `export` on a live `instance` with fresh fuel and a fresh
    /// deadline, bounded like [`call`](Self::call). A call abandoned at its
    /// deadline or cancelled poisons the instance: its guest stopped at an
    /// unknown point.
    pub async fn call_instance<T: Send + 'static>(
        &self,
        instance: &mut ComponentInstance<T>,
        export: &str,
        args: &[Val],
        cancel: Option<&CancellationToken>,
    ) -> Result<CallOutcome, RuntimeError> {
        let (started, deadline, progress) = start_live(instance);
        let call = Box::pin(instance.call_async(export, args, deadline, progress.clone(), false));
        let outcome = guard(call, deadline, &progress, cancel).await;
        settle(outcome, instance, &progress, started)
    }

    /// Calls several exports of a live `instance` at once, each a task of
    /// its own (an async export of a component-model-async instance,
    /// typically: an actor's handler awaiting a host request while the next
    /// message runs), bounded like [`call_instance`](Self::call_instance)
    /// by one deadline and one cancellation for all. They share the
    /// instance's budgets and `calls.len()` times a call's fuel; see
    /// [`ComponentInstance::call_concurrent_async`] for what ends them.
    /// Returns each call's results, in order, and one report.
    pub async fn call_instance_concurrent<T: Send + 'static>(
        &self,
        instance: &mut ComponentInstance<T>,
        calls: &[(&str, &[Val])],
        cancel: Option<&CancellationToken>,
    ) -> Result<TypedOutcome<Vec<Vec<Val>>>, RuntimeError> {
        let (started, deadline, progress) = start_live(instance);
        let call = Box::pin(instance.call_concurrent_async(calls, deadline, progress.clone()));
        let outcome = guard(call, deadline, &progress, cancel).await;
        settle(outcome, instance, &progress, started)
    }

    /// Runs `call` with the store and instance of a live `instance` (a
    /// `bindgen!`-generated export wrapper), bounded like
    /// [`call_instance`](Self::call_instance).
    pub async fn run<T, R, F>(
        &self,
        instance: &mut ComponentInstance<T>,
        call: F,
        cancel: Option<&CancellationToken>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(StoreContextMut<'a, StoreState<T>>, Instance) -> StoreFuture<'a, R>,
    {
        let (started, deadline, progress) = start_live(instance);
        let run = Box::pin(instance.run_async(call, deadline, progress.clone()));
        let outcome = guard(run, deadline, &progress, cancel).await;
        settle(outcome, instance, &progress, started)
    }

    /// Calls a typed export of a live `instance`, bounded like
    /// [`call_instance`](Self::call_instance).
    pub async fn call_typed<T, P, R>(
        &self,
        instance: &mut ComponentInstance<T>,
        export: &TypedExport<P, R>,
        params: P,
        cancel: Option<&CancellationToken>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        T: Send + 'static,
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let (started, deadline, progress) = start_live(instance);
        let call = Box::pin(instance.call_typed_async(export, params, deadline, progress.clone()));
        let outcome = guard(call, deadline, &progress, cancel).await;
        settle(outcome, instance, &progress, started)
    }
}

/// One component's share of the runtime's instances, its manifest's
/// `resources.instances`: a fresh call holds one for its duration, a live
/// instance until dropped. Calls beyond it wait in the component's own
/// bounded queue, so a component at its quota never takes a place in the
/// runtime's shared queue from another.
#[derive(Debug, Clone)]
pub struct ComponentQuota {
    component: Arc<str>,
    instances: Arc<std::sync::atomic::AtomicU32>,
    slots: Arc<Semaphore>,
    /// Permits a shrink could not take back because they were in use:
    /// forgotten as they come back.
    debt: Arc<AtomicUsize>,
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    queue_timeout: Duration,
}

impl ComponentQuota {
    /// A quota of `instances` for `component`, queueing like `executor`.
    pub fn new(component: impl Into<Arc<str>>, instances: u32, executor: &AsyncExecutor) -> Self {
        Self {
            component: component.into(),
            instances: Arc::new(std::sync::atomic::AtomicU32::new(instances)),
            slots: Arc::new(Semaphore::new(instances as usize)),
            debt: Arc::new(AtomicUsize::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: executor.max_queued,
            queue_timeout: executor.queue_timeout,
        }
    }

    /// Instances of the component that may start now.
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// The quota.
    pub fn instances(&self) -> u32 {
        self.instances.load(Ordering::Acquire)
    }

    /// Makes the quota `instances`, for every clone: instances in use keep
    /// running, and a quota made smaller than what is in use takes effect
    /// as they end.
    pub fn resize(&self, instances: u32) {
        let old = self.instances.swap(instances, Ordering::AcqRel);
        if instances > old {
            let mut grow = (instances - old) as usize;
            // A debt is paid before new permits are made.
            let _ = self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                let paid = debt.min(grow);
                grow = (instances - old) as usize - paid;
                Some(debt - paid)
            });
            self.slots.add_permits(grow);
        } else {
            // The debt first: a permit given back meanwhile is forgotten,
            // never handed out again; then what is free now is taken, and
            // whatever that took beyond what is still owed is given back.
            let shrink = (old - instances) as usize;
            self.debt.fetch_add(shrink, Ordering::AcqRel);
            let forgotten = self.slots.forget_permits(shrink);
            let mut excess = 0;
            let _ = self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                excess = forgotten.saturating_sub(debt);
                Some(debt.saturating_sub(forgotten))
            });
            self.slots.add_permits(excess);
        }
    }

    fn refused(&self, waited: Duration) -> RuntimeError {
        RuntimeError::QuotaReached { component: self.component.to_string(), instances: self.instances(), waited }
    }

    /// One of the component's instances now, or `busy` naming the quota.
    pub fn try_admit(&self) -> Result<QuotaPermit, RuntimeError> {
        let permit = self.slots.clone().try_acquire_owned().map_err(|_| self.refused(Duration::ZERO))?;
        Ok(QuotaPermit { permit: Some(permit), debt: self.debt.clone(), waited: Duration::ZERO })
    }

    /// Waits for one of the component's instances in its own queue.
    pub async fn admit(&self) -> Result<QuotaPermit, RuntimeError> {
        self.admit_within(self.queue_timeout).await
    }

    /// [`admit`](Self::admit), waiting at most `within` (and never longer
    /// than the queue's own wait).
    pub async fn admit_within(&self, within: Duration) -> Result<QuotaPermit, RuntimeError> {
        let wait = within.min(self.queue_timeout);
        let (permit, waited) = acquire(&self.slots, 1, &self.queued, self.max_queued, wait)
            .await
            .map_err(|waited| self.refused(waited))?;
        Ok(QuotaPermit { permit: Some(permit), debt: self.debt.clone(), waited })
    }
}

/// One of a component's instances under its [`ComponentQuota`], given back when dropped.
#[derive(Debug)]
pub struct QuotaPermit {
    permit: Option<OwnedSemaphorePermit>,
    /// Its quota's debt: a permit that comes back while one is owed is forgotten.
    debt: Arc<AtomicUsize>,
    waited: Duration,
}

impl Drop for QuotaPermit {
    fn drop(&mut self) {
        let owed = self.debt.fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| debt.checked_sub(1)).is_ok();
        if owed && let Some(permit) = self.permit.take() {
            permit.forget();
        }
    }
}

impl QuotaPermit {
    /// How long the call waited in the component's queue.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// When a call of `component` begins, when it must end, and the tracker
/// that tells the deadline's timer what it is doing.
fn start<T: 'static>(component: &LoadedComponent<T>) -> (Instant, Deadline, Arc<CallProgress>) {
    starting(component.limits().timeout())
}

/// [`start`] for a call of a live instance, which may have a shorter timeout.
fn start_live<T: 'static>(instance: &ComponentInstance<T>) -> (Instant, Deadline, Arc<CallProgress>) {
    starting(instance.call_timeout())
}

fn starting(timeout: Duration) -> (Instant, Deadline, Arc<CallProgress>) {
    let started = Instant::now();
    (started, Deadline::starting_at(started, timeout), CallProgress::new())
}

/// An instance slot, given back when dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: OwnedSemaphorePermit,
    waited: Duration,
}

impl Admission {
    /// How long the call waited in the queue for this slot.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

/// The outcome of a guarded call: an abandoned one becomes its error (with
/// fuel and memory read from the store, which outlived the call) and poisons
/// the instance.
fn settle<T: 'static, R>(
    outcome: Result<Result<R, RuntimeError>, Abandoned>,
    instance: &mut ComponentInstance<T>,
    progress: &CallProgress,
    started: Instant,
) -> Result<R, RuntimeError> {
    match outcome {
        Ok(outcome) => outcome,
        // Never begun: the instance is as it was.
        Err(Abandoned::Refused) => Err(Abandoned::Cancelled.into_error(instance, progress, Duration::ZERO)),
        Err(abandoned) => {
            let cause = match abandoned {
                Abandoned::Deadline { during } => PoisonCause::Crash(CrashKind::DeadlineExceeded { during }),
                _ => PoisonCause::Cancelled,
            };
            let error = abandoned.into_error(instance, progress, started.elapsed());
            instance.poison(cause);
            Err(error)
        }
    }
}

/// Adds to the report (of a result or of a crash) how long the call queued:
/// the executor adds the runtime's queue, the facade a component's own.
pub fn add_queue_wait<R>(
    outcome: Result<R, RuntimeError>,
    waited: Duration,
    report: impl FnOnce(&mut R) -> &mut CallReport,
) -> Result<R, RuntimeError> {
    match outcome {
        Ok(mut outcome) => {
            report(&mut outcome).queue_wait += waited;
            Ok(outcome)
        }
        Err(mut error) => {
            if let Some(report) = error.report_mut() {
                report.queue_wait += waited;
            }
            Err(error)
        }
    }
}

/// `n` permits of `slots` now, or after waiting at most `timeout` in a queue
/// of `queued` callers (at most `max_queued`), with how long it waited; the
/// error is how long it waited before it was refused. Tokio's semaphore is
/// fair: a call waiting for several permits is not overtaken by later calls
/// that need one.
async fn acquire(
    slots: &Arc<Semaphore>,
    n: u32,
    queued: &AtomicUsize,
    max_queued: usize,
    timeout: Duration,
) -> Result<(OwnedSemaphorePermit, Duration), Duration> {
    if let Ok(permit) = slots.clone().try_acquire_many_owned(n) {
        return Ok((permit, Duration::ZERO));
    }
    let waiting = QueueTicket::take(queued, max_queued).ok_or(Duration::ZERO)?;
    let started = Instant::now();
    let acquired = tokio::time::timeout(timeout, slots.clone().acquire_many_owned(n)).await;
    drop(waiting);
    match acquired {
        Ok(Ok(permit)) => Ok((permit, started.elapsed())),
        // A closed semaphore or a timeout both mean no slot for this call.
        Ok(Err(_)) | Err(_) => Err(started.elapsed()),
    }
}

/// A place in the bounded queue, given back on drop.
struct QueueTicket<'q>(&'q AtomicUsize);

impl<'q> QueueTicket<'q> {
    fn take(queued: &'q AtomicUsize, max: usize) -> Option<Self> {
        queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Self(queued))
    }
}

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a call was given up from outside its store.
enum Abandoned {
    /// The deadline passed and the call did not end: it waited in a host
    /// function, or was stuck where epochs cannot reach it.
    Deadline {
        during: DeadlinePhase,
    },
    Cancelled,
    /// Cancelled before it began.
    Refused,
}

impl Abandoned {
    fn into_error<T: 'static>(
        self,
        instance: &ComponentInstance<T>,
        progress: &CallProgress,
        wall: Duration,
    ) -> RuntimeError {
        let report = instance.abandoned_report(progress, wall);
        match self {
            Self::Cancelled | Self::Refused => RuntimeError::Cancelled { report: Box::new(report) },
            Self::Deadline { during } => RuntimeError::Crash(Box::new(CrashReport {
                kind: CrashKind::DeadlineExceeded { during },
                message: match during {
                    DeadlinePhase::HostCall => "the deadline passed while the guest waited in a host function".into(),
                    _ => format!(
                        "the deadline passed and the call did not stop within two epoch ticks (during {}); it was abandoned",
                        during.as_str()
                    ),
                },
                detail: None,
                wasm_backtrace: None,
                function: None,
                source: None,
                report,
            })),
        }
    }
}

/// Runs `call` until it finishes or its deadline strikes. A guest waiting in
/// a host function (WASI included) is abandoned at the deadline: epoch
/// interruption cannot reach it there. A guest running its own code is
/// interrupted by the epoch callback; it gets two more ticks to do so, so
/// that its crash report comes from its store, with fuel and memory filled
/// in. Whatever it is doing, a call still pending then is abandoned, so no
/// call outlives its deadline by more than two ticks while it yields. A
/// guest waiting in an import linked without `import_host` (whose work the
/// phase cannot see) is told by the call hook's count of host calls: still
/// in the same host call after the grace, it was waiting in a host call.
/// Exactly one outcome is returned either way.
async fn bounded_by_deadline<R>(
    call: impl Future<Output = Result<R, RuntimeError>>,
    deadline: Deadline,
    progress: &CallProgress,
) -> Result<Result<R, RuntimeError>, Abandoned> {
    let mut call = std::pin::pin!(call);
    let mut check_at = tokio::time::Instant::from_std(deadline.std_instant());
    let mut grace_given = false;
    // The host call the guest was in at the deadline, marked or not.
    let mut waiting_in = None;
    loop {
        match tokio::time::timeout_at(check_at, call.as_mut()).await {
            Ok(outcome) => return Ok(outcome),
            Err(_) if progress.phase() == DeadlinePhase::HostCall => {
                return Err(Abandoned::Deadline { during: DeadlinePhase::HostCall });
            }
            Err(_) if grace_given => {
                // Still in the host call it was in at the deadline, through
                // the whole grace (polled meanwhile, so a guest that only
                // yielded at a tick would have left it): an import that
                // never marked its work, waiting.
                let stayed = waiting_in.is_some() && progress.host_call_in_progress() == waiting_in;
                let during = if stayed { DeadlinePhase::HostCall } else { progress.phase() };
                return Err(Abandoned::Deadline { during });
            }
            Err(_) => {
                grace_given = true;
                waiting_in = progress.host_call_in_progress();
                check_at = tokio::time::Instant::now() + 2 * EPOCH_TICK;
            }
        }
    }
}

/// [`bounded_by_deadline`], also ended by `cancel`.
async fn guard<R>(
    call: impl Future<Output = Result<R, RuntimeError>>,
    deadline: Deadline,
    progress: &CallProgress,
    cancel: Option<&CancellationToken>,
) -> Result<Result<R, RuntimeError>, Abandoned> {
    let bounded = bounded_by_deadline(call, deadline, progress);
    match cancel {
        None => bounded.await,
        // A token cancelled before the call refuses it, however short,
        // and leaves the instance as it was.
        Some(token) if token.is_cancelled() => Err(Abandoned::Refused),
        // Otherwise the call is polled first: one refused at once (a
        // poisoned instance, a wrong argument) says so.
        Some(token) => tokio::select! {
            biased;
            outcome = bounded => outcome,
            () = token.cancelled() => Err(Abandoned::Cancelled),
        },
    }
}
