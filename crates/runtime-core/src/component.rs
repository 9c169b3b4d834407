//! [`LoadedComponent`]: a compiled, linked component with its limits, called
//! in a fresh store per call; [`ComponentInstance`]: a live instance for
//! stateful guests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_limits::{Deadline, ResourceLimits, fuel_consumed};
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, Instance, InstancePre, Linker, Type, Val};

use crate::classify::classify;
use crate::{
    CallProgress, CallReport, CompiledComponent, CrashKind, CrashReport, DeadlinePhase, LoadError, RuntimeEngine,
    RuntimeError, StoreState, WasiGrants,
};

/// A call's results and what it used.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The function's results, in order.
    pub results: Vec<Val>,
    /// Resources used.
    pub report: CallReport,
}

/// A function export's parameter and result types.
#[derive(Debug, Clone)]
pub struct ExportSignature {
    /// Parameter names and types.
    pub params: Vec<(String, Type)>,
    /// Result types.
    pub results: Vec<Type>,
}

/// A component compiled, linked (its `InstancePre` built once) and bound to
/// its limits. Cloning is cheap. Each [`call`](Self::call) runs in a fresh
/// store, so a trap never leaks into the next call.
#[derive(Clone)]
pub struct LoadedComponent {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    engine: RuntimeEngine,
    compiled: CompiledComponent,
    pre: InstancePre<StoreState>,
    limits: ResourceLimits,
    grants: Arc<WasiGrants>,
    stdout_to_stderr: bool,
    requires_async: bool,
}

impl std::fmt::Debug for LoadedComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("compiled", &self.inner.compiled)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl LoadedComponent {
    /// Links `compiled` against `linker` and binds it to `limits`. Imports the
    /// linker does not provide fail here, naming each one.
    pub fn new(
        engine: &RuntimeEngine,
        compiled: CompiledComponent,
        linker: &Linker<StoreState>,
        limits: ResourceLimits,
    ) -> Result<Self, LoadError> {
        let pre = linker.instantiate_pre(&compiled.component).map_err(|error| LoadError::LinkFailed {
            message: format!("{error:#}"),
            imports: format!(
                "the component imports: {}; this host provides the reference host functions, WASI p2 (deny by default) and what the embedder registered",
                import_names(engine, &compiled.component).join(", ")
            ),
        })?;
        let inner = Inner {
            engine: engine.clone(),
            compiled,
            pre,
            limits,
            grants: Arc::default(),
            stdout_to_stderr: false,
            requires_async: false,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Marks the component as linked against async host functions, so that
    /// the synchronous [`call`](Self::call) and [`instantiate`](Self::instantiate)
    /// refuse it with [`RuntimeError::AsyncRequired`] instead of failing inside wasmtime.
    pub fn requiring_async(self, requires_async: bool) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self { inner: Arc::new(Inner { requires_async, ..inner }) }
    }

    /// Whether the component imports anything.
    pub fn has_imports(&self) -> bool {
        self.inner.compiled.component.component_type().imports(self.inner.engine.engine()).next().is_some()
    }

    /// The same component with the manifest's `[wasi]` grants, resolved.
    pub fn with_wasi(self, grants: WasiGrants) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self { inner: Arc::new(Inner { grants: Arc::new(grants), ..inner }) }
    }

    /// The WASI grants every store of this component gets.
    pub fn wasi_grants(&self) -> &WasiGrants {
        &self.inner.grants
    }

    /// The export that runs the component as a command
    /// (`wasi:cli/run@VERSION#run`), if it has one.
    pub fn command_export(&self) -> Option<String> {
        self.export_names().into_iter().find(|name| name.starts_with("wasi:cli/run@") && name.ends_with("#run"))
    }

