//! [`ComponentInstance`]: one store and its instance, called dynamically
//! (`&[Val]`, checked against the signature first) or through a
//! [`TypedExport`], every call armed with the same fuel, deadline, panic
//! boundary and report.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use runtime_limits::clock::Instant;

use runtime_limits::{Deadline, ResourceLimits, fuel_consumed};
use wasmtime::component::{ComponentNamedList, Func, Instance, Lift, Lower, TypedFunc, Val};
use wasmtime::{AsContextMut as _, Store, StoreContextMut};

use crate::classify::classify;
use crate::{
    CallProgress, CallReport, CrashKind, CrashReport, DeadlinePhase, HostFunctionError, LoadedComponent, PoisonCause,
    RuntimeError, StoreState,
};

/// Fuel handed to an async store at a time: when a chunk is used up wasmtime
/// flushes the guest's fuel counter and yields, so the fuel a call burned is
/// known (to within a chunk) even when its deadline abandons it.
const ASYNC_FUEL_CHUNK: u64 = 1_000_000;

/// A dynamic call's results, in order, and what it used.
pub type CallOutcome = TypedOutcome<Vec<Val>>;

/// A call's results and what it used.
#[derive(Debug, Clone)]
pub struct TypedOutcome<R> {
    /// The function's results: the tuple a typed export was typed with, or
    /// the values of a dynamic call.
    pub results: R,
    /// Resources used.
    pub report: CallReport,
}

/// The future a [`ComponentInstance::run_async`] closure returns: it may
/// borrow the store.
pub type StoreFuture<'a, R> = std::pin::Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// Whether a store runs on the async executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Sync,
    Async,
}

/// A function export of one instance with its parameter and result types
/// checked once ([`ComponentInstance::typed`]): calls skip the dynamic
/// checks and the `Val` conversions.
pub struct TypedExport<P, R> {
    func: TypedFunc<P, R>,
    export: Arc<str>,
    instance: u64,
}

impl<P, R> Clone for TypedExport<P, R> {
    fn clone(&self) -> Self {
        Self { func: self.func, export: self.export.clone(), instance: self.instance }
    }
}

impl<P, R> std::fmt::Debug for TypedExport<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedExport").field("export", &self.export).finish_non_exhaustive()
    }
}

impl<P, R> TypedExport<P, R> {
    /// The export's name.
    pub fn name(&self) -> &str {
        &self.export
    }
}

/// One store and, once instantiated, its instance: a live instance for
/// stateful guests (calls share its memory), or the store of one fresh call.
/// After any crash it refuses further calls with [`RuntimeError::Poisoned`],
/// since a trap leaves the guest's state unknown. A wrong argument is refused
/// before the guest runs and poisons nothing.
pub struct ComponentInstance<T: 'static = ()> {
    component: LoadedComponent<T>,
    store: Store<StoreState<T>>,
    instance: Option<Instance>,
    mode: Mode,
    poisoned: Option<PoisonCause>,
    /// Set while an async call awaits the guest: still set at the next call
    /// when the embedder dropped that call's future, which stopped the guest
    /// at an unknown point.
    awaiting: bool,
    funcs: ExportCache,
    /// Tells this instance's typed exports from another's.
    id: u64,
    /// When the store was made and how long instantiation took, for the
    /// report of a fresh call.
    created: Instant,
    instantiate: Duration,
    /// A per-call timeout the embedder set, shorter than the manifest's.
    call_timeout: Option<Duration>,
    /// A per-call fuel the embedder set, less than the manifest's.
    call_fuel: Option<u64>,
    /// The calls the store's fuel was armed for (several for
    /// [`call_concurrent_async`](Self::call_concurrent_async)).
    armed_calls: u64,
}

