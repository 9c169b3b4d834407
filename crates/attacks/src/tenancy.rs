//! Fresh state between tenants: a reused pool slot never shows a byte of the
//! instance before it. A guest marks its whole memory and table and then
//! returns and is dropped, traps, or is cancelled; the next instance in the
//! same slot (one slot in all) scans for anything that is not fresh. With
//! memory images (copy-on-write) on and off.

use std::time::Duration;

use runtime::{ComponentManifest, HostPolicy, Runtime, RuntimeError, Val};

use super::{Case, Outcome, Verdict};

const MARKER: &str = include_str!("marker.wat");
/// What `scan` finds in an instance that planted its marker: every word of
/// 16 pages, every table entry, and the grown size.
const PLANTED: u32 = 16 * 65_536 / 8 + 100 + 1_000_000;
const ROUNDS: u32 = 1_000;

pub(crate) fn cases() -> Vec<Case> {
    [true, false]
        .into_iter()
        .map(|copy_on_write| {
            let images = if copy_on_write { "with memory images" } else { "without memory images" };
            Case::new("tenancy", format!("{ROUNDS} reuses of one pool slot, {images}"), "no byte seen", move || {
                rounds(copy_on_write).unwrap_or_else(|error| Outcome {
                    observed: error,
                    verdict: Verdict::Escaped,
                    figures: None,
                })
            })
        })
        .collect()
}

fn rounds(copy_on_write: bool) -> Result<Outcome, String> {
    let policy = HostPolicy::builder().max_concurrent_instances(1).build().map_err(|e| e.to_string())?;
    let runtime = Runtime::builder()
        .policy(policy)
        .unstable_engine_config(move |config| {
            config.memory_init_cow(copy_on_write);
        })
        .build()
        .map_err(|e| e.to_string())?;
    let manifest: ComponentManifest = "[component]\nname = \"marker\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"1MiB\"\nfuel = 100_000_000\ntimeout = \"10s\"\ntable-elements = 1000\n"
        .parse()
        .map_err(|e: runtime::manifest::Error| e.to_string())?;
    let component = runtime.load_bytes(MARKER.as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    tokio.block_on(async {
        for round in 0..ROUNDS {
            let mut planter = component.instantiate_async(()).await.map_err(|e| e.to_string())?;
            let how = round % 3;
            if how == 2 {
                let token = planter.cancellation_token();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    token.cancel();
                });
            }
            let planted = planter.call_async("plant", &[Val::U32(how)]).await;
            match (how, &planted) {
                (0, Ok(_)) | (1, Err(RuntimeError::Crash(_))) | (2, Err(RuntimeError::Cancelled { .. })) => {}
                _ => return Err(format!("round {round}: planting ended {planted:?}")),
            }
            if round == 0 {
                // The scan sees the marker where it is.
                let seen = planter.call_async("scan", &[]).await.map_err(|e| e.to_string())?;
                if seen.results != [Val::U32(PLANTED)] {
                    return Err(format!("the scan missed the marker: {:?}", seen.results));
                }
            }
            drop(planter);
            let mut scanner = component.instantiate_async(()).await.map_err(|e| e.to_string())?;
            let scan = scanner.call_async("scan", &[]).await.map_err(|e| e.to_string())?;
            if scan.results != [Val::U32(0)] {
                return Err(format!("round {round}: the next instance saw {:?} marked words", scan.results));
            }
        }
        let observed = format!("{ROUNDS} rounds (returned, trapped, cancelled): nothing seen");
        Ok(Outcome { observed, verdict: Verdict::Pass, figures: None })
    })
}
