//! Tokio execution for the runtime: not implemented yet.
//!
//! This crate will own `call_async`, one deadline per call covering guest CPU and
//! blocked host calls, cancellation, the `AsyncHostRegistry` with its reference
//! host functions, the host-panic boundary and backpressure. It is the only crate
//! that will name tokio. It exports nothing until that work lands.
