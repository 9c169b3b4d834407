//! [`LoadedComponent`] and [`Instance`]: every way to call a component, each
//! through the same admission, fuel, deadline, panic boundary, report,
//! tracing span and observer.

use std::sync::Arc;
use std::time::Instant;

use runtime_async::{Admission, AsyncExecutor, CancellationToken, ComponentQuota, QuotaPermit};
use runtime_core::ComponentInstance;
use tracing::Instrument as _;
use wasmtime::component::{ComponentNamedList, Lift, Lower, Val};

use runtime_manifest::WasiConfig;

use crate::observing::{CallObserver, Operation, call_span, finished, kind_of};
use crate::{
    CallOutcome, CallReport, ExportSignature, LoadError, ResourceLimits, RuntimeError, StoreFuture, StoreState,
    TypedExport, TypedOutcome,
};
use wasmtime::StoreContextMut;

/// What every component of one runtime shares: its admission and its observer.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) executor: AsyncExecutor,
    pub(crate) observer: Option<Arc<dyn CallObserver>>,
}

impl Shared {
    /// When the call began, if anyone will ask: with no observer and no
    /// subscriber, a warm call saves reading the clock twice.
    fn clock(&self, span: &tracing::Span) -> Option<Instant> {
        (self.observer.is_some() || !span.is_disabled()).then(Instant::now)
    }

    /// Runs `work` inside `span`, then tells the span and the observer how
    /// it ended.
    fn observed<R>(
        &self,
        span: tracing::Span,
        component: &str,
        export: Operation<'_>,
        report: impl FnOnce(&R) -> &CallReport,
        work: impl FnOnce() -> Result<R, RuntimeError>,
    ) -> Result<R, RuntimeError> {
        let started = self.clock(&span);
        let result = span.in_scope(work);
        self.observe(&span, component, export, started, result, report)
    }

    /// [`observed`](Self::observed) for a future.
    async fn observed_async<R>(
        &self,
        span: tracing::Span,
        component: &str,
        export: Operation<'_>,
        report: impl FnOnce(&R) -> &CallReport,
        work: impl Future<Output = Result<R, RuntimeError>>,
    ) -> Result<R, RuntimeError> {
        let started = self.clock(&span);
        let result = work.instrument(span.clone()).await;
        self.observe(&span, component, export, started, result, report)
    }

    fn observe<R>(
        &self,
        span: &tracing::Span,
        component: &str,
        export: Operation<'_>,
        started: Option<Instant>,
        result: Result<R, RuntimeError>,
        report: impl FnOnce(&R) -> &CallReport,
    ) -> Result<R, RuntimeError> {
        let Some(started) = started else { return result };
        let kind = kind_of(&result);
        let used = match &result {
            Ok(outcome) => Some(report(outcome)),
            Err(error) => error.report(),
        };
        finished(self.observer.as_deref(), span, component, export, kind, used, started.elapsed());
        result
    }
}

/// A component loaded under its manifest's limits and grants, ready to call.
/// `T` is the embedder's state, one value per instance, reachable from every
/// host function. Cloning is cheap.
///
/// | entry point | instance | admission | fuel and deadline |
/// |---|---|---|---|
/// | [`call`](Self::call), [`call_with`](Self::call_with) | fresh, sync | one of the quota and the [`pool_slots`](Self::pool_slots) now, else `busy` | one budget for instantiation and call |
/// | [`call_async`](Self::call_async), [`call_async_with`](Self::call_async_with) | fresh, on Tokio | waits in the component's queue, then the runtime's | the same; the deadline also covers blocked host calls |
/// | [`instantiate`](Self::instantiate), [`instantiate_async`](Self::instantiate_async), [`instantiate_async_with`](Self::instantiate_async_with) | live ([`Instance`]) | its quota and slots are held while it lives | instantiation has its own; each call gets its own ([`Instance::set_call_timeout`] shortens it) |
///
/// A component that imports anything (WASI, host functions) is linked
/// against async functions: its synchronous entry points refuse it with
/// `async-required`.
pub struct LoadedComponent<T: 'static = ()> {
    pub(crate) core: runtime_core::LoadedComponent<T>,
    pub(crate) shared: Shared,
    pub(crate) name: Arc<str>,
    /// `resources.instances`, shared by every clone.
    pub(crate) quota: ComponentQuota,
    /// Where its manifest's relative directories live.
    pub(crate) base_dir: Arc<std::path::Path>,
    /// The runtime's grant policy, for an instance's own WASI.
    pub(crate) grant_policy: runtime_manifest::GrantPolicy,
}

