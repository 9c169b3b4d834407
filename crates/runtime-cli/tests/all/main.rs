//! Integration tests of the `wasm-runtime` binary: its CLI contract.

mod check;
