//! [`AsyncHostRegistry`]: async host functions, registered once, linked once.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use runtime_core::{HostFunction, HostFunctionError, RuntimeError, StoreState, panic_message};
use wasmtime::component::{ComponentNamedList, Lift, Linker, Lower};
use wasmtime::{AsContextMut as _, StoreContextMut};

/// The future a host function returns: it may borrow the store.
pub type HostFuture<'a, R> = Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>;

type Installer<T> = Box<dyn Fn(&mut Linker<StoreState<T>>) -> wasmtime::Result<()> + Send + Sync>;

/// Async host functions grouped by WIT interface. The runtime builds its
/// linker from the registry once; every function is wrapped so that it is
/// counted and timed in the [`CallReport`](runtime_core::CallReport), its
/// errors become `host-error` crashes and its panics `host-panic` crashes of
/// that call only. `T` is the embedder's state of each instance; a function
/// reaches it through `store.data_mut().host_mut()`.
pub struct AsyncHostRegistry<T: 'static = ()> {
    functions: Vec<(String, Installer<T>)>,
}

impl<T> Default for AsyncHostRegistry<T> {
    fn default() -> Self {
        Self { functions: Vec::new() }
    }
}

impl<T> std::fmt::Debug for AsyncHostRegistry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHostRegistry").field("functions", &self.names()).finish()
    }
}

impl<T> AsyncHostRegistry<T> {
    /// The registered functions, as `interface#name`.
    pub fn names(&self) -> Vec<String> {
        self.functions.iter().map(|(name, _)| name.clone()).collect()
    }
}

impl<T: Send + 'static> AsyncHostRegistry<T> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `function` as `name` in the WIT `interface` (e.g.
    /// `wasm-runtime:host/time@0.1.0`). An `Err` it returns ends the guest's
    /// call as `host-error`; a panic ends it as `host-panic`.
    pub fn func_async<Params, Results, F>(mut self, interface: &str, name: &str, function: F) -> Self
    where
        Params: ComponentNamedList + Lift + Send + 'static,
        Results: ComponentNamedList + Lower + Send + Sync + 'static,
        F: for<'a> Fn(StoreContextMut<'a, StoreState<T>>, Params) -> HostFuture<'a, Results> + Send + Sync + 'static,
    {
        let qualified = format!("{interface}#{name}");
        let function = Arc::new(function);
        let interface = interface.to_owned();
        let name = name.to_owned();
        let label: Arc<str> = qualified.as_str().into();
        let installer: Installer<T> = Box::new(move |linker| {
            let function = function.clone();
            let label = label.clone();
            linker.instance(&interface)?.func_wrap_async(&name, move |mut store, params: Params| {
                let function = function.clone();
                let label = label.clone();
                Box::new(async move {
                    // The store's call hook counts and times the call; this
                    // marks where the function's own work begins and ends.
                    store.data_mut().enter_host_function(HostFunction::Registered(label.clone()));
                    let outcome =
                        AssertUnwindSafe(async { Box::into_pin(function(store.as_context_mut(), params)).await })
                            .catch_unwind()
                            .await;
                    match outcome {
                        Ok(Ok(results)) => {
                            store.data_mut().leave_host_function();
                            Ok(results)
                        }
                        Ok(Err(error)) => Err(wasmtime::Error::new(HostFunctionError {
                            function: label.to_string(),
                            panicked: false,
                            message: format!("{error:#}"),
                        })),
                        Err(panic) => Err(wasmtime::Error::new(HostFunctionError {
                            function: label.to_string(),
                            panicked: true,
                            message: panic_message(&*panic),
                        })),
                    }
                })
            })
        });
        self.functions.push((qualified, installer));
        self
    }

    /// A linker with every registered function.
    pub fn linker(&self, engine: &wasmtime::Engine) -> Result<Linker<StoreState<T>>, RuntimeError> {
        let mut linker = Linker::new(engine);
        for (name, install) in &self.functions {
            install(&mut linker).map_err(|error| RuntimeError::Internal {
                message: format!("cannot register host function `{name}`: {error:#}"),
            })?;
        }
        Ok(linker)
    }
}
