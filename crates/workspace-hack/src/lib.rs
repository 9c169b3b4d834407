//! No code: this crate exists for its `Cargo.toml`, which asks for one
//! feature set of the crates wasmtime's build shares, so that `cargo xtask`,
//! `cargo test --workspace` and `cargo run -p runtime-cli` reuse one build of
//! wasmtime instead of compiling it once each.
#![no_std]
