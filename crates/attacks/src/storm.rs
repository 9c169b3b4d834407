//! The crash storm: many trapping calls in a row must leave the host as it
//! was: resident memory, open file descriptors and pool slots back to their
//! baseline.

use runtime::{CrashKind, Runtime};

use super::probe::HostMemory;
use super::{Case, Outcome, Verdict};

/// RSS growth over the storm that counts as a leak.
const MAX_RSS_GROWTH_BYTES: u64 = 10 << 20;

const TRAPPING: &str = r#"(component
  (core module $m (memory 1) (func (export "trap") (i32.store (i32.const 0) (i32.const 1)) unreachable))
  (core instance $i (instantiate $m))
  (func (export "trap") (canon lift (core func $i "trap"))))"#;

pub(crate) fn cases(quick: bool) -> Vec<Case> {
    let calls = if quick { 10_000 } else { 100_000 };
    vec![
        maximal_results(quick),
        Case::new("storm", format!("{calls} trapping calls"), "RSS +<10MB; fds, slots at baseline", move || {
            storm(calls).unwrap_or_else(|error| Outcome {
                observed: error,
                verdict: Verdict::HostFailure,
                figures: None,
            })
        }),
    ]
}

/// Descriptors the suite's other threads may open while the storm runs (a
/// server of an earlier case still closing, a log line): a leak per call
/// shows as thousands, never as these.
const FD_SLACK: usize = 4;

fn storm(calls: usize) -> Result<Outcome, String> {
    let runtime = Runtime::builder().build().map_err(|e| e.to_string())?;
    let manifest = crate::limits_manifest("1MiB", "1_000_000", "1s")?;
    let component = runtime.load_bytes(TRAPPING.as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let trap = || match component.call("trap", &[]) {
        Err(error) if error.crash().is_some_and(|c| c.kind == CrashKind::Unreachable) => Ok(()),
        other => Err(format!("a call ended otherwise: {other:?}")),
    };
    // Warm the pool, the allocator and the caches before the baseline.
    for _ in 0..1_000 {
        trap()?;
    }
    let (rss_before, fds_before) = (HostMemory::resident()?, open_fds()?);
    for _ in 0..calls {
        trap()?;
    }
    let (rss_after, fds_after) = (HostMemory::resident()?, open_fds()?);
    let slots = runtime.wasmtime_engine().pooling_allocator_metrics().map_or(0, |m| m.component_instances());
    let growth = rss_after.saturating_sub(rss_before);
    let observed = format!(
        "RSS {} -> {} KiB, fds {fds_before} -> {fds_after}, {slots} slots in use",
        rss_before / 1024,
        rss_after / 1024
    );
    let verdict = if growth < MAX_RSS_GROWTH_BYTES && fds_after <= fds_before + FD_SLACK && slots == 0 {
        Verdict::Pass
    } else {
        Verdict::HostFailure
    };
    Ok(Outcome { observed, verdict, figures: None })
}

/// Open file descriptors of this process.
fn open_fds() -> Result<usize, String> {
    Ok(std::fs::read_dir("/proc/self/fd").map_err(|e| format!("cannot list fds: {e}"))?.count())
}

/// Calls whose results are as large as the copy limit allows: each makes the
/// host hold about 8 MiB of values, and all of it must be given back.
pub(crate) fn maximal_results(quick: bool) -> Case {
    let calls = if quick { 100 } else { 1_000 };
    Case::new("storm", format!("{calls} maximal-result calls"), "all ok; RSS +<10MB after, peak +<64MB", move || {
        maximal_storm(calls).unwrap_or_else(|error| Outcome {
            observed: error,
            verdict: Verdict::HostFailure,
            figures: None,
        })
    })
}

fn maximal_storm(calls: usize) -> Result<Outcome, String> {
    let runtime = Runtime::builder().build().map_err(|e| e.to_string())?;
    let manifest = crate::limits_manifest("1MiB", "10_000_000", "1s")?;
    // 15 entries of 512 KiB: 7.5 MiB, just under the 8 MiB copy limit.
    let guest = super::guests::aliased_list(15, 512 * 1024, "string", "", 0);
    let component = runtime.load_bytes(guest.as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let call = || tokio.block_on(component.call_async("run", &[])).map_err(|e| e.to_string());
    for _ in 0..10 {
        call()?;
    }
    let baseline = HostMemory::reset()?;
    for _ in 0..calls {
        let outcome = call()?;
        drop(outcome);
    }
    let (after, peak) = (HostMemory::resident()?, HostMemory::peak_above(baseline)?);
    let growth = after.saturating_sub(baseline);
    let observed = format!("RSS +{} KiB after, peak +{} MiB", growth / 1024, peak >> 20);
    let verdict = if growth < MAX_RSS_GROWTH_BYTES && peak < 64 << 20 { Verdict::Pass } else { Verdict::Escaped };
    Ok(Outcome { observed, verdict, figures: None })
}
