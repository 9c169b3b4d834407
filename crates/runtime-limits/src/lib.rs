//! Resource limits for one component instance: not implemented yet.
//!
//! This crate will own `ResourceLimits` (a validated manifest combined with the
//! host's policy), the instance memory and table budget (wasmtime's
//! `ResourceLimiter` and `ResourceLimiterAsync`, capping the sum of all linear
//! memories), the per-call fuel policy, the epoch ticker and the deadline policy.
//! It exports nothing until that work lands, so nothing can depend on a stub.