    /// The same component with an inherited stdout sent to the host's
    /// stderr instead: for hosts whose own stdout carries something else
    /// (the CLI's `--json` object), so a guest cannot forge it.
    pub fn with_stdout_to_stderr(self, redirect: bool) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self { inner: Arc::new(Inner { stdout_to_stderr: redirect, ..inner }) }
    }

    /// The compiled component.
    pub fn compiled(&self) -> &CompiledComponent {
        &self.inner.compiled
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &ResourceLimits {
        &self.inner.limits
    }

    /// Calls `export` (`name`, or `interface#name` for a function inside an
    /// exported interface) with `args`, in a fresh instance.
    pub fn call(&self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        if self.inner.requires_async {
            return Err(RuntimeError::AsyncRequired);
        }
        let started = Instant::now();
        let progress = CallProgress::new();
        let deadline = Deadline::starting_at(started, self.inner.limits.timeout());
        let mut store = self.new_store(deadline, progress.clone(), false);
        let instance =
            self.inner.pre.instantiate(&mut store).map_err(|error| {
                self.crash(&store, &error, DeadlinePhase::Instantiation, started, started.elapsed())
            })?;
        let instantiate = started.elapsed();
        progress.enter(DeadlinePhase::Guest);
        let (func, mut results) = self.prepare(&mut store, &instance, export, args)?;
        match func.call(&mut store, args, &mut results) {
            Ok(()) => Ok(CallOutcome { results, report: self.report(&store, started, instantiate) }),
            Err(error) => Err(self.crash(&store, &error, DeadlinePhase::Guest, started, instantiate)),
        }
    }

    /// Like [`call`](Self::call), on an async store: the guest yields to the
    /// executor at every epoch tick, may call async host functions, and is
    /// interrupted at `deadline`. `progress` tells the caller what the call is
    /// doing, so a timeout that stops a blocked host call can say so.
    pub async fn call_async(
        &self,
        export: &str,
        args: &[Val],
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<CallOutcome, RuntimeError> {
        let started = Instant::now();
        let mut store = self.new_store(deadline, progress.clone(), true);
        let instance = match self.inner.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(error) => {
                return Err(self.crash(&store, &error, DeadlinePhase::Instantiation, started, started.elapsed()));
            }
        };
        let instantiate = started.elapsed();
        progress.enter(DeadlinePhase::Guest);
        let (func, mut results) = self.prepare(&mut store, &instance, export, args)?;
        match func.call_async(&mut store, args, &mut results).await {
            Ok(()) => Ok(CallOutcome { results, report: self.report(&store, started, instantiate) }),
            Err(error) => Err(self.crash(&store, &error, DeadlinePhase::Guest, started, instantiate)),
        }
    }

    /// Instantiates the component for several calls that share state.
    pub fn instantiate(&self) -> Result<ComponentInstance, RuntimeError> {
        if self.inner.requires_async {
            return Err(RuntimeError::AsyncRequired);
        }
        let started = Instant::now();
        let deadline = Deadline::starting_at(started, self.inner.limits.timeout());
        let mut store = self.new_store(deadline, CallProgress::new(), false);
        match self.inner.pre.instantiate(&mut store) {
            Ok(instance) => Ok(self.live(store, instance)),
            Err(error) => Err(self.crash(&store, &error, DeadlinePhase::Instantiation, started, started.elapsed())),
        }
    }

    /// Like [`instantiate`](Self::instantiate), on an async store (see
    /// [`call_async`](Self::call_async)); call the instance with
    /// [`ComponentInstance::call_async`].
    pub async fn instantiate_async(
        &self,
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<ComponentInstance, RuntimeError> {
        let started = Instant::now();
        let mut store = self.new_store(deadline, progress, true);
        match self.inner.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok(self.live(store, instance)),
            Err(error) => Err(self.crash(&store, &error, DeadlinePhase::Instantiation, started, started.elapsed())),
        }
    }

    /// The parameter and result types of a function export.
    pub fn signature(&self, export: &str) -> Result<ExportSignature, RuntimeError> {
        let component = &self.inner.compiled.component;
        let mut item = None;
        let mut index = None;
        for part in split_export(export) {
            let (found, next) =
                component.get_export(index.as_ref(), part).ok_or_else(|| self.no_such_export(export))?;
            item = Some(found);
            index = Some(next);
        }
        match item {
            Some(ComponentItem::ComponentFunc(func)) => Ok(ExportSignature {
                params: func.params().map(|(name, ty)| (name.to_owned(), ty)).collect(),
                results: func.results().collect(),
            }),
            _ => Err(self.no_such_export(export)),
        }
    }

    /// Every function export, as `name` or `interface#name`.
    pub fn export_names(&self) -> Vec<String> {
        let engine = self.inner.engine.engine();
        let mut names = Vec::new();
        for (name, item) in self.inner.compiled.component.component_type().exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => names.push(name.to_owned()),
                ComponentItem::ComponentInstance(instance) => {
                    for (inner, item) in instance.exports(engine) {
                        if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                            names.push(format!("{name}#{inner}"));
                        }
                    }
                }
                _ => {}
            }
        }
        names
    }

    fn live(&self, store: Store<StoreState>, instance: Instance) -> ComponentInstance {
        ComponentInstance { component: self.clone(), store, instance, poisoned: None, funcs: ExportCache::default() }
    }

    fn new_store(&self, deadline: Deadline, progress: Arc<CallProgress>, asynchronous: bool) -> Store<StoreState> {
        let limits = &self.inner.limits;
        let mut state = StoreState::new(limits, deadline, progress, self.inner.grants.clone());
        state.stdout_to_stderr = self.inner.stdout_to_stderr;
        let mut store = Store::new(self.inner.engine.engine(), state);
        store.limiter(|state| &mut state.budget);
        store.call_hook(|mut context, hook| {
            context.data_mut().on_call_hook(hook);
            Ok(())
        });
        // What crosses the boundary is bounded by the guest's own budget:
        // one transfer (an export's results, one host call's arguments) may
        // make the host hold at most `copy_limit` bytes of values.
        store.set_hostcall_fuel(usize::try_from(limits.copy_limit_bytes()).unwrap_or(usize::MAX));
        store.set_max_component_handles(limits.max_handles() as usize);
        Deadline::install_callback(&mut store, asynchronous);
        arm(&mut store, limits, deadline);
        store
    }

    /// The function for `export` and a results buffer, after checking the
    /// number of arguments.
    fn prepare(
        &self,
        store: &mut Store<StoreState>,
        instance: &Instance,
        export: &str,
        args: &[Val],
    ) -> Result<(Func, Vec<Val>), RuntimeError> {
        let func = self.lookup(store, instance, export)?;
        let ty = func.ty(&*store);
        if ty.params().len() != args.len() {
            return Err(RuntimeError::InvalidArguments {
                export: export.to_owned(),
                reason: format!("expected {} argument(s), got {}", ty.params().len(), args.len()),
            });
        }
        Ok((func, vec![Val::Bool(false); ty.results().len()]))
    }

    fn lookup(&self, store: &mut Store<StoreState>, instance: &Instance, export: &str) -> Result<Func, RuntimeError> {
        let mut index = None;
        for part in split_export(export) {
            let next = instance.get_export_index(&mut *store, index.as_ref(), part);
            index = Some(next.ok_or_else(|| self.no_such_export(export))?);
        }
        index.and_then(|index| instance.get_func(&mut *store, index)).ok_or_else(|| self.no_such_export(export))
    }

    fn no_such_export(&self, export: &str) -> RuntimeError {
        let names = self.export_names();
        let available = if names.is_empty() {
            "the component exports no functions".to_owned()
        } else {
            format!("exported functions: {}", names.join(", "))
        };
        RuntimeError::NoSuchExport { name: export.to_owned(), available }
    }

    fn report(&self, store: &Store<StoreState>, started: Instant, instantiate: Duration) -> CallReport {
        let usage = store.data().budget.usage();
        let progress = &store.data().progress;
        CallReport {
            fuel_consumed: fuel_consumed(store, self.inner.limits.fuel()),
            fuel_limit: self.inner.limits.fuel(),
            current_memory_bytes: usage.current_memory_bytes,
            peak_memory_bytes: usage.peak_memory_bytes,
            memory_limit_bytes: self.inner.limits.memory_bytes(),
            wall: started.elapsed(),
            instantiate,
            host_calls: progress.host_calls(),
            host_time: progress.host_time(),
            stdout: None,
            stderr: None,
        }
        .with_output(store.data().captured_output())
    }

    fn crash(
        &self,
        store: &Store<StoreState>,
        error: &wasmtime::Error,
        phase: DeadlinePhase,
        started: Instant,
        instantiate: Duration,
    ) -> RuntimeError {
        if error.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
            return RuntimeError::Busy { waited: Duration::ZERO };
        }
        let classification = classify(error, phase, store.data());
        let mut message = match error.downcast_ref::<wasmtime::Trap>() {
            Some(trap) => trap.to_string(),
            None => format!("{error:#}"),
        };
        if let Some(function) = &classification.function {
            message = format!("host function {function} failed: {message}");
        }
        let limits = &self.inner.limits;
        let detail = match classification.kind {
            CrashKind::CopyLimitExceeded => Some(format!(
                "the copy limit is {} bytes per transfer ({} bytes of memory budget times the policy's factor)",
                limits.copy_limit_bytes(),
                limits.memory_bytes()
            )),
            CrashKind::HandleLimitExceeded => {
                Some(format!("the handle limit is {} handles per instance", limits.max_handles()))
            }
            _ => classification.detail,
        };
        RuntimeError::Crash(Box::new(CrashReport {
            kind: classification.kind,
            message,
            detail,
            wasm_backtrace: classification.backtrace,
            report: self.report(store, started, instantiate),
        }))
    }
}

