//! Bare wasmtime doing the same work as the runtime: the same engine
//! configuration (`runtime_core::engine_config`), the same component, an
//! `InstancePre` built once, and per call what any embedder enforcing the
//! same limits must do (fresh fuel, an epoch deadline) and nothing else.

use std::path::Path;

use runtime::{Allocation, HostPolicy};
use runtime_core::engine_config;
use wasmtime::component::{Component, Instance, InstancePre, Linker, TypedFunc, Val};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Fuel and epoch ticks every bare store gets: ample, like the runtime's limits.
const FUEL: u64 = 10_000_000_000;
const EPOCH_TICKS: u64 = 1_000;

pub(super) fn engine() -> Result<Engine, String> {
    engine_for(&HostPolicy::default())
}

/// The engine a runtime under `policy` has, pooling on.
fn engine_for(policy: &HostPolicy) -> Result<Engine, String> {
    let config = engine_config(policy, Allocation::Pooling);
    #[expect(clippy::disallowed_methods, reason = "the baseline is bare wasmtime with the runtime's configuration")]
    Engine::new(&config).map_err(|e| e.to_string())
}

fn arm<T>(store: &mut Store<T>) {
    let _ = store.set_fuel(FUEL);
    store.set_epoch_deadline(EPOCH_TICKS);
}

/// A component without imports, instantiated per call or kept live.
pub(super) struct Bare {
    engine: Engine,
    pre: InstancePre<()>,
}

pub(super) struct BareLive {
    store: Store<()>,
    instance: Instance,
}

impl Bare {
    pub(super) fn new(wat: &str) -> Result<Self, String> {
        let engine = engine()?;
        let component = Component::new(&engine, wat).map_err(|e| e.to_string())?;
        let pre = Linker::new(&engine).instantiate_pre(&component).map_err(|e| e.to_string())?;
        Ok(Self { engine, pre })
    }

    fn store(&self) -> Store<()> {
        let mut store = Store::new(&self.engine, ());
        arm(&mut store);
        store
    }

    /// Instantiates in a fresh store and calls `export` with `args`.
    pub(super) fn fresh_call(&self, export: &str, args: &[Val]) {
        let mut store = self.store();
        if let Ok(instance) = self.pre.instantiate(&mut store) {
            call(&mut store, &instance, export, args);
        }
    }

    pub(super) fn live(&self) -> Result<BareLive, String> {
        let mut store = self.store();
        let instance = self.pre.instantiate(&mut store).map_err(|e| e.to_string())?;
        Ok(BareLive { store, instance })
    }
}

impl BareLive {
    /// Calls `export` again, with fresh fuel and a fresh deadline.
    pub(super) fn call(&mut self, export: &str) {
        arm(&mut self.store);
        call(&mut self.store, &self.instance, export, &[]);
    }

    /// `export` as a typed function without parameters or results.
    pub(super) fn typed(&mut self, export: &str) -> Result<TypedFunc<(), ()>, String> {
        self.instance.get_typed_func::<(), ()>(&mut self.store, export).map_err(|e| e.to_string())
    }

    /// Calls a typed export again, with fresh fuel and a fresh deadline.
    pub(super) fn call_typed(&mut self, func: &TypedFunc<(), ()>) {
        arm(&mut self.store);
        let _ = func.call(&mut self.store, ());
    }
}

fn call<T>(store: &mut Store<T>, instance: &Instance, export: &str, args: &[Val]) {
    if let Some(func) = instance.get_func(&mut *store, export) {
        let mut results = vec![Val::Bool(false); func.ty(&*store).results().len()];
        let _ = func.call(&mut *store, args, &mut results);
    }
}

/// Store data of a bare embedder of WASI and `wasi:http`.
pub(super) struct BareHost {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
}

impl BareHost {
    pub(super) fn new() -> Self {
        Self { table: ResourceTable::new(), wasi: WasiCtx::builder().build(), http: WasiHttpCtx::new() }
    }
}

impl WasiView for BareHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for BareHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: wasmtime_wasi_http::default_hooks() }
    }
}

/// All of WASI p2 and `wasi:http`, as the runtime links them for a guest
/// (and as `wasmtime serve -Scli` does).
pub(super) fn wasi_linker(engine: &Engine) -> Result<Linker<BareHost>, String> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| e.to_string())?;
    Ok(linker)
}

/// A bare embedder's cached cold start: a component compiled in process
/// with the engine configuration a runtime under `policy` has, precompiled
/// to a file, later mapped in with `Component::deserialize_file`, linked
/// against WASI, instantiated and called once on an async store.
pub(super) struct BareColdStart {
    engine: Engine,
    linker: Linker<BareHost>,
}

impl BareColdStart {
    /// Compiles `wasm` (Cranelift in this process) and writes it to `cwasm`.
    pub(super) fn prepare(policy: &HostPolicy, wasm: &[u8], cwasm: &Path) -> Result<Self, String> {
        let engine = engine_for(policy)?;
        let component = Component::from_binary(&engine, wasm).map_err(|e| e.to_string())?;
        std::fs::write(cwasm, component.serialize().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        let linker = wasi_linker(&engine)?;
        Ok(Self { engine, linker })
    }

    /// Maps `cwasm` in.
    pub(super) fn load(&self, cwasm: &Path) -> Result<Component, String> {
        #[allow(
            unsafe_code,
            reason = "Component::deserialize_file is unsafe; the SAFETY comment says why this is sound"
        )]
        // SAFETY: `cwasm` was written by `prepare` in this process from
        // `Component::serialize` of this very engine, and nothing else writes
        // the benchmark's temporary directory.
        let component = unsafe { Component::deserialize_file(&self.engine, cwasm) }.map_err(|e| e.to_string())?;
        Ok(component)
    }

    /// Loads `cwasm`, instantiates it and calls the export at `path`.
    pub(super) async fn run(&self, cwasm: &Path, path: &[&str], args: &[Val]) -> Result<Vec<Val>, String> {
        self.call(&self.load(cwasm)?, path, args).await
    }

    /// Instantiates `component` and calls the export at `path`: a function's
    /// name (`["greet"]`), or an interface's and its function's
    /// (`["docs:adder/add@0.1.0", "add"]`).
    pub(super) async fn call(&self, component: &Component, path: &[&str], args: &[Val]) -> Result<Vec<Val>, String> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| e.to_string())?;
        let mut store = Store::new(&self.engine, BareHost::new());
        arm(&mut store);
        let instance = pre.instantiate_async(&mut store).await.map_err(|e| e.to_string())?;
        let mut index = None;
        for name in path {
            index = Some(instance.get_export_index(&mut store, index.as_ref(), name).ok_or("no such export")?);
        }
        let func = instance.get_func(&mut store, index.ok_or("no export named")?).ok_or("not a function")?;
        let mut results = vec![Val::Bool(false); func.ty(&store).results().len()];
        func.call_async(&mut store, args, &mut results).await.map_err(|e| e.to_string())?;
        Ok(results)
    }
}
