//! [`LoadedComponent`]: a compiled, linked component bound to its limits,
//! with its function exports resolved once.

use std::sync::Arc;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Type, Val};

use crate::Capabilities;
use crate::instance::{Mode, invalid_arguments};
use crate::{CallOutcome, CompiledComponent, ComponentInstance, LoadError, RuntimeEngine, RuntimeError, StoreState};
use runtime_limits::clock::Instant;
use runtime_limits::{Deadline, ResourceLimits};

/// A function export's parameter and result types.
#[derive(Debug, Clone)]
pub struct ExportSignature {
    /// Parameter names and types.
    pub params: Vec<(String, Type)>,
    /// Result types.
    pub results: Vec<Type>,
}

/// A component compiled, linked (its `InstancePre` built once), bound to its
/// limits, with the index of every function export resolved once. `T` is the
/// embedder's own state, one value per instance (see [`StoreState`]).
/// Cloning is cheap. Each fresh call runs in a new store, so a trap never
/// leaks into the next call.
pub struct LoadedComponent<T: 'static = ()> {
    inner: Arc<Inner<T>>,
}

impl<T: 'static> Clone for LoadedComponent<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

pub(crate) struct Inner<T: 'static> {
    pub(crate) engine: RuntimeEngine,
    pub(crate) compiled: CompiledComponent,
    pub(crate) pre: InstancePre<StoreState<T>>,
    pub(crate) limits: ResourceLimits,
    pub(crate) capabilities: Arc<Capabilities>,
    pub(crate) stdout_to_stderr: bool,
    pub(crate) requires_async: bool,
    /// Whether the component imports anything: without imports there are
    /// no host calls to follow, and stores skip the call hook.
    pub(crate) imports: bool,
    /// The runtime's instance slots one instance takes
    /// ([`RuntimeEngine::pool_slots`]).
    pub(crate) pool_slots: u32,
    /// Every function export, as `name` or `interface#name`, in the
    /// component's order.
    pub(crate) export_names: Arc<[String]>,
    /// Sorted by name: a binary search over a few short names is cheaper
    /// than hashing one. Each with its index and signature, resolved once
    /// here, so no call asks the store for a function's type.
    pub(crate) exports: Arc<[(Box<str>, ExportedFunc)]>,
}

impl<T: 'static> Clone for Inner<T> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            compiled: self.compiled.clone(),
            pre: self.pre.clone(),
            limits: self.limits.clone(),
            capabilities: self.capabilities.clone(),
            stdout_to_stderr: self.stdout_to_stderr,
            requires_async: self.requires_async,
            imports: self.imports,
            pool_slots: self.pool_slots,
            export_names: self.export_names.clone(),
            exports: self.exports.clone(),
        }
    }
}