/// A live instance for stateful guests: calls share its memory. After any
/// crash it refuses further calls with [`RuntimeError::Poisoned`], since a
/// trap leaves the guest's state unknown.
pub struct ComponentInstance {
    component: LoadedComponent,
    store: Store<StoreState>,
    instance: Instance,
    poisoned: Option<CrashKind>,
    funcs: ExportCache,
}

/// The exports of a live instance looked up so far, with their parameter and
/// result counts. The export called last is checked first, without hashing:
/// most callers call one export over and over.
#[derive(Default)]
struct ExportCache {
    entries: Vec<(Box<str>, CachedFunc)>,
    by_name: HashMap<Box<str>, usize>,
    last: usize,
}

#[derive(Clone, Copy)]
struct CachedFunc {
    func: Func,
    params: usize,
    results: usize,
}

impl ExportCache {
    fn get(&mut self, export: &str) -> Option<CachedFunc> {
        if let Some((name, cached)) = self.entries.get(self.last)
            && **name == *export
        {
            return Some(*cached);
        }
        let index = *self.by_name.get(export)?;
        self.last = index;
        self.entries.get(index).map(|(_, cached)| *cached)
    }

    fn insert(&mut self, export: &str, cached: CachedFunc) {
        self.last = self.entries.len();
        self.by_name.insert(export.into(), self.last);
        self.entries.push((export.into(), cached));
    }
}