impl<T: 'static> std::fmt::Debug for ComponentInstance<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstance").field("poisoned", &self.poisoned).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> ComponentInstance<T> {
    /// A store for `component` with the embedder's `state`, armed with the
    /// component's fuel and `deadline`, not yet instantiated.
    pub(crate) fn vacant(
        component: LoadedComponent<T>,
        state: T,
        mode: Mode,
        started: Instant,
        deadline: Deadline,
    ) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let inner = component.inner();
        let limits = &inner.limits;
        let mut state = StoreState::new(limits, deadline, CallProgress::new(), inner.capabilities.clone(), state);
        state.stdout_to_stderr = inner.stdout_to_stderr;
        let mut store = Store::new(inner.engine.engine(), state);
        store.limiter(|state| &mut state.budget);
        if inner.imports {
            // Follows every host call (counting, timing, the deadline's
            // phase, whose fault an error is). A component without imports
            // makes none, and a warm call saves two hook calls.
            store.call_hook(|mut context, hook| context.data_mut().on_call_hook(hook));
        }
        // What crosses the boundary is bounded by the guest's own budget:
        // one transfer (an export's results, one host call's arguments) may
        // make the host hold at most `copy_limit` bytes of values.
        store.set_hostcall_fuel(usize::try_from(limits.copy_limit_bytes()).unwrap_or(usize::MAX));
        store.set_max_component_handles(limits.max_handles() as usize);
        set_yielding(&mut store, mode == Mode::Async);
        arm(&mut store, limits.fuel(), deadline);
        Self {
            component,
            store,
            instance: None,
            mode,
            poisoned: None,
            awaiting: false,
            funcs: ExportCache::default(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            created: started,
            instantiate: Duration::ZERO,
            call_timeout: None,
            call_fuel: None,
            armed_calls: 1,
        }
    }

    /// Instantiates a sync store under the fuel and deadline it was armed with.
    pub(crate) fn instantiate(&mut self) -> Result<(), RuntimeError> {
        let (pre, store) = (&self.component.inner().pre, &mut self.store);
        let outcome = catch_panic(|| pre.instantiate(store));
        self.instantiated(outcome)
    }

    /// Instantiates an async store made by [`LoadedComponent::vacant_async`]
    /// under its fuel and deadline, reporting into `progress`.
    pub async fn instantiate_async(&mut self, progress: Arc<CallProgress>) -> Result<(), RuntimeError> {
        self.store.data_mut().progress = progress;
        let (pre, store) = (&self.component.inner().pre, &mut self.store);
        let outcome = catch_panic_async(pre.instantiate_async(store)).await;
        self.instantiated(outcome)
    }

    fn instantiated(&mut self, outcome: wasmtime::Result<Instance>) -> Result<(), RuntimeError> {
        self.instantiate = self.created.elapsed();
        match outcome {
            Ok(instance) => {
                self.instance = Some(instance);
                Ok(())
            }
            Err(error) => Err(self.fail(error, DeadlinePhase::Instantiation, self.created, self.instantiate)),
        }
    }

    /// Calls `export` with fresh fuel and a fresh deadline.
    pub fn call(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let started = self.begin_sync()?;
        self.invoke(export, args, started, false)
    }

    /// The second half of a fresh call: the store's fuel and deadline, armed
    /// before instantiation, go on; the report covers both.
    pub(crate) fn call_fresh(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        self.store.data().progress.enter(DeadlinePhase::Guest);
        self.invoke(export, args, self.created, true)
    }

    fn invoke(
        &mut self,
        export: &str,
        args: &[Val],
        started: Instant,
        fresh: bool,
    ) -> Result<CallOutcome, RuntimeError> {
        let (func, mut results) = self.func(export, args, fresh)?;
        let outcome = catch_panic(|| func.call(&mut self.store, args, &mut results));
        self.finish(outcome.map(|()| results), started, fresh)
    }

    /// Calls `export` with fresh fuel and `deadline`, reporting into
    /// `progress` (the async executor reads it while the call runs). With
    /// `fresh`, the call goes on with the fuel and deadline its instantiation
    /// began with, and the report covers both.
    pub async fn call_async(
        &mut self,
        export: &str,
        args: &[Val],
        deadline: Deadline,
        progress: Arc<CallProgress>,
        fresh: bool,
    ) -> Result<CallOutcome, RuntimeError> {
        let started = if fresh {
            self.store.data().progress.enter(DeadlinePhase::Guest);
            self.created
        } else {
            self.begin(deadline, Some(progress))?;
            Instant::now()
        };
        let (func, mut results) = self.func(export, args, fresh)?;
        let outcome =
            awaiting(&mut self.awaiting, catch_panic_async(func.call_async(&mut self.store, args, &mut results))).await;
        self.finish(outcome.map(|()| results), started, fresh)
    }

    /// A fresh instance's one call: `export` as a typed function, called
    /// under the budget its instantiation was armed with (one budget and
    /// one report for both).
    pub async fn call_typed_fresh_async<P, R>(
        &mut self,
        export: &str,
        params: P,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.store.data().progress.enter(DeadlinePhase::Guest);
        let typed = self.typed::<P, R>(export)?;
        let outcome =
            awaiting(&mut self.awaiting, catch_panic_async(typed.func.call_async(&mut self.store, params))).await;
        let created = self.created;
        self.finish(outcome, created, true)
    }

    /// `export` as a typed function taking `P` and returning `R` (tuples, as
    /// wasmtime's `TypedFunc`), checked against its signature once.
    pub fn typed<P, R>(&mut self, export: &str) -> Result<TypedExport<P, R>, RuntimeError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let func = self.lookup(export)?;
        let func = func.typed::<P, R>(&self.store).map_err(|error| {
            invalid_arguments(export, format!("the export does not have the requested signature: {error:#}"))
        })?;
        Ok(TypedExport { func, export: export.into(), instance: self.id })
    }

    /// Calls a typed export of this instance with fresh fuel and a fresh deadline.
    pub fn call_typed<P, R>(&mut self, export: &TypedExport<P, R>, params: P) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.check_typed(export)?;
        let started = self.begin_sync()?;
        let outcome = catch_panic(|| export.func.call(&mut self.store, params));
        self.finish(outcome, started, false)
    }

    /// Like [`call_typed`](Self::call_typed), on an async store, due by
    /// `deadline` and reporting into `progress`.
    pub async fn call_typed_async<P, R>(
        &mut self,
        export: &TypedExport<P, R>,
        params: P,
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.check_typed(export)?;
        self.begin(deadline, Some(progress))?;
        let started = Instant::now();
        let outcome =
            awaiting(&mut self.awaiting, catch_panic_async(export.func.call_async(&mut self.store, params))).await;
        self.finish(outcome, started, false)
    }

    /// Readies the store for a synchronous call due one timeout from now,
    /// and returns when the call began. An async store yields to its
    /// executor: a synchronous call would fail inside wasmtime.
    fn begin_sync(&mut self) -> Result<Instant, RuntimeError> {
        if self.mode == Mode::Async {
            return Err(RuntimeError::AsyncRequired);
        }
        let started = Instant::now();
        self.begin(Deadline::starting_at(started, self.call_timeout()), None)?;
        Ok(started)
    }

    /// Runs `call` with the store and the instance under fresh fuel and a
    /// fresh deadline, inside the panic boundary, with the same report as
    /// any call: for `bindgen!`-generated export wrappers
    /// (`Guest::new(&mut store, &instance)?.call_run(&mut store)`).
    pub fn run<R>(
        &mut self,
        call: impl FnOnce(StoreContextMut<'_, StoreState<T>>, Instance) -> wasmtime::Result<R>,
    ) -> Result<TypedOutcome<R>, RuntimeError> {
        let started = self.begin_sync()?;
        let instance = self.instantiated_instance()?;
        let store = self.store.as_context_mut();
        let outcome = catch_panic(|| call(store, instance));
        self.finish_run(outcome, started)
    }

    /// Like [`run`](Self::run), on an async store, due by `deadline` and
    /// reporting into `progress`; `call` returns a boxed future borrowing
    /// the store.
    pub async fn run_async<R, F>(
        &mut self,
        call: F,
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        F: for<'a> FnOnce(StoreContextMut<'a, StoreState<T>>, Instance) -> StoreFuture<'a, R>,
    {
        self.begin(deadline, Some(progress))?;
        let instance = self.instantiated_instance()?;
        let started = Instant::now();
        let outcome =
            awaiting(&mut self.awaiting, catch_panic_async(call(self.store.as_context_mut(), instance))).await;
        self.finish_run(outcome, started)
    }

    /// [`finish`](Self::finish) for the embedder's own code: an error raised
    /// before the guest ran (no fuel burned, no guest frame in it) is the
    /// embedder's mistake, a usage error that poisons nothing.
    fn finish_run<R>(
        &mut self,
        outcome: wasmtime::Result<R>,
        started: Instant,
    ) -> Result<TypedOutcome<R>, RuntimeError> {
        if let Err(error) = &outcome
            && error.downcast_ref::<wasmtime::WasmBacktrace>().is_none()
            && error.downcast_ref::<HostFunctionError>().is_none()
            && fuel_consumed(&self.store, self.armed_fuel()) == 0
        {
            return Err(RuntimeError::Usage { message: format!("{error:#}") });
        }
        self.finish(outcome, started, false)
    }

    fn instantiated_instance(&self) -> Result<Instance, RuntimeError> {
        self.instance.ok_or_else(|| RuntimeError::Internal { message: "the instance was never instantiated".into() })
    }

    fn check_typed<P, R>(&self, export: &TypedExport<P, R>) -> Result<(), RuntimeError> {
        if export.instance == self.id {
            Ok(())
        } else {
            Err(invalid_arguments(&export.export, "this typed export belongs to another instance".to_owned()))
        }
    }

    /// Readies the store for a call due by `deadline`, reporting into
    /// `progress` (an async caller's) or into the instance's own tracker.
    fn begin(&mut self, deadline: Deadline, progress: Option<Arc<CallProgress>>) -> Result<(), RuntimeError> {
        self.begin_calls(deadline, progress, 1)
    }

    /// [`begin`](Self::begin) for `calls` calls at once, which share the
    /// store's fuel: `calls` times a call's.
    fn begin_calls(
        &mut self,
        deadline: Deadline,
        progress: Option<Arc<CallProgress>>,
        calls: u64,
    ) -> Result<(), RuntimeError> {
        if self.awaiting {
            self.poisoned.get_or_insert(PoisonCause::DroppedMidCall);
        }
        if let Some(by) = self.poisoned {
            return Err(RuntimeError::Poisoned { by });
        }
        self.yield_if_async(progress.is_some());
        let state = self.store.data_mut();
        match progress {
            Some(progress) => state.progress = progress,
            None => CallProgress::renew(&mut state.progress),
        }
        state.progress.enter(DeadlinePhase::Guest);
        state.budget.begin_call();
        state.mark_output();
        self.armed_calls = calls;
        let fuel = self.armed_fuel();
        arm(&mut self.store, fuel, deadline);
        Ok(())
    }

    /// Makes the store yield to its executor at epoch ticks and fuel chunks
    /// for an async caller (which passes its progress tracker). wasmtime
    /// cannot turn that off again, so an instance made synchronously is an
    /// async one from its first async call: a later synchronous call is
    /// refused with `async-required`, poisoning nothing.
    fn yield_if_async(&mut self, async_caller: bool) {
        if !async_caller || self.mode == Mode::Async {
            return;
        }
        set_yielding(&mut self.store, true);
        self.mode = Mode::Async;
    }

    /// The function for `export` and a results buffer, after checking `args`
    /// against its parameters. Looked up once per export and instance.
    /// Callers checked the poison first ([`begin`](Self::begin); a fresh
    /// store is only called after its instantiation succeeded).
    fn func(&mut self, export: &str, args: &[Val], fresh: bool) -> Result<(Func, Vec<Val>), RuntimeError> {
        let cached = if fresh { None } else { self.funcs.find(export) };
        let (func, position) = match cached {
            Some(cached) => cached,
            None => {
                let (position, exported) = self.component.export(export)?;
                let index = exported.index;
                let func = self.instantiated_instance()?.get_func(&mut self.store, index);
                let func = func.ok_or_else(|| self.component.no_such_export(export))?;
                // One call in a fresh store: caching the export would cost
                // more than it saves.
                if !fresh {
                    self.funcs.insert(export, (func, position));
                }
                (func, position)
            }
        };
        let Some(exported) = self.component.export_at(position) else {
            return Err(self.component.no_such_export(export));
        };
        crate::typecheck::check_arguments(exported.params.iter().map(|(name, ty)| (&**name, ty)), args)
            .map_err(|reason| invalid_arguments(export, reason))?;
        Ok((func, vec![Val::Bool(false); exported.results.len()]))
    }

    fn lookup(&mut self, export: &str) -> Result<Func, RuntimeError> {
        let (_, exported) = self.component.export(export)?;
        let index = exported.index;
        let instance = self.instantiated_instance()?;
        instance.get_func(&mut self.store, index).ok_or_else(|| self.component.no_such_export(export))
    }

    fn finish<R>(
        &mut self,
        outcome: wasmtime::Result<R>,
        started: Instant,
        fresh: bool,
    ) -> Result<TypedOutcome<R>, RuntimeError> {
        // A fresh call's report covers its instantiation; a live call's does not.
        let instantiate = if fresh { self.instantiate } else { Duration::ZERO };
        match outcome {
            Ok(results) => Ok(TypedOutcome { results, report: self.report(started, instantiate) }),
            Err(error) => Err(self.fail(error, DeadlinePhase::Guest, started, instantiate)),
        }
    }
}