impl<T: 'static> std::fmt::Debug for LoadedComponent<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedComponent")
            .field("compiled", &self.inner.compiled)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> LoadedComponent<T> {
    /// Links `compiled` against `linker` and binds it to `limits`. Imports the
    /// linker does not provide fail here, naming each one, and so does a
    /// component one instance of which the instance pool cannot hold.
    pub fn new(
        engine: &RuntimeEngine,
        compiled: CompiledComponent,
        linker: &Linker<StoreState<T>>,
        limits: ResourceLimits,
    ) -> Result<Self, LoadError> {
        let pre = linker.instantiate_pre(&compiled.component).map_err(|error| LoadError::LinkFailed {
            message: format!("{error:#}"),
            imports: format!(
                "the component imports: {}; this host provides the reference host functions, WASI p2 (deny by default) and what the embedder registered",
                import_names(engine, &compiled.component).join(", ")
            ),
        })?;
        let pool_slots = engine.pool_slots(&compiled.component)?;
        // A memory or table whose declared minimum is over its budget: no
        // instance could start, which is this load's error, not a guest's crash.
        // (A compiled component knows its largest memory, in 64 KiB pages:
        // the engine runs without custom page sizes.)
        let needs = compiled.component.resources_required();
        let largest = needs.as_ref().and_then(|needs| needs.max_initial_memory_size);
        let minimum = largest.unwrap_or(0).saturating_mul(64 * 1024);
        if minimum > limits.memory_bytes() {
            return Err(LoadError::MemoryMinimumOverBudget { minimum, budget: limits.memory_bytes() });
        }
        let table = needs.and_then(|needs| needs.max_initial_table_size).unwrap_or(0);
        if table > u64::from(limits.table_elements()) {
            return Err(LoadError::TableMinimumOverBudget { minimum: table, budget: limits.table_elements().into() });
        }
        let (export_names, exports) = function_exports(engine, &compiled.component);
        let imports = compiled.component.component_type().imports(engine.engine()).next().is_some();
        let inner = Inner {
            imports,
            pool_slots,
            engine: engine.clone(),
            compiled,
            pre,
            limits,
            capabilities: Arc::default(),
            stdout_to_stderr: false,
            requires_async: false,
            export_names: export_names.into(),
            exports: exports.into(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Marks the component as linked against async host functions, so that
    /// the synchronous calls refuse it with [`RuntimeError::AsyncRequired`]
    /// instead of failing inside wasmtime.
    pub fn requiring_async(self, requires_async: bool) -> Self {
        self.map(|inner| Inner { requires_async, ..inner })
    }

    /// The same component with `capabilities` (its manifest's host
    /// interfaces, and a host layer's state such as runtime-wasi's grants).
    pub fn with_capabilities(self, capabilities: Capabilities) -> Self {
        self.map(|inner| Inner { capabilities: Arc::new(capabilities), ..inner })
    }

    /// The same component with an inherited stdout sent to the host's
    /// stderr instead: for hosts whose own stdout carries something else
    /// (the CLI's `--json` object), so a guest cannot forge it.
    pub fn with_stdout_to_stderr(self, redirect: bool) -> Self {
        self.map(|inner| Inner { stdout_to_stderr: redirect, ..inner })
    }

    fn map(self, f: impl FnOnce(Inner<T>) -> Inner<T>) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        Self { inner: Arc::new(f(inner)) }
    }

    /// Calls `export` (`name`, or `interface#name` for a function inside an
    /// exported interface) with `args` in a fresh instance whose host state
    /// is `state`. One fuel budget and one deadline cover instantiation and
    /// the call.
    pub fn call_with(&self, state: T, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError> {
        let mut instance = self.vacant(state, Mode::Sync)?;
        instance.instantiate()?;
        instance.call_fresh(export, args)
    }

    /// [`call_with`](Self::call_with) the default host state.
    pub fn call(&self, export: &str, args: &[Val]) -> Result<CallOutcome, RuntimeError>
    where
        T: Default,
    {
        self.call_with(T::default(), export, args)
    }

    /// A live instance with host state `state`, for several calls that share
    /// the guest's memory. Instantiation runs under the component's fuel and
    /// deadline; each call gets its own.
    pub fn instantiate_with(&self, state: T) -> Result<ComponentInstance<T>, RuntimeError> {
        let mut instance = self.vacant(state, Mode::Sync)?;
        instance.instantiate()?;
        Ok(instance)
    }

    /// [`instantiate_with`](Self::instantiate_with) the default host state.
    pub fn instantiate(&self) -> Result<ComponentInstance<T>, RuntimeError>
    where
        T: Default,
    {
        self.instantiate_with(T::default())
    }

    /// A store for an async instance with host state `state`, not yet
    /// instantiated: the async executor instantiates it
    /// ([`ComponentInstance::instantiate_async`]) and, since it owns the
    /// store while the call runs, can still read the fuel and memory used
    /// when it abandons the call at its deadline.
    /// `started` is when the call began (its report's wall time counts from
    /// there), `deadline` when it must end.
    pub fn vacant_async(&self, state: T, started: Instant, deadline: Deadline) -> ComponentInstance<T> {
        ComponentInstance::vacant(self.clone(), state, Mode::Async, started, deadline)
    }

    fn vacant(&self, state: T, mode: Mode) -> Result<ComponentInstance<T>, RuntimeError> {
        if self.inner.requires_async {
            return Err(RuntimeError::AsyncRequired);
        }
        let started = Instant::now();
        let deadline = Deadline::starting_at(started, self.inner.limits.timeout());
        Ok(ComponentInstance::vacant(self.clone(), state, mode, started, deadline))
    }
}

impl<T: 'static> LoadedComponent<T> {
    pub(crate) fn inner(&self) -> &Inner<T> {
        &self.inner
    }

    /// Whether the component imports anything.
    pub fn has_imports(&self) -> bool {
        self.inner.imports
    }

    /// Whether any function export is `async` (component-model async, as
    /// WASI 0.3 components export): wasmtime calls those only from async
    /// stores.
    pub fn has_async_exports(&self) -> bool {
        self.inner.exports.iter().any(|(_, exported)| exported.is_async)
    }

    /// Whether the synchronous calls refuse this component.
    pub fn requires_async(&self) -> bool {
        self.inner.requires_async
    }

    /// The capabilities every store of this component gets.
    pub fn capabilities(&self) -> &Capabilities {
        &self.inner.capabilities
    }

    /// The export that runs the component as a command
    /// (`wasi:cli/run@VERSION#run`), if it has one: the newest version when
    /// it exports several (a p3 command built with a p2 standard library
    /// exports `run@0.2` too, whose `main` is not the program).
    pub fn command_export(&self) -> Option<String> {
        self.export_names()
            .iter()
            .filter_map(|name| {
                let version = name.strip_prefix("wasi:cli/run@")?.strip_suffix("#run")?;
                Some((version_key(version), name))
            })
            .max_by(|(a, _), (b, _)| a.cmp(b))
            .map(|(_, name)| name.clone())
    }

    /// The compiled component.
    pub fn compiled(&self) -> &CompiledComponent {
        &self.inner.compiled
    }

    /// How many of the runtime's instance slots one instance takes: one,
    /// unless it defines more memories or tables than a pool slot holds.
    pub fn pool_slots(&self) -> u32 {
        self.inner.pool_slots
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> &ResourceLimits {
        &self.inner.limits
    }

    /// The parameter and result types of a function export.
    pub fn signature(&self, export: &str) -> Result<ExportSignature, RuntimeError> {
        let (_, exported) = self.export(export)?;
        Ok(ExportSignature {
            params: exported.params.iter().map(|(name, ty)| (name.to_string(), ty.clone())).collect(),
            results: exported.results.to_vec(),
        })
    }

    /// Every function export, as `name` or `interface#name`.
    pub fn export_names(&self) -> &[String] {
        &self.inner.export_names
    }

    /// The export's position in the export table and its entry, resolved
    /// when the component was loaded.
    pub(crate) fn export(&self, export: &str) -> Result<(usize, &ExportedFunc), RuntimeError> {
        let exports = &self.inner.exports;
        match exports.binary_search_by(|(name, _)| (**name).cmp(export)) {
            Ok(found) => {
                exports.get(found).map(|(_, exported)| (found, exported)).ok_or_else(|| self.no_such_export(export))
            }
            Err(_) => Err(self.no_such_export(export)),
        }
    }

    /// The entry at `position` of the export table (from [`export`](Self::export)).
    pub(crate) fn export_at(&self, position: usize) -> Option<&ExportedFunc> {
        self.inner.exports.get(position).map(|(_, exported)| exported)
    }

    pub(crate) fn no_such_export(&self, export: &str) -> RuntimeError {
        let names = self.export_names();
        let available = if names.is_empty() {
            "the component exports no functions".to_owned()
        } else {
            format!("exported functions: {}", names.join(", "))
        };
        RuntimeError::NoSuchExport { name: export.to_owned(), available }
    }

    /// Checks `args` against `export`'s parameters without running anything.
    pub fn check_arguments(&self, export: &str, args: &[Val]) -> Result<(), RuntimeError> {
        let signature = self.signature(export)?;
        crate::typecheck::check_arguments(signature.params.iter().map(|(name, ty)| (name.as_str(), ty)), args)
            .map_err(|reason| invalid_arguments(export, reason))
    }
}

/// `MAJOR.MINOR.PATCH[-PRE]` as numbers to compare (a missing or
/// unreadable part counts as 0; a pre-release orders before its release).
fn version_key(version: &str) -> ([u64; 3], bool) {
    let (release, pre) = match version.split_once('-') {
        Some((release, _)) => (release, true),
        None => (version, false),
    };
    let mut parts = [0; 3];
    for (part, text) in parts.iter_mut().zip(release.split('.')) {
        *part = text.parse().unwrap_or(0);
    }
    (parts, !pre)
}

/// A function export resolved at load: its index and its signature.
pub(crate) struct ExportedFunc {
    pub(crate) index: ComponentExportIndex,
    pub(crate) is_async: bool,
    pub(crate) params: Box<[(Box<str>, Type)]>,
    pub(crate) results: Box<[Type]>,
}

/// Every function export of `component` (`name`, or `interface#name`), in
/// the component's order, and the export table sorted by name. The one walk
/// of a component's exports.
fn function_exports(engine: &RuntimeEngine, component: &Component) -> (Vec<String>, Vec<(Box<str>, ExportedFunc)>) {
    let engine = engine.engine();
    let mut names = Vec::new();
    let mut table: Vec<(Box<str>, ExportedFunc)> = Vec::new();
    let mut add = |name: String, parent: Option<&ComponentExportIndex>, inner: &str| {
        if let Some((ComponentItem::ComponentFunc(func), index)) = component.get_export(parent, inner) {
            let params = func.params().map(|(name, ty)| (Box::from(name), ty)).collect();
            table.push((
                Box::from(name.as_str()),
                ExportedFunc { index, is_async: func.async_(), params, results: func.results().collect() },
            ));
            names.push(name);
        }
    };
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(_) => add(name.to_owned(), None, name),
            ComponentItem::ComponentInstance(instance) => {
                let Some((_, parent)) = component.get_export(None, name) else { continue };
                for (inner, _) in instance.exports(engine) {
                    add(format!("{name}#{inner}"), Some(&parent), inner);
                }
            }
            _ => {}
        }
    }
    table.sort_by(|(a, _), (b, _)| a.cmp(b));
    (names, table)
}

fn import_names(engine: &RuntimeEngine, component: &Component) -> Vec<String> {
    component.component_type().imports(engine.engine()).map(|(name, _)| name.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::version_key;

    #[test]
    fn newer_versions_order_after_older_ones_and_releases_after_their_pre_releases() {
        let mut versions = ["0.3.0", "0.2.0", "0.2.10", "0.3.0-rc-2025-09-16", "0.2.4", "1", "x.y"];
        versions.sort_by_key(|version| version_key(version));
        assert_eq!(versions, ["x.y", "0.2.0", "0.2.4", "0.2.10", "0.3.0-rc-2025-09-16", "0.3.0", "1"]);
    }
}
