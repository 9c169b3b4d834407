//! Criterion benchmarks comparing the runtime with bare wasmtime: not written yet.
//!
//! The benches will live under `benches/` with `harness = false` so that each
//! figure can be measured side by side with bare wasmtime in the same run.