impl<T: Send + 'static> ComponentInstance<T> {
    /// Calls several exports at once, each a task of its own in this one
    /// instance (wasmtime's `call_concurrent`, all inside one
    /// `run_concurrent`): with component-model async the tasks interleave,
    /// and one that awaits a host future lets the others run. They share
    /// one `deadline`, the instance's memory, handle and host budgets, and
    /// `calls.len()` times a call's fuel (wasmtime meters fuel per store,
    /// not per task); one report covers them all. Wasmtime 48 cannot cancel
    /// one task without the store, so the calls end together: every one
    /// returns, or the first trap (or the deadline) fails them all and
    /// poisons the instance. Returns each call's results, in order.
    pub async fn call_concurrent_async(
        &mut self,
        calls: &[(&str, &[Val])],
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<TypedOutcome<Vec<Vec<Val>>>, RuntimeError> {
        // A poisoned instance says so before any export is looked up.
        let count = u64::try_from(calls.len()).unwrap_or(u64::MAX);
        self.begin_calls(deadline, Some(progress), count)?;
        let mut prepared = Vec::with_capacity(calls.len());
        for (export, args) in calls {
            let (func, results) = self.func(export, args, false)?;
            prepared.push((func, *args, results));
        }
        let started = Instant::now();
        let run = self.store.run_concurrent(async move |accessor| -> wasmtime::Result<Vec<Vec<Val>>> {
            let mut pending = Vec::with_capacity(prepared.len());
            // Every call is queued before the first is awaited, so they
            // run together while this awaits each in turn.
            for (func, args, results) in &mut prepared {
                let func = *func;
                pending.push((func, accessor.with(|store| func.start_call_concurrent(store, args, results))?));
            }
            for (func, call) in pending {
                func.finish_call_concurrent(accessor, call).await?;
            }
            Ok(prepared.into_iter().map(|(_, _, results)| results).collect())
        });
        let outcome = awaiting(&mut self.awaiting, catch_panic_async(async { run.await? })).await;
        self.finish(outcome, started, false)
    }
}

