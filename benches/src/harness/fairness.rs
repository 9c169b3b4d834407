//! Fairness between components: one floods the runtime with 10,000 calls
//! while another calls once every 10 ms; the second's latency p99 against
//! the same calls with no flood. The flood queues behind its own
//! `resources.instances`, so the quiet component finds a slot at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::{ByteSize, ComponentManifest, Fuel, LoadedComponent, Resources, Runtime, Timeout, Val};

use super::{GUEST, Row, own, row};

/// Calls of the flooding component.
const FLOOD: usize = 10_000;
/// Calls of the quiet one, one every 10 ms.
const QUIET: usize = 300;

/// Two rows: a flood of calls that sleep 10 ms in the host (what admission
/// and queueing alone do to the quiet component; the goal), and a flood of
/// compute-bound calls, where both share the machine's two cores (report
/// only: the CPU, not the runtime, is then what the quiet calls wait for).
pub(super) fn fairness() -> Result<[Row; 2], String> {
    let napping = own::napping_guest();
    let sleeping = measure(&napping, "nap", &[])?;
    let compute = measure(GUEST, "count", &[Val::U32(200_000)])?;
    Ok([
        row(
            "quiet p99 beside a 10,000-call sleeping flood (bare col.: alone)",
            sleeping.0,
            Some(sleeping.1),
            "<= 2.00x alone",
            |r| r <= 2.0,
        ),
        row(
            "quiet p99 beside a 10,000-call compute flood (bare col.: alone)",
            compute.0,
            Some(compute.1),
            "report only",
            |_| true,
        ),
    ])
}

/// The quiet component's p99 in µs beside a flood of `export` of `flood_wat`, and alone.
fn measure(flood_wat: &str, export: &'static str, args: &'static [Val]) -> Result<(f64, f64), String> {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let runtime =
        Arc::new(Runtime::builder().queue(100_000, Duration::from_secs(120)).build().map_err(|e| e.to_string())?);
    let flood = runtime.load_bytes(flood_wat.as_bytes(), &manifest("flood", 100)?).map_err(|e| e.to_string())?;
    let quiet = runtime.load_bytes(GUEST.as_bytes(), &manifest("quiet", 10)?).map_err(|e| e.to_string())?;
    tokio.block_on(async {
        let alone = quiet_p99(&quiet).await?;
        let mut flooding = tokio::task::JoinSet::new();
        for _ in 0..FLOOD {
            let flood = flood.clone();
            flooding.spawn(async move { flood.call_async(export, args).await.map(|_| ()).map_err(|e| e.to_string()) });
        }
        tokio::task::yield_now().await;
        let beside = quiet_p99(&quiet).await?;
        while let Some(joined) = flooding.join_next().await {
            joined.map_err(|e| e.to_string())??;
        }
        Ok((beside, alone))
    })
}

/// p99 in µs of [`QUIET`] calls of `noop`, one every 10 ms.
async fn quiet_p99(quiet: &LoadedComponent) -> Result<f64, String> {
    let mut latencies = Vec::with_capacity(QUIET);
    for _ in 0..QUIET {
        let started = Instant::now();
        quiet.call_async("noop", &[]).await.map_err(|e| e.to_string())?;
        latencies.push(started.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies.get(QUIET * 99 / 100).copied().unwrap_or(f64::NAN))
}

fn manifest(name: &str, instances: u32) -> Result<ComponentManifest, String> {
    let fuel = Fuel::new(10_000_000_000).ok_or("fuel")?;
    let resources = Resources::new(ByteSize::mib(1), fuel, Timeout::from_secs(60)).with_instances(instances);
    let name = name.parse().map_err(|e: &str| e.to_owned())?;
    Ok(ComponentManifest::from_resources(name, resources)
        .with_wasi(runtime::manifest::WasiConfig::default().with_host_functions(runtime::manifest::HostInterface::ALL)))
}
