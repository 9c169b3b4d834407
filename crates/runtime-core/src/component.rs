//! [`LoadedComponent`]: a compiled, linked component with its limits, called
//! in a fresh store per call; [`ComponentInstance`]: a live instance for
//! stateful guests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime_limits::{Deadline, ResourceLimits, fuel_consumed};
use wasmtime::Store;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, Instance, InstancePre, Linker, Type, Val};

use crate::classify::classify;
use crate::{
    CallReport, CompiledComponent, CrashReport, DeadlinePhase, LoadError, RuntimeEngine,
    RuntimeError, StoreState,
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

struct Inner {
    engine: RuntimeEngine,
    compiled: CompiledComponent,
    pre: InstancePre<StoreState>,
    limits: ResourceLimits,
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
        let pre = linker
            .instantiate_pre(&compiled.component)
            .map_err(|error| LoadError::LinkFailed {
                missing: import_names(engine, &compiled.component),
                message: format!("{error:#}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                compiled,
                pre,
                limits,
            }),
        })
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
        let started = Instant::now();
        let deadline = Deadline::after(self.inner.limits.timeout());
        let mut store = self.new_store(deadline);
        let instance = match self.inner.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(error) => {
                let report = self.report(&store, started, started.elapsed());
                return Err(crash(&error, DeadlinePhase::Instantiation, &store, report));
            }
        };
        let instantiate = started.elapsed();
        let result = self.invoke(&mut store, &instance, export, args);
        let report = self.report(&store, started, instantiate);
        finish(result, &store, report)
    }

    /// Instantiates the component for several calls that share state.
    pub fn instantiate(&self) -> Result<ComponentInstance, RuntimeError> {
        let started = Instant::now();
        let deadline = Deadline::after(self.inner.limits.timeout());
        let mut store = self.new_store(deadline);
        match self.inner.pre.instantiate(&mut store) {
            Ok(instance) => Ok(ComponentInstance {
                component: self.clone(),
                store,
                instance,
                poisoned: None,
            }),
            Err(error) => {
                let report = self.report(&store, started, started.elapsed());
                Err(crash(&error, DeadlinePhase::Instantiation, &store, report))
            }
        }
    }

    /// The parameter and result types of a function export.
    pub fn signature(&self, export: &str) -> Result<ExportSignature, RuntimeError> {
        let mut item = None;
        let mut index = None;
        for part in split_export(export) {
            match self
                .inner
                .compiled
                .component
                .get_export(index.as_ref(), part)
            {
                Some((found, next)) => {
                    item = Some(found);
                    index = Some(next);
                }
                None => return Err(self.no_such_export(export)),
            }
        }
        match item {
            Some(ComponentItem::ComponentFunc(func)) => Ok(ExportSignature {
                params: func
                    .params()
                    .map(|(name, ty)| (name.to_owned(), ty))
                    .collect(),
                results: func.results().collect(),
            }),
            _ => Err(self.no_such_export(export)),
        }
    }

    /// Every function export, as `name` or `interface#name`.
    pub fn export_names(&self) -> Vec<String> {
        let engine = self.inner.engine.engine();
        let mut names = Vec::new();
        for (name, item) in self
            .inner
            .compiled
            .component
            .component_type()
            .exports(engine)
        {
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

    fn new_store(&self, deadline: Deadline) -> Store<StoreState> {
        let limits = &self.inner.limits;
        let mut store = Store::new(self.inner.engine.engine(), StoreState::new(limits));
        store.limiter(|state| &mut state.budget);
        arm(&mut store, limits, deadline);
        store
    }

    fn invoke(
        &self,
        store: &mut Store<StoreState>,
        instance: &Instance,
        export: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, Failure> {
        let func = self
            .lookup(store, instance, export)
            .map_err(Failure::Usage)?;
        let ty = func.ty(&*store);
        if ty.params().len() != args.len() {
            return Err(Failure::Usage(RuntimeError::InvalidArguments {
                export: export.to_owned(),
                reason: format!(
                    "expected {} argument(s), got {}",
                    ty.params().len(),
                    args.len()
                ),
            }));
        }
        let mut results = vec![Val::Bool(false); ty.results().len()];
        func.call(&mut *store, args, &mut results)
            .map_err(Failure::Guest)?;
        Ok(results)
    }

    fn lookup(
        &self,
        store: &mut Store<StoreState>,
        instance: &Instance,
        export: &str,
    ) -> Result<Func, RuntimeError> {
        let mut index = None;
        for part in split_export(export) {
            index = Some(
                instance
                    .get_export_index(&mut *store, index.as_ref(), part)
                    .ok_or_else(|| self.no_such_export(export))?,
            );
        }
        index
            .and_then(|index| instance.get_func(&mut *store, index))
            .ok_or_else(|| self.no_such_export(export))
    }

    fn no_such_export(&self, export: &str) -> RuntimeError {
        let names = self.export_names();
        let available = if names.is_empty() {
            "the component exports no functions".to_owned()
        } else {
            format!("exported functions: {}", names.join(", "))
        };
        RuntimeError::NoSuchExport {
            name: export.to_owned(),
            available,
        }
    }

    fn report(
        &self,
        store: &Store<StoreState>,
        started: Instant,
        instantiate: Duration,
    ) -> CallReport {
        let usage = store.data().budget.usage();
        let state = store.data();
        CallReport {
            fuel_consumed: fuel_consumed(store, self.inner.limits.fuel()),
            fuel_limit: self.inner.limits.fuel(),
            current_memory_bytes: usage.current_memory_bytes,
            peak_memory_bytes: usage.peak_memory_bytes,
            memory_limit_bytes: self.inner.limits.memory_bytes(),
            wall: started.elapsed(),
            instantiate,
            host_calls: state.host_calls,
            host_time: state.host_time,
        }
    }
}

/// A live instance for stateful guests: calls share its memory. After any
/// crash it refuses further calls with [`RuntimeError::Poisoned`], since a
/// trap leaves the guest's state unknown.
pub struct ComponentInstance {
    component: LoadedComponent,
    store: Store<StoreState>,
    instance: Instance,
    poisoned: Option<crate::CrashKind>,
}

impl std::fmt::Debug for ComponentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentInstance")
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl ComponentInstance {
    /// Calls `export` with fresh fuel and a fresh deadline.
    pub fn call(&mut self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        if let Some(kind) = self.poisoned {
            return Err(RuntimeError::Poisoned { kind });
        }
        let started = Instant::now();
        let limits = self.component.limits().clone();
        self.store.data_mut().budget.clear_denials();
        arm(&mut self.store, &limits, Deadline::after(limits.timeout()));
        let result = self
            .component
            .invoke(&mut self.store, &self.instance, export, args);
        let report = self.component.report(&self.store, started, Duration::ZERO);
        let outcome = finish(result, &self.store, report);
        if let Err(RuntimeError::Crash(crash)) = &outcome {
            self.poisoned = Some(crash.kind);
        }
        outcome
    }

    /// Memory in use now and at peak.
    pub fn usage(&self) -> runtime_limits::Usage {
        self.store.data().budget.usage()
    }

    /// Whether an earlier crash poisoned the instance.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }
}

/// Why an invocation failed: the caller's mistake or the guest's crash.
enum Failure {
    Usage(RuntimeError),
    Guest(wasmtime::Error),
}

fn arm(store: &mut Store<StoreState>, limits: &ResourceLimits, deadline: Deadline) {
    // Fuel is always enabled by the engine; `set_fuel` cannot fail then.
    let _ = store.set_fuel(limits.fuel());
    deadline.arm(store, false);
}

fn finish(
    result: Result<Vec<Val>, Failure>,
    store: &Store<StoreState>,
    report: CallReport,
) -> Result<CallOutcome, RuntimeError> {
    match result {
        Ok(results) => Ok(CallOutcome { results, report }),
        Err(Failure::Usage(error)) => Err(error),
        Err(Failure::Guest(error)) => Err(crash(&error, DeadlinePhase::Guest, store, report)),
    }
}

fn crash(
    error: &wasmtime::Error,
    phase: DeadlinePhase,
    store: &Store<StoreState>,
    report: CallReport,
) -> RuntimeError {
    if error
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        return RuntimeError::Busy {
            waited: Duration::ZERO,
        };
    }
    let classification = classify(error, phase, &store.data().budget);
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    RuntimeError::Crash(Box::new(CrashReport {
        kind: classification.kind,
        message,
        detail: classification.detail,
        wasm_backtrace: classification.backtrace,
        report,
    }))
}

/// `iface#func` -> [`iface`, `func`]; a plain name is one part.
fn split_export(export: &str) -> impl Iterator<Item = &str> {
    export.split('#')
}

fn import_names(engine: &RuntimeEngine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine.engine())
        .map(|(name, _)| name.to_owned())
        .collect()
}