impl<T: 'static> ComponentInstance<T> {
    /// Memory in use now and at peak.
    pub fn usage(&self) -> runtime_limits::Usage {
        self.store.data().budget.usage()
    }

    /// The embedder's state of this instance.
    pub fn host(&self) -> &T {
        self.store.data().host()
    }

    /// The embedder's state of this instance, mutably.
    pub fn host_mut(&mut self) -> &mut T {
        self.store.data_mut().host_mut()
    }

    /// The embedder's state, taken out of the instance, which ends: an actor
    /// replaced after a crash carries its state into the next instance.
    pub fn into_host(self) -> T {
        self.store.into_data().into_host()
    }

    /// Refuses every later call with [`RuntimeError::Poisoned`]: for a host
    /// that stopped a call from outside (its deadline, a cancellation).
    pub fn poison(&mut self, by: PoisonCause) {
        self.poisoned.get_or_insert(by);
    }

    /// Whether an earlier crash, a call stopped from outside, or a call
    /// whose future was dropped poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some() || self.awaiting
    }

    /// Ends each later call of this instance after `timeout` if that is
    /// sooner than the manifest's timeout (which always caps it); `None`
    /// goes back to the manifest's. For a supervisor that gives one
    /// message less time than the component's worst case.
    pub fn set_call_timeout(&mut self, timeout: Option<Duration>) {
        self.call_timeout = timeout;
    }

    /// How long each call of this instance may take: the manifest's
    /// timeout, or a shorter one set with [`set_call_timeout`](Self::set_call_timeout).
    pub fn call_timeout(&self) -> Duration {
        let manifest = self.component.limits().timeout();
        self.call_timeout.map_or(manifest, |timeout| timeout.min(manifest))
    }

    /// Gives each later call of this instance `fuel` if that is less than
    /// the manifest's fuel (which always caps it); `None` goes back to the
    /// manifest's. For an actor host that gives one message less work than
    /// the component's worst case: running out is `out-of-fuel` and
    /// poisons the instance, like any crash.
    pub fn set_call_fuel(&mut self, fuel: Option<u64>) {
        self.call_fuel = fuel;
    }

    /// The fuel each call of this instance gets: the manifest's, or less
    /// set with [`set_call_fuel`](Self::set_call_fuel).
    pub fn call_fuel(&self) -> u64 {
        let manifest = self.component.limits().fuel();
        self.call_fuel.map_or(manifest, |fuel| fuel.min(manifest))
    }

    /// The fuel the store was armed with: a call's, times the calls.
    fn armed_fuel(&self) -> u64 {
        self.call_fuel().saturating_mul(self.armed_calls)
    }

    /// What the embedder's imports charged of this instance's host-memory
    /// budget ([`StoreState::charge_host_memory`]).
    pub fn host_memory_charged(&self) -> u64 {
        self.store.data().host_memory_charged()
    }

    /// Charges `bytes` that the host state carried over from an earlier
    /// instance already holds (a restart in place keeps the state).
    pub fn carry_host_memory(&mut self, bytes: u64) {
        self.store.data_mut().carry_host_memory(bytes);
    }

    /// A number no other instance of this process has.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The component this is an instance of.
    pub fn component(&self) -> &LoadedComponent<T> {
        &self.component
    }

    /// The report of a call abandoned from outside after `wall` (its deadline
    /// passed while it was blocked, or it was cancelled): fuel and memory as
    /// the store last saw them, host calls from `progress`.
    pub fn abandoned_report(&self, progress: &CallProgress, wall: Duration) -> CallReport {
        let mut report = self.report(Instant::now(), Duration::ZERO);
        report.wall = wall;
        report.host_calls = progress.host_calls();
        report.host_time = progress.host_time();
        report
    }

    /// What instantiation used: the fuel, memory and time of its start
    /// functions and host calls, from the store's creation until now.
    pub fn instantiation_report(&self) -> CallReport {
        self.report(self.created, self.instantiate)
    }

    fn report(&self, started: Instant, instantiate: Duration) -> CallReport {
        let state = self.store.data();
        let usage = state.budget.usage();
        let limits = self.component.limits();
        let (stdout, stderr) = state.captured_output().map_or((None, None), |(out, err)| (Some(out), Some(err)));
        CallReport {
            fuel_consumed: fuel_consumed(&self.store, self.armed_fuel()),
            fuel_limit: self.armed_fuel(),
            current_memory_bytes: usage.current_memory_bytes,
            peak_memory_bytes: usage.peak_memory_bytes,
            memory_limit_bytes: limits.memory_bytes(),
            wall: started.elapsed(),
            instantiate,
            queue_wait: Duration::ZERO,
            host_calls: state.progress.host_calls(),
            host_time: state.progress.host_time(),
            stdout,
            stderr,
            disk: state.disk_usage(),
        }
    }

    /// The crash `error` raised while `phase`, which poisons the instance;
    /// its report counts from `started` and includes `instantiate`.
    fn fail(
        &mut self,
        error: wasmtime::Error,
        phase: DeadlinePhase,
        started: Instant,
        instantiate: Duration,
    ) -> RuntimeError {
        let crash = crash(self, error, phase, started, instantiate);
        if let RuntimeError::Crash(report) = &crash {
            self.poisoned = Some(PoisonCause::Crash(report.kind));
        }
        crash
    }
}