impl<T> Clone for LoadedComponent<T> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            shared: self.shared.clone(),
            name: self.name.clone(),
            quota: self.quota.clone(),
            base_dir: self.base_dir.clone(),
            grant_policy: self.grant_policy,
        }
    }
}

impl<T> std::fmt::Debug for LoadedComponent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent").field("name", &self.name).field("core", &self.core).finish()
    }
}

impl<T: Send + 'static> LoadedComponent<T> {
    /// Calls `export` (`name`, or `interface#name` for a function inside an
    /// exported interface) with `args` in a fresh instance, synchronously,
    /// with the default host state.
    pub fn call(&self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError>
    where
        T: Default,
    {
        self.call_with(T::default(), export, args)
    }

    /// [`call`](Self::call) with host state `state`.
    pub fn call_with(&self, state: T, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let span = call_span!("call", self.name, export);
        self.shared.observed(span, &self.name, Operation::Call(export), report_of, || {
            let _quota = self.quota.try_admit()?;
            self.shared.executor.try_admit(&self.core).and_then(|_slot| self.core.call_with(state, export, args))
        })
    }

    /// Calls `export` in a fresh instance on Tokio with the default host
    /// state: at most the policy's `[resources] concurrent-instances` calls run at
    /// once (others wait in the queue, then fail with `busy`), one deadline
    /// covers the whole call including blocked host functions, and dropping
    /// the future cancels it.
    pub async fn call_async(&self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError>
    where
        T: Default,
    {
        self.call_async_with(T::default(), export, args, None).await
    }

    /// [`call_async`](Self::call_async) of a typed export, in a fresh
    /// instance: `P` and `R` are tuples as wasmtime's `TypedFunc` takes
    /// them, checked against the export's signature before the guest runs
    /// (a mismatch is `invalid-arguments`, naming both), and no `Val` is
    /// built on either side.
    pub async fn call_typed_async<P, R>(&self, export: &str, params: P) -> Result<TypedOutcome<R>, RuntimeError>
    where
        T: Default,
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        self.call_typed_async_with(T::default(), export, params, None).await
    }

    /// [`call_typed_async`](Self::call_typed_async) with host state
    /// `state`, also ended with `cancelled` when `cancel` is cancelled.
    pub async fn call_typed_async_with<P, R>(
        &self,
        state: T,
        export: &str,
        params: P,
        cancel: Option<&CancellationToken>,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let span = call_span!("call", self.name, export);
        let call = async {
            let quota = self.quota.admit().await?;
            let outcome = self.shared.executor.call_typed_fresh(&self.core, state, export, params, cancel).await;
            runtime_async::add_queue_wait(outcome, quota.waited(), |outcome| &mut outcome.report)
        };
        self.shared.observed_async(span, &self.name, Operation::Call(export), report_of, call).await
    }

    /// [`call_async`](Self::call_async) with host state `state`, also ended
    /// with `cancelled` when `cancel` is cancelled.
    pub async fn call_async_with(
        &self,
        state: T,
        export: &str,
        args: &[Val],
        cancel: Option<&CancellationToken>,
    ) -> Result<CallOutcome, RuntimeError> {
        let span = call_span!("call", self.name, export);
        let call = async {
            let quota = self.quota.admit().await?;
            let outcome = self.shared.executor.call(&self.core, state, export, args, cancel).await;
            runtime_async::add_queue_wait(outcome, quota.waited(), |outcome| &mut outcome.report)
        };
        self.shared.observed_async(span, &self.name, Operation::Call(export), report_of, call).await
    }

    /// A live instance with host state `state`, for several synchronous calls
    /// that share the guest's memory. It holds an instance slot until dropped.
    pub fn instantiate(&self, state: T) -> Result<Instance<T>, RuntimeError> {
        let span = call_span!("instantiate", self.name, "instantiate");
        self.shared.observed(span, &self.name, Operation::Instantiate, instantiated_report, || {
            let quota = self.quota.try_admit()?;
            self.shared.executor.try_admit(&self.core).and_then(|admission| {
                let instance = self.core.instantiate_with(state)?;
                Ok(self.live(instance, admission, quota))
            })
        })
    }

    /// A live instance with host state `state` on Tokio, once admitted (it
    /// holds its slot until dropped); instantiation runs under the
    /// component's deadline, start functions and host calls included.
    pub async fn instantiate_async(&self, state: T) -> Result<Instance<T>, RuntimeError> {
        self.instantiate_async_with(state, None).await
    }

    /// [`instantiate_async`](Self::instantiate_async), also ended with
    /// `cancelled` when `cancel` is cancelled: once admitted, at once if it
    /// already is, else wherever its start functions are.
    pub async fn instantiate_async_with(
        &self,
        state: T,
        cancel: Option<&CancellationToken>,
    ) -> Result<Instance<T>, RuntimeError> {
        let span = call_span!("instantiate", self.name, "instantiate");
        let instantiate = async {
            let quota = self.quota.admit().await?;
            let (instance, admission) = self.shared.executor.instantiate(&self.core, state, cancel).await?;
            Ok(self.live(instance, admission, quota))
        };
        self.shared.observed_async(span, &self.name, Operation::Instantiate, instantiated_report, instantiate).await
    }

    /// [`instantiate_async_with`](Self::instantiate_async_with) for work
    /// whose deadline `by` began before it queued (a served request's): it
    /// waits for its quota and slot at most until `by` and is `busy` if it
    /// got none by then (or `by` passed while it waited), never
    /// `deadline-exceeded`; instantiation gets only what is left of `by`.
    pub async fn instantiate_async_by(
        &self,
        state: T,
        by: Instant,
        cancel: Option<&CancellationToken>,
    ) -> Result<Instance<T>, RuntimeError> {
        let span = call_span!("instantiate", self.name, "instantiate");
        let instantiate = async {
            let quota = self.quota.admit_within(by.saturating_duration_since(Instant::now())).await?;
            let (instance, admission) =
                self.shared.executor.instantiate_by(&self.core, state, by, cancel).await.map_err(|mut error| {
                    if let RuntimeError::Busy { waited } = &mut error {
                        *waited += quota.waited();
                    }
                    error
                })?;
            Ok(self.live(instance, admission, quota))
        };
        self.shared.observed_async(span, &self.name, Operation::Instantiate, instantiated_report, instantiate).await
    }

    fn live(&self, core: ComponentInstance<T>, admission: Admission, quota: QuotaPermit) -> Instance<T> {
        let mut instantiated = core.instantiation_report();
        instantiated.queue_wait = admission.waited() + quota.waited();
        Instance {
            core,
            _admission: admission,
            _quota: quota,
            cancel: CancellationToken::new(),
            current_call: CallCanceller::default(),
            shared: self.shared.clone(),
            name: self.name.clone(),
            instantiated,
        }
    }

    /// The same component with `wasi` as its instances' WASI: an actor's
    /// own arguments, environment, data directory or output, beside or
    /// instead of the manifest's (see [`InstanceWasi`]). Cheap enough to do
    /// per actor; it shares the component's quota, code and links.
    pub fn with_instance_wasi(&self, wasi: &InstanceWasi) -> Result<Self, RuntimeError> {
        let refuse = |grant: String, reason: &str| LoadError::DirGrant {
            guest: grant,
            host: String::new(),
            reason: reason.to_owned(),
        };
        let mut config = self.wasi_config().clone();
        if let Some(args) = &wasi.args {
            config.args.clone_from(args);
        }
        if let Some(env) = &wasi.env {
            for (name, value) in env {
                runtime_manifest::check_env_var(name, value).map_err(|reason| RuntimeError::Usage {
                    message: format!("the instance's environment variable `{name}`: {reason}"),
                })?;
            }
            config.env.clone_from(env);
        }
        if let Some(stdio) = wasi.stdio {
            config.stdio = stdio;
        }
        for (guest, dir) in &wasi.dirs {
            runtime_manifest::check_guest_dir(guest).map_err(|reason| refuse(guest.clone(), reason))?;
            config.dirs.insert(guest.clone(), dir.clone());
        }
        // The host named these directories itself: absolute paths are its
        // to give; directories at all, symlinks and quotas stay the policy's.
        let mut policy = self.grant_policy;
        policy.absolute_dirs = true;
        if let Some((grant, policy_key)) = policy.refusals(&config).into_iter().next() {
            return Err(LoadError::GrantRefused { grant, policy_key }.into());
        }
        let program = runtime_wasi::WasiGrants::of(self.core.capabilities())
            .map_or("component", runtime_wasi::WasiGrants::program_name)
            .to_owned();
        let mut grants =
            runtime_wasi::WasiGrants::resolve(&config, &self.base_dir, &policy)?.with_program_name(program);
        if let Some(seed) = wasi.replay_seed {
            grants = grants.with_replay_seed(seed);
        }
        let mut derived = self.clone();
        derived.core = self.core.clone().with_capabilities(grants.into_capabilities());
        Ok(derived)
    }

    /// The same component with an inherited stdout sent to the host's stderr
    /// instead: for hosts whose own stdout carries something else (the CLI's
    /// `--json` object), so a guest cannot forge it.
    pub fn with_stdout_to_stderr(self, redirect: bool) -> Self {
        Self { core: self.core.with_stdout_to_stderr(redirect), ..self }
    }
}

