//! `Component.toml`, parsed, validated and explained.
//!
//! A component manifest names a WebAssembly component and declares the limits
//! every call of it runs under: a memory budget, fuel and a wall-clock
//! deadline. Limits are required, never unlimited, and must lie inside the
//! host's [`HostPolicy`]. Anything wrong is reported as a [`miette::Diagnostic`]
//! with a stable code, a label on the exact place in the file and a help line;
//! all problems of a file are reported at once.
//!
//! This crate does not depend on wasmtime, so a CI job can validate manifests
//! without building a runtime.
//!
//! ```
//! use runtime_manifest::{ByteSize, ComponentManifest, HostPolicy, Timeout};
//!
//! let manifest: ComponentManifest = r#"
//! [component]
//! name = "hello"
//! version = "0.1.0"
//! wasm = "hello.wasm"
//!
//! [resources]
//! memory = "1MiB"
//! fuel = 50_000_000
//! timeout = "100ms"
//! "#
//! .parse()?;
//! assert_eq!(manifest.resources.memory, ByteSize::mib(1));
//! assert_eq!(manifest.resources.timeout, Timeout::from_millis(100));
//!
//! // A host with a narrower policy rejects the same manifest, pointing at the value.
//! let strict = HostPolicy::builder().memory(ByteSize::kib(512), ByteSize::kib(512)).build()?;
//! let error = ComponentManifest::parse("Component.toml", &manifest.to_toml(), &strict).unwrap_err();
//! assert_eq!(error.code_str(), "runtime::manifest::out_of_range");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod compile;
mod error;
mod escape;
mod grants;
mod manifest;
mod parse;
mod policy;
mod policy_file;
mod problem;
mod units;

pub use compile::{
    CompileBudget, DEFAULT_MAX_CODE_BYTES, DEFAULT_MAX_COMPILE_MEMORY, DEFAULT_MAX_COMPILE_TIME,
    DEFAULT_MAX_CONTROL_DEPTH, DEFAULT_MAX_DEFINITIONS, DEFAULT_MAX_FUNCTION_BODY_BYTES, DEFAULT_MAX_FUNCTIONS,
    DEFAULT_MAX_INSTANTIATIONS, DEFAULT_MAX_WAT_BYTES,
};
pub use error::{Error, InvalidManifest, MAX_REPORTED_PROBLEMS};
pub use escape::escape_for_terminal;
pub use grants::{
    AddressPattern, DEFAULT_DIR_BYTES, DEFAULT_DIR_ENTRIES, DEFAULT_MAX_DESCRIPTORS, DEFAULT_MAX_DIR_BYTES,
    DEFAULT_MAX_DIR_ENTRIES, DEFAULT_MAX_OUTGOING_REQUESTS, DirGrant, DirMode, GrantPolicy, HostInterface, HttpGrant,
    HttpOrigin, NetworkGrant, OnClientGone, Stdin, Stdio, WasiConfig, check_env_var, check_guest_dir,
};
pub use manifest::{ComponentInfo, ComponentManifest, ComponentName, Resources, WasmPath};
pub use parse::MAX_MANIFEST_BYTES;
pub use policy::{
    Bounds, DEFAULT_COPY_LIMIT_FACTOR, DEFAULT_HOST_MEMORY_FACTOR, DEFAULT_MAX_CONCURRENT_INSTANCES, DEFAULT_MAX_FUEL,
    DEFAULT_MAX_HANDLES, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_MEMORY, DEFAULT_MAX_TABLE_ELEMENTS, DEFAULT_MAX_TIMEOUT,
    DEFAULT_MIN_MEMORY, DEFAULT_MIN_TIMEOUT, DEFAULT_TABLE_ELEMENTS, HostPolicy, HostPolicyBuilder, LimitKey,
    PolicyError, PolicyViolation,
};
pub use problem::ManifestProblem;
pub use semver;
pub use units::{ByteSize, Fuel, QuantityError, Timeout};

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
