//! [`CallReport`]: the resources one call used.

use std::time::Duration;

/// What one call used, on success and on failure alike.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CallReport {
    /// Fuel consumed, instantiation included for a fresh instance. Exact on
    /// success and on `out-of-fuel`. An async call stopped from outside (its
    /// deadline, a cancellation) reports the fuel it burned to within one
    /// chunk of 1,000,000 (its store receives fuel in chunks, and wasmtime
    /// writes the counter back at each). A synchronous call interrupted at
    /// its deadline, and a trap, report a lower bound: wasmtime 48 keeps the
    /// counter in a register inside a loop and writes it back only at calls
    /// and chunk ends (wasmtime issue 13802).
    pub fuel_consumed: u64,
    /// Fuel the call was given.
    pub fuel_limit: u64,
    /// Linear memory in use at the end, summed over all memories.
    pub current_memory_bytes: u64,
    /// The most linear memory held at once.
    pub peak_memory_bytes: u64,
    /// The memory budget.
    pub memory_limit_bytes: u64,
    /// Wall time of the whole call, instantiation included.
    pub wall: Duration,
    /// Wall time spent instantiating (zero on a reused instance).
    pub instantiate: Duration,
    /// Wall time the call waited in the admission queue for an instance
    /// slot, before `wall` began (async fresh calls; zero otherwise).
    pub queue_wait: Duration,
    /// Host functions called.
    pub host_calls: u64,
    /// Wall time spent inside host functions.
    pub host_time: Duration,
    /// What the guest wrote to stdout, when the manifest captures it.
    pub stdout: Option<String>,
    /// What the guest wrote to stderr, when the manifest captures it.
    pub stderr: Option<String>,
    /// Each read-write directory grant the instance changed: what its
    /// directory holds against its quota, and how many changes the quota
    /// refused.
    pub disk: Vec<DiskUsage>,
}

/// A read-write directory grant's quota and what its directory holds, as
/// the grant's one account tells: shared by every instance of the process,
/// so it counts what they all wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DiskUsage {
    /// The directory as the guest sees it, e.g. `/data`.
    pub guest_path: String,
    /// Bytes its files, directories and links take on disk (a file by the
    /// larger of its size rounded up to 4 KiB and its allocated blocks).
    pub bytes: u64,
    /// The byte quota (`max-bytes`).
    pub max_bytes: u64,
    /// Files, directories and links in it.
    pub entries: u64,
    /// The entry quota (`max-entries`).
    pub max_entries: u64,
    /// Writes and creations the quota refused so far, in the process (the
    /// guest saw `insufficient-space`).
    pub refused: u64,
}