impl<T: 'static> LoadedComponent<T> {
    /// The component's name, from its manifest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many of the runtime's instance slots one instance takes: one,
    /// unless it defines more memories or tables than a pool slot holds
    /// (two of each), so that an admitted instance always fits the pool.
    pub fn pool_slots(&self) -> u32 {
        self.core.pool_slots()
    }

    /// How many more instances of this component may start now, fresh
    /// calls and live instances alike, out of its `resources.instances`.
    pub fn available_instances(&self) -> usize {
        self.quota.available()
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &ResourceLimits {
        self.core.limits()
    }

    /// The WASI authority its manifest's `[wasi]` table grants.
    pub fn wasi_config(&self) -> &WasiConfig {
        static NOTHING: std::sync::LazyLock<WasiConfig> = std::sync::LazyLock::new(WasiConfig::default);
        runtime_wasi::WasiGrants::of(self.core.capabilities()).map_or(&NOTHING, runtime_wasi::WasiGrants::config)
    }

    /// The parameter and result types of a function export.
    pub fn signature(&self, export: &str) -> Result<ExportSignature, RuntimeError> {
        self.core.signature(export)
    }

    /// Every function export, as `name` or `interface#name`.
    pub fn export_names(&self) -> &[String] {
        self.core.export_names()
    }

    /// The export that runs the component as a command
    /// (`wasi:cli/run@VERSION#run`), if it has one.
    pub fn command_export(&self) -> Option<String> {
        self.core.command_export()
    }

    /// Checks `args` against `export`'s parameters without running anything:
    /// every call does this before guest code runs.
    pub fn check_arguments(&self, export: &str, args: &[Val]) -> Result<(), RuntimeError> {
        self.core.check_arguments(export, args)
    }

    /// Whether the synchronous entry points refuse this component (it
    /// imports async host functions or WASI).
    pub fn requires_async(&self) -> bool {
        self.core.requires_async()
    }
}