fn crash<T: 'static>(
    instance: &ComponentInstance<T>,
    error: wasmtime::Error,
    phase: DeadlinePhase,
    started: Instant,
    instantiate: Duration,
) -> RuntimeError {
    if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        return RuntimeError::Busy { waited: Duration::ZERO };
    }
    let state = instance.store.data();
    let classification = classify(&error, phase, state);
    let mut message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    if let Some(function) = &classification.function {
        message = format!("host function {function} failed: {message}");
    }
    let limits: &ResourceLimits = instance.component.limits();
    let detail = match classification.kind {
        CrashKind::CopyLimitExceeded => Some(format!(
            "the copy limit is {} bytes per transfer ({} bytes of memory budget times the policy's factor)",
            limits.copy_limit_bytes(),
            limits.memory_bytes()
        )),
        CrashKind::HandleLimitExceeded => {
            Some(format!("the handle limit is {} handles per instance", limits.max_handles()))
        }
        CrashKind::HostMemoryLimitExceeded => Some(format!(
            "the host-side budget is {} bytes ({} bytes of memory budget times the policy's `host-memory-factor`)",
            limits.host_memory_bytes(),
            limits.memory_bytes()
        )),
        _ => classification.detail,
    };
    let function = classification.function.as_ref().map(ToString::to_string);
    // The host's own error, kept whole: the embedder may downcast it.
    let source = (classification.kind == CrashKind::HostError).then(|| std::sync::Arc::new(error));
    RuntimeError::Crash(Box::new(CrashReport {
        kind: classification.kind,
        message,
        detail,
        wasm_backtrace: classification.backtrace,
        function,
        source,
        report: instance.report(started, instantiate),
    }))
}