impl std::fmt::Debug for ComponentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstance").field("poisoned", &self.poisoned).finish_non_exhaustive()
    }
}

impl ComponentInstance {
    /// Calls `export` with fresh fuel and a fresh deadline.
    pub fn call(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let started = Instant::now();
        let deadline = Deadline::starting_at(started, self.component.limits().timeout());
        self.begin_call(deadline, None)?;
        let (func, mut results) = self.func(export, args)?;
        let outcome = func.call(&mut self.store, args, &mut results).map(|()| results);
        self.finish(outcome, started)
    }

    /// Calls `export` on an instance made by
    /// [`LoadedComponent::instantiate_async`], with fresh fuel and `deadline`.
    pub async fn call_async(
        &mut self,
        export: &str,
        args: &[Val],
        deadline: Deadline,
        progress: Arc<CallProgress>,
    ) -> Result<CallOutcome, RuntimeError> {
        let started = Instant::now();
        self.begin_call(deadline, Some(progress))?;
        let (func, mut results) = self.func(export, args)?;
        let outcome = func.call_async(&mut self.store, args, &mut results).await.map(|()| results);
        self.finish(outcome, started)
    }

    /// Memory in use now and at peak.
    pub fn usage(&self) -> runtime_limits::Usage {
        self.store.data().budget.usage()
    }