/// What a call used, for the observer.
fn report_of<R>(outcome: &TypedOutcome<R>) -> &CallReport {
    &outcome.report
}

/// Cancels the async call an [`Instance`] has in progress, and nothing
/// else: for a supervisor that interrupts one message of an actor. Cheap
/// to clone; every clone reaches the same instance.
#[derive(Clone, Debug, Default)]
pub struct CallCanceller {
    current: Arc<std::sync::Mutex<Option<CancellationToken>>>,
    /// A canceller was handed out: calls get tokens of their own.
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl CallCanceller {
    /// Cancels the call in progress, if there is one: it ends `cancelled`
    /// and poisons its instance (the guest stopped mid-way). An idle
    /// instance is left as it is. Returns whether a call was in progress.
    pub fn cancel_current(&self) -> bool {
        let current = self.current.lock().map(|mut current| current.take()).unwrap_or_default();
        current.inspect(CancellationToken::cancel).is_some()
    }

    /// A fresh token for the call that begins, a child of the instance's,
    /// once a canceller was handed out; until then the instance's own (a
    /// warm call pays nothing for a canceller nobody holds).
    fn begin(&self, instance: &CancellationToken) -> Option<CancellationToken> {
        if !self.armed.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let token = instance.child_token();
        if let Ok(mut current) = self.current.lock() {
            *current = Some(token.clone());
        }
        Some(token)
    }

    fn end(&self) {
        if self.armed.load(std::sync::atomic::Ordering::Acquire)
            && let Ok(mut current) = self.current.lock()
        {
            *current = None;
        }
    }
}

/// What an instantiation used, for the observer.
fn instantiated_report<T>(instance: &Instance<T>) -> &CallReport {
    &instance.instantiated
}

/// A live instance: calls share the guest's memory and the embedder's state
/// `T`. It holds an instance slot of the runtime until dropped. A call
/// stopped mid-way (a crash, a deadline, a cancellation, its future
/// dropped) poisons it: later calls are refused with `poisoned`, naming the
/// [`PoisonCause`](crate::PoisonCause); a wrong argument is refused before
/// the guest runs and poisons nothing, and so is a call refused because the
/// instance's token was cancelled before it began.
pub struct Instance<T: 'static = ()> {
    core: ComponentInstance<T>,
    _admission: Admission,
    /// One of its component's `resources.instances`.
    _quota: QuotaPermit,
    cancel: CancellationToken,
    /// The token of the async call in progress, for a [`CallCanceller`].
    current_call: CallCanceller,
    shared: Shared,
    name: Arc<str>,
    /// The report of the instantiation: its start functions' fuel, memory
    /// and time, and its queue wait.
    instantiated: CallReport,
}

