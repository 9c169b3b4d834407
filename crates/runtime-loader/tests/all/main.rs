//! Integration tests of runtime-loader: one binary, one module per concern.
//! Fixtures are WAT components next to the tests that use them.

mod cache;
mod loader;

use std::sync::OnceLock;

use runtime_loader::{Allocation, RuntimeEngine};
use runtime_manifest::HostPolicy;

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
/// each `(name, signature)` export of it.
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
