//! The call path's clock: every call reads it twice (its start, which is
//! also its deadline's base, and its end, for the report's wall time).
//!
//! `quanta` reads the CPU's time-stamp counter where it is invariant (and
//! falls back to the monotonic OS clock where it is not): about 9 ns a read
//! where `std::time::Instant::now()` costs about 20 ns through the vDSO on
//! the machines this runtime was measured on, which is a fifth of a warm
//! call's overhead over bare wasmtime.

pub use quanta::Instant;

/// Calibrates the clock against the OS clock now (about 0.6 ms here, at
/// most 200 ms, once per process), so the first call does not pay for it.
/// A read that comes meanwhile waits for the calibration to end.
pub fn calibrate() {
    let _ = Instant::now();
}