/// `RuntimeError::InvalidArguments` for `export`.
pub(crate) fn invalid_arguments(export: &str, reason: String) -> RuntimeError {
    RuntimeError::InvalidArguments { export: export.to_owned(), reason }
}

/// Runs `call`; a panic that escapes it (from a host function the embedder
/// linked itself: wasmtime carries it out of the guest) becomes a
/// `host-panic` error of this call only.
fn catch_panic<R>(call: impl FnOnce() -> wasmtime::Result<R>) -> wasmtime::Result<R> {
    std::panic::catch_unwind(AssertUnwindSafe(call)).unwrap_or_else(|panic| Err(panic_error(&*panic)))
}

/// [`catch_panic`] for a future.
async fn catch_panic_async<R>(call: impl Future<Output = wasmtime::Result<R>>) -> wasmtime::Result<R> {
    let mut call = std::pin::pin!(call);
    std::future::poll_fn(|cx| {
        std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(cx)))
            .unwrap_or_else(|panic| std::task::Poll::Ready(Err(panic_error(&*panic))))
    })
    .await
}

fn panic_error(panic: &(dyn std::any::Any + Send)) -> wasmtime::Error {
    wasmtime::Error::new(HostFunctionError {
        function: "an import the embedder linked".to_owned(),
        panicked: true,
        message: crate::host::panic_message(panic),
    })
}