impl<T> std::fmt::Debug for Instance<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance").field("name", &self.name).field("core", &self.core).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Instance<T> {
    /// Calls `export` synchronously with fresh fuel and a fresh deadline
    /// (an instance from [`LoadedComponent::instantiate`]).
    pub fn call(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let span = call_span!("call", self.name, export);
        self.shared.observed(span, &self.name, Operation::InstanceCall(export, self.core.id()), report_of, || {
            self.core.call(export, args)
        })
    }

    /// Calls `export` on Tokio with fresh fuel and a fresh deadline that also
    /// covers host calls; ended by the instance's
    /// [`cancellation_token`](Self::cancellation_token). A call stopped from
    /// outside (deadline, cancellation) poisons the instance.
    pub async fn call_async(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let span = call_span!("call", self.name, export);
        let token = self.current_call.begin(&self.cancel);
        let id = self.core.id();
        let call = self.shared.executor.call_instance(
            &mut self.core,
            export,
            args,
            Some(token.as_ref().unwrap_or(&self.cancel)),
        );
        let outcome =
            self.shared.observed_async(span, &self.name, Operation::InstanceCall(export, id), report_of, call).await;
        self.current_call.end();
        outcome
    }

    /// Calls several exports at once, each a task of its own in this
    /// instance: for a component-model-async component (WASI 0.3), whose
    /// async exports interleave, one awaiting a host future while another
    /// runs. One deadline (the instance's call timeout, from now) and one
    /// cancellation cover them all; they share the instance's memory,
    /// handle and host budgets and `calls.len()` times its per-call fuel,
    /// since wasmtime meters fuel per store, not per task. They end
    /// together: wasmtime 48 cannot cancel one task of a store without
    /// dropping the store, so a trap in any of them, the deadline or a
    /// cancellation fails them all and poisons the instance (a call that
    /// returned is not undone). Returns each call's results, in order, and
    /// one report.
    pub async fn call_concurrent_async(
        &mut self,
        calls: &[(&str, &[Val])],
    ) -> Result<TypedOutcome<Vec<Vec<Val>>>, RuntimeError> {
        let first = calls.first().map_or("", |(export, _)| *export);
        let span = call_span!("call", self.name, first);
        let token = self.current_call.begin(&self.cancel);
        let id = self.core.id();
        let cancel = Some(token.as_ref().unwrap_or(&self.cancel));
        let call = self.shared.executor.call_instance_concurrent(&mut self.core, calls, cancel);
        let outcome =
            self.shared.observed_async(span, &self.name, Operation::InstanceCall(first, id), report_of, call).await;
        self.current_call.end();
        outcome
    }

    /// `export` as a typed function taking the tuple `P` and returning the
    /// tuple `R`, checked against its signature once: a mismatch is
    /// `invalid-arguments`, naming both.
    pub fn typed<P, R>(&mut self, export: &str) -> Result<TypedExport<P, R>, RuntimeError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        self.core.typed(export)
    }

    /// Calls a typed export synchronously, under the same limits and report
    /// as [`call`](Self::call).
    pub fn call_typed<P, R>(&mut self, export: &TypedExport<P, R>, params: P) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let span = call_span!("call", self.name, export.name());
        self.shared.observed(
            span,
            &self.name,
            Operation::InstanceCall(export.name(), self.core.id()),
            report_of,
            || self.core.call_typed(export, params),
        )
    }

    /// Calls a typed export on Tokio, under the same limits, cancellation and
    /// report as [`call_async`](Self::call_async).
    pub async fn call_typed_async<P, R>(
        &mut self,
        export: &TypedExport<P, R>,
        params: P,
    ) -> Result<TypedOutcome<R>, RuntimeError>
    where
        P: ComponentNamedList + Lower + Send + Sync,
        R: ComponentNamedList + Lift + Send + Sync + 'static,
    {
        let span = call_span!("call", self.name, export.name());
        let token = self.current_call.begin(&self.cancel);
        let id = self.core.id();
        let call = self.shared.executor.call_typed(
            &mut self.core,
            export,
            params,
            Some(token.as_ref().unwrap_or(&self.cancel)),
        );
        let outcome = self
            .shared
            .observed_async(span, &self.name, Operation::InstanceCall(export.name(), id), report_of, call)
            .await;
        self.current_call.end();
        outcome
    }

    /// Runs `call` with the store and the wasmtime instance under fresh fuel
    /// and a fresh deadline, inside the panic boundary, with the same report,
    /// span and observer as any call: for `bindgen!`-generated export
    /// wrappers, synchronously
    /// (`|mut store, instance| Guest::new(&mut store, &instance)?.call_run(&mut store)`).
    pub fn run<R>(
        &mut self,
        call: impl FnOnce(StoreContextMut<'_, StoreState<T>>, wasmtime::component::Instance) -> wasmtime::Result<R>,
    ) -> Result<TypedOutcome<R>, RuntimeError> {
        let span = call_span!("call", self.name, "run");
        self.shared.observed(span, &self.name, Operation::InstanceCall("run", self.core.id()), report_of, || {
            self.core.run(call)
        })
    }

    /// [`run`](Self::run) on Tokio, for `bindgen!` wrappers generated with
    /// `exports: { default: async }`; `call` returns its future boxed
    /// (`Box::pin(async move { ... })`). Bounded by the deadline and the
    /// instance's cancellation token like [`call_async`](Self::call_async).
    pub async fn run_async<R, F>(&mut self, call: F) -> Result<TypedOutcome<R>, RuntimeError>
    where
        F: for<'a> FnOnce(StoreContextMut<'a, StoreState<T>>, wasmtime::component::Instance) -> StoreFuture<'a, R>,
    {
        let span = call_span!("call", self.name, "run");
        let token = self.current_call.begin(&self.cancel);
        let id = self.core.id();
        let run = self.shared.executor.run(&mut self.core, call, Some(token.as_ref().unwrap_or(&self.cancel)));
        let outcome =
            self.shared.observed_async(span, &self.name, Operation::InstanceCall("run", id), report_of, run).await;
        self.current_call.end();
        outcome
    }
}

