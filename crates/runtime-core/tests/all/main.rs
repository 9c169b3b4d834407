//! Integration tests of runtime-core: one binary, one module per concern.
//! Fixtures are WAT components next to the tests that use them.

mod crashes;
mod isolation;
mod limits;
mod link;

use std::sync::OnceLock;

use runtime_core::{Allocation, ComponentLoader, LoadedComponent, RuntimeEngine, RuntimeError, StoreState};
use runtime_limits::ResourceLimits;
use runtime_manifest::{ComponentManifest, HostPolicy};
use wasmtime::component::Linker;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One pooling engine for the whole binary: engines are costly to create.
fn engine() -> &'static RuntimeEngine {
    static ENGINE: OnceLock<RuntimeEngine> = OnceLock::new();
    ENGINE.get_or_init(|| match RuntimeEngine::new(HostPolicy::default(), Allocation::default()) {
        Ok(engine) => engine,
        Err(error) => panic!("cannot create the test engine: {error}"),
    })
}

/// A component wrapping the core module `core` (`(module ...)` text), lifting
/// each `(name, signature)` export of it, e.g. `("add", r#"(param "a" u32) (result u32)"#)`.
fn component_wat(core: &str, exports: &[(&str, &str)]) -> String {
    let fields = core.trim().strip_prefix("(module").unwrap_or(core);
    let lifts: String = exports
        .iter()
        .map(|(name, signature)| {
            format!("(func (export \"{name}\") {signature} (canon lift (core func $i \"{name}\")))\n")
        })
        .collect();
    format!("(component\n(core module $m {fields}\n(core instance $i (instantiate $m))\n{lifts})")
}

/// Limits from a `[resources]` body such as `memory = "1MiB"\nfuel = 1000\ntimeout = "1s"`.
fn limits(resources: &str) -> Result<ResourceLimits, RuntimeError> {
    let manifest: ComponentManifest =
        format!("[component]\nname = \"test\"\nversion = \"0.1.0\"\n[resources]\n{resources}\n").parse()?;
    Ok(ResourceLimits::new(&manifest.resources, &HostPolicy::default())?)
}

const GENEROUS: &str = "memory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"10s\"";

/// Loads `wat` under `resources` with an empty linker.
fn load(wat: &str, resources: &str) -> Result<LoadedComponent, RuntimeError> {
    let compiled = ComponentLoader::new(engine().clone()).load_bytes(wat.as_bytes())?;
    let linker = Linker::<StoreState>::new(engine().engine());
    Ok(LoadedComponent::new(engine(), compiled, &linker, limits(resources)?)?)
}

/// The crash kind of a failed call, or a description of what happened instead.
fn crash_kind(result: Result<runtime_core::CallOutcome, RuntimeError>) -> String {
    match result {
        Ok(outcome) => format!("ok {:?}", outcome.results),
        Err(RuntimeError::Crash(crash)) => crash.kind.as_str().to_owned(),
        Err(other) => format!("not a crash: {other}"),
    }
}