/// The exports of a live instance looked up so far, each with its position
/// in the component's export table (which holds its signature). The export
/// called last is checked first, without hashing: most callers call one
/// export over and over.
#[derive(Default)]
struct ExportCache {
    entries: Vec<(Box<str>, Func, usize)>,
    by_name: HashMap<Box<str>, usize>,
    last: usize,
}

impl ExportCache {
    /// `export`'s function and table position, if looked up before.
    fn find(&mut self, export: &str) -> Option<(Func, usize)> {
        if let Some((name, func, position)) = self.entries.get(self.last)
            && **name == *export
        {
            return Some((*func, *position));
        }
        let index = *self.by_name.get(export)?;
        self.last = index;
        self.entries.get(index).map(|(_, func, position)| (*func, *position))
    }

    fn insert(&mut self, export: &str, (func, position): (Func, usize)) {
        self.last = self.entries.len();
        self.by_name.insert(export.into(), self.last);
        self.entries.push((export.into(), func, position));
    }
}

/// Gives `store` the fuel of one call and the deadline the epoch callback
/// (installed once per store) checks.
/// Whether the store yields to its executor at epoch ticks and fuel chunks
/// (async stores) or only checks its deadline there (synchronous ones).
fn set_yielding<T: 'static>(store: &mut Store<StoreState<T>>, yielding: bool) {
    if yielding {
        // Fuel is always enabled by the engine and the chunk is not zero.
        let _ = store.fuel_async_yield_interval(Some(ASYNC_FUEL_CHUNK));
    }
    Deadline::install_callback(store, yielding);
}

/// Awaits `call` with `flag` set: a future dropped mid-call leaves it set.
async fn awaiting<R>(flag: &mut bool, call: impl Future<Output = R>) -> R {
    *flag = true;
    let outcome = call.await;
    *flag = false;
    outcome
}

fn arm<T: 'static>(store: &mut Store<StoreState<T>>, fuel: u64, deadline: Deadline) {
    // Fuel is always enabled by the engine; `set_fuel` cannot fail then.
    let _ = store.set_fuel(fuel);
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
}
