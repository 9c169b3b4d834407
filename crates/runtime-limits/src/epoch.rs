//! [`EpochTicker`]: advances an engine's epoch; [`Deadline`]: one call's instant.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Instant;

use wasmtime::{Engine, UpdateDeadline};

/// How often the ticker advances the epoch: the resolution of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// A thread that increments an engine's epoch every [`EPOCH_TICK`], so guests
/// reach their epoch callback and deadlines are checked. One per engine;
/// dropping it stops and joins the thread.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            // Here rather than on the caller's thread: the 0.6 ms overlaps
            // the loading that comes before any call.
            crate::clock::calibrate();
            // Waiting on the channel doubles as the sleep: dropping the sender
            // wakes the thread at once.
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The instant a call must finish by, on the call path's [clock](crate::clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// The deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Self::starting_at(Instant::now(), timeout)
    }

    /// The deadline `timeout` after `start`: a call that already read the
    /// clock saves a second read. A timeout too large for the clock means no
    /// deadline in practice (a century).
    pub fn starting_at(start: Instant, timeout: Duration) -> Self {
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        // If even `start + timeout.min(CENTURY)` overflows, so would `start + CENTURY`.
        let at = start.checked_add(timeout.min(CENTURY)).unwrap_or(start);
        Self { at }
    }

    /// The instant itself.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Whether the instant has passed.
    pub fn has_passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// What is left before the instant (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The instant on the OS clock, for timers that take one (Tokio's).
    pub fn std_instant(&self) -> std::time::Instant {
        let now = std::time::Instant::now();
        now.checked_add(self.remaining()).unwrap_or(now)
    }

    /// Installs the epoch callback on `store`, once: at every tick the guest
    /// is checked against the deadline its store data holds now
    /// ([`DeadlineSource`]), and interrupted once that has passed.
    /// `yield_to_executor` makes it yield to the async executor at each tick
    /// instead of continuing (async stores only). Each call then only sets
    /// the store's deadline and `set_epoch_deadline(1)`.
    pub fn install_callback<T: DeadlineSource + 'static>(store: &mut wasmtime::Store<T>, yield_to_executor: bool) {
        store.epoch_deadline_callback(move |context| {
            Ok(if context.data().deadline().has_passed() {
                UpdateDeadline::Interrupt
            } else if yield_to_executor {
                UpdateDeadline::Yield(1)
            } else {
                UpdateDeadline::Continue(1)
            })
        });
    }
}

/// Store data that carries the deadline of the call in progress.
pub trait DeadlineSource {
    /// The deadline of the call in progress.
    fn deadline(&self) -> Deadline;
}