/// What one instance's WASI gets beside or instead of its component's
/// manifest: an actor's own arguments, environment, data directory and
/// output (see [`LoadedComponent::with_instance_wasi`]). Arguments,
/// environment and stdio replace the manifest's; directories are added (or
/// replace the manifest's at the same guest path) and may be absolute host
/// paths, since the host names them, but the policy's `dirs`, symlink and
/// quota rules still hold; network and HTTP grants stay the manifest's.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct InstanceWasi {
    /// Arguments after argv\[0\], instead of the manifest's.
    pub args: Option<Vec<String>>,
    /// Environment variables, instead of the manifest's.
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Directories by guest path, beside the manifest's.
    pub dirs: std::collections::BTreeMap<String, runtime_manifest::DirGrant>,
    /// What happens to stdout and stderr, instead of the manifest's.
    pub stdio: Option<runtime_manifest::Stdio>,
    /// Clocks and random numbers from this seed, for deterministic replay.
    pub replay_seed: Option<u64>,
}

impl InstanceWasi {
    /// Nothing changed from the manifest's.
    pub fn new() -> Self {
        Self::default()
    }

    /// `args` after argv\[0\].
    pub fn args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// `name=value` in the environment (the manifest's variables are
    /// replaced by those set here).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.get_or_insert_with(Default::default).insert(name.into(), value.into());
        self
    }

    /// `grant` at `guest` (e.g. `/data`).
    pub fn dir(mut self, guest: impl Into<String>, grant: runtime_manifest::DirGrant) -> Self {
        self.dirs.insert(guest.into(), grant);
        self
    }

    /// `stdio` for stdout and stderr.
    pub fn stdio(mut self, stdio: runtime_manifest::Stdio) -> Self {
        self.stdio = Some(stdio);
        self
    }

    /// Deterministic clocks and random numbers from `seed`, for an actor
    /// replayed from its log: the wall clock starts at 2000-01-01, each
    /// clock moves 1 ms at every read, both random generators are seeded.
    pub fn replay(mut self, seed: u64) -> Self {
        self.replay_seed = Some(seed);
        self
    }
}

