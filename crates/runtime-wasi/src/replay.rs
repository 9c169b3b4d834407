//! Clocks and random numbers that repeat, for an instance replayed from a
//! log: the same seed and the same sequence of reads give the same values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// Where a replayed wall clock starts: 2000-01-01T00:00:00Z.
const REPLAY_EPOCH: Duration = Duration::from_secs(946_684_800);

/// How far each read moves a replayed clock: time passes, but only as the
/// guest reads it.
const STEP: Duration = Duration::from_millis(1);

/// Makes `builder`'s clocks and random numbers deterministic from `seed`.
pub(crate) fn deterministic(builder: &mut WasiCtxBuilder, seed: u64) {
    builder.secure_random(StdRng::seed_from_u64(seed));
    builder.insecure_random(StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15));
    builder.insecure_random_seed(u128::from(seed));
    builder.wall_clock(SteppedClock::default());
    builder.monotonic_clock(SteppedClock::default());
}

/// A clock that moves [`STEP`] at every read.
#[derive(Default)]
struct SteppedClock {
    reads: AtomicU64,
}

impl SteppedClock {
    fn next(&self) -> Duration {
        let reads = self.reads.fetch_add(1, Ordering::Relaxed);
        STEP.saturating_mul(u32::try_from(reads).unwrap_or(u32::MAX))
    }
}

impl HostWallClock for SteppedClock {
    fn resolution(&self) -> Duration {
        STEP
    }

    fn now(&self) -> Duration {
        REPLAY_EPOCH + self.next()
    }
}

impl HostMonotonicClock for SteppedClock {
    fn resolution(&self) -> u64 {
        STEP.as_nanos() as u64
    }

    fn now(&self) -> u64 {
        u64::try_from(self.next().as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stepped_clock_moves_only_when_read() {
        let clock = SteppedClock::default();
        assert_eq!(HostWallClock::now(&clock), REPLAY_EPOCH);
        assert_eq!(HostWallClock::now(&clock), REPLAY_EPOCH + STEP);
        let monotonic = SteppedClock::default();
        assert_eq!((HostMonotonicClock::now(&monotonic), HostMonotonicClock::now(&monotonic)), (0, 1_000_000));
    }
}
