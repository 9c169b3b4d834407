//! The facade of the component runtime: one dependency for embedders.
//!
//! Today it exposes manifest validation ([`ComponentManifest`], [`HostPolicy`]);
//! the `Runtime` builder that loads and calls components arrives with the
//! execution crates. Each crate's error is re-exported under its own name
//! (`ManifestError`, ...), so an embedder can match on where a failure came from.
//!
//! ```
//! use runtime::{ComponentManifest, HostPolicy};
//!
//! let text = "[component]\nname = \"hello\"\nversion = \"0.1.0\"\n\n[resources]\nmemory = \"8MiB\"\nfuel = 1_000\ntimeout = \"1s\"\n";
//! // The default policy caps memory at 4MiB: the manifest is rejected and the
//! // diagnostic points at line 6.
//! let error = ComponentManifest::parse("Component.toml", text, &HostPolicy::default()).unwrap_err();
//! assert_eq!(error.code_str(), "runtime::manifest::out_of_range");
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub use runtime_manifest::{
    self as manifest, ByteSize, ComponentManifest, Error as ManifestError, Fuel, HostPolicy,
    ManifestProblem, Resources, Timeout,
};