/// A restart that could not instantiate: why, and the host state the
/// instance had, for the supervisor to carry elsewhere.
#[derive(Debug)]
#[non_exhaustive]
pub struct RestartFailed<T> {
    /// Why the fresh instance could not start.
    pub error: RuntimeError,
    /// The embedder's state of the instance that was restarted.
    pub host: T,
}

impl<T: Send + 'static> Instance<T> {
    /// A fresh instance of the same component in this one's place, its
    /// guest started over: it keeps this instance's runtime slot and quota
    /// (a flood of other work cannot take them in between), its host state
    /// `T`, its timeout and fuel settings and its cancellation token. A
    /// restart that fails gives the host state back with the error
    /// ([`RestartFailed`]) and frees the slot.
    pub async fn restart(self) -> Result<Instance<T>, RestartFailed<T>> {
        let Instance { core, _admission, _quota, cancel, current_call, shared, name, instantiated } = self;
        let (component, timeout, fuel) = (core.component().clone(), core.call_timeout(), core.call_fuel());
        // What the host state holds stays charged: a restart is not a way
        // around the host-memory budget.
        let charged = core.host_memory_charged();
        let host = core.into_host();
        let span = call_span!("instantiate", name, "instantiate");
        let started = shared.clock(&span);
        let restarted =
            AsyncExecutor::reinstantiate(&component, (host, charged), Some(&cancel)).instrument(span.clone()).await;
        let observer = shared.observer.as_deref();
        match restarted {
            Ok(mut core) => {
                let mut report = core.instantiation_report();
                if let Some(started) = started {
                    finished(observer, &span, &name, Operation::Instantiate, "ok", Some(&report), started.elapsed());
                }
                core.set_call_timeout(Some(timeout));
                core.set_call_fuel(Some(fuel));
                report.queue_wait = instantiated.queue_wait;
                Ok(Instance { core, _admission, _quota, cancel, current_call, shared, name, instantiated: report })
            }
            Err((error, host)) => {
                if let Some(started) = started {
                    let wall = started.elapsed();
                    finished(observer, &span, &name, Operation::Instantiate, error.kind(), error.report(), wall);
                }
                Err(RestartFailed { error, host })
            }
        }
    }
}

