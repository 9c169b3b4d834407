//! The synchronous core of the runtime: not implemented yet.
//!
//! This crate will own the wasmtime `Engine` configuration, the `ComponentLoader`
//! (header sniffing, validation, compilation, in-memory and on-disk caches),
//! `RuntimeError` and `CrashKind` classification, the `CallReport`, and
//! synchronous calls. It exports nothing until that work lands.