    /// Refuses every later call with [`RuntimeError::Poisoned`]: for a host
    /// that stopped a call from outside (its deadline, a cancellation).
    pub fn poison(&mut self, kind: CrashKind) {
        self.poisoned.get_or_insert(kind);
    }

    /// Whether an earlier crash poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The function for `export` and a results buffer, looked up once per export.
    fn func(&mut self, export: &str, args: &[Val]) -> Result<(Func, Vec<Val>), RuntimeError> {
        if let Some(CachedFunc { func, params, results }) = self.funcs.get(export) {
            if params != args.len() {
                return Err(RuntimeError::InvalidArguments {
                    export: export.to_owned(),
                    reason: format!("expected {params} argument(s), got {}", args.len()),
                });
            }
            return Ok((func, vec![Val::Bool(false); results]));
        }
        let (func, results) = self.component.prepare(&mut self.store, &self.instance, export, args)?;
        self.funcs.insert(export, CachedFunc { func, params: args.len(), results: results.len() });
        Ok((func, results))
    }

    /// Readies the store for a call due by `deadline`, reporting into
    /// `progress` (an async caller's) or into the instance's own tracker.
    fn begin_call(&mut self, deadline: Deadline, progress: Option<Arc<CallProgress>>) -> Result<(), RuntimeError> {
        if let Some(kind) = self.poisoned {
            return Err(RuntimeError::Poisoned { kind });
        }
        let state = self.store.data_mut();
        match progress {
            Some(progress) => state.progress = progress,
            None => CallProgress::renew(&mut state.progress),
        }
        state.progress.enter(DeadlinePhase::Guest);
        state.budget.clear_denials();
        arm(&mut self.store, self.component.limits(), deadline);
        Ok(())
    }

    fn finish(&mut self, outcome: wasmtime::Result<Vec<Val>>, started: Instant) -> Result<CallOutcome, RuntimeError> {
        match outcome {
            Ok(results) => {
                Ok(CallOutcome { results, report: self.component.report(&self.store, started, Duration::ZERO) })
            }
            Err(error) => {
                let crash = self.component.crash(&self.store, &error, DeadlinePhase::Guest, started, Duration::ZERO);
                if let RuntimeError::Crash(report) = &crash {
                    self.poisoned = Some(report.kind);
                }
                Err(crash)
            }
        }
    }
}

/// Gives `store` the fuel of one call and the deadline the epoch callback
/// (installed once per store) checks.
fn arm(store: &mut Store<StoreState>, limits: &ResourceLimits, deadline: Deadline) {
    // Fuel is always enabled by the engine; `set_fuel` cannot fail then.
    let _ = store.set_fuel(limits.fuel());
    store.data_mut().deadline = deadline;
    store.set_epoch_deadline(1);
}

/// `iface#func` -> [`iface`, `func`]; a plain name is one part.
fn split_export(export: &str) -> impl Iterator<Item = &str> {
    export.split('#')
}

fn import_names(engine: &RuntimeEngine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine.engine()).map(|(name, _)| name.to_owned()).collect()
}