impl<T: 'static> Instance<T> {
    /// Ends each later call of this instance after `timeout` if that is
    /// sooner than the manifest's timeout, which always caps it; `None`
    /// goes back to the manifest's. A call stopped this way is
    /// `deadline-exceeded` and poisons the instance, like any deadline.
    pub fn set_call_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.core.set_call_timeout(timeout);
    }

    /// How long each call of this instance may take now.
    pub fn call_timeout(&self) -> std::time::Duration {
        self.core.call_timeout()
    }

    /// Gives each later call of this instance `fuel` if that is less than
    /// the manifest's fuel, which always caps it; `None` goes back to the
    /// manifest's. An actor host sets it per message; running out is
    /// `out-of-fuel` and poisons the instance, like any crash.
    pub fn set_call_fuel(&mut self, fuel: Option<u64>) {
        self.core.set_call_fuel(fuel);
    }

    /// The fuel each call of this instance gets now.
    pub fn call_fuel(&self) -> u64 {
        self.core.call_fuel()
    }

    /// The token that stops this instance: cancelled, it ends the async
    /// call in progress (which poisons the instance: its guest stopped
    /// mid-way) and refuses every later call as `cancelled`. Hand it to
    /// whoever may stop the actor; to interrupt one message and keep the
    /// actor, use [`call_canceller`](Self::call_canceller).
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// A handle that cancels only the async call in progress when it is
    /// used: an idle instance is left as it is and answers its next call.
    pub fn call_canceller(&self) -> CallCanceller {
        self.current_call.armed.store(true, std::sync::atomic::Ordering::Release);
        self.current_call.clone()
    }

    /// The embedder's state of this instance.
    pub fn host(&self) -> &T {
        self.core.host()
    }

    /// The embedder's state of this instance, mutably.
    pub fn host_mut(&mut self) -> &mut T {
        self.core.host_mut()
    }

    /// The embedder's state, taken out of the instance, which ends and
    /// gives back its slot: a supervisor carries a crashed actor's state
    /// into its replacement this way.
    pub fn into_host(self) -> T {
        self.core.into_host()
    }

    /// Memory in use now and at peak.
    pub fn usage(&self) -> crate::Usage {
        self.core.usage()
    }

    /// A number no other instance of this process has: what observers see
    /// as [`CallEvent::instance`](crate::observe::CallEvent::instance), for
    /// metrics per actor. A restarted instance gets a new one.
    pub fn id(&self) -> u64 {
        self.core.id()
    }

    /// Whether a call stopped mid-way poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.core.is_poisoned()
    }

    /// What the instantiation used: its start functions' fuel, memory and
    /// time, and how long it queued.
    pub fn instantiation_report(&self) -> &CallReport {
        &self.instantiated
    }

    /// How long the instantiation waited for its slot.
    pub fn queue_wait(&self) -> std::time::Duration {
        self.instantiated.queue_wait
    }
}
