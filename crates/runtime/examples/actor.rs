//! An actor system on the runtime: 100 actors, one live instance each, each
//! with its own host state (its id and its outbox) reached by a typed
//! `bindgen!` import, called through typed exports on Tokio with
//! cancellation, and counted by an observer: outcomes per kind and calls
//! per actor.
//!
//! Each round, every actor handles the messages in its inbox; handling one
//! adds its amount to the guest's running total and forwards half of it to
//! the next actor through the host's `mailbox.send`. Then one actor is asked
//! to spin and has that one message cancelled, and one traps: neither harms
//! the others, and a supervisor restarts both in place (each keeps its
//! instance slot and its host state; the guest starts over). A burst of fresh calls beyond the component's quota of 100
//! instances (`resources.instances`) is refused `busy`, naming the quota.
//!
//! Then a second kind of actor runs on the same engine, pool and cache:
//! archivists (the repository's Rust command fixture), each with its own
//! state type, its own data directory and a per-message fuel budget.
//!
//! The example depends on the facade alone: `bindgen!` resolves through
//! `runtime::wasmtime`.
//!
//! Run it from the workspace root: `cargo run -p runtime --example actor`.
#![allow(clippy::print_stdout, reason = "an example shows its results on stdout")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use runtime::manifest::{DirGrant, DirMode, Stdio};
use runtime::wasi::InstanceWasi;
use runtime::wasmtime::component::HasSelf;
use runtime::{
    ByteSize, CallMetrics, ComponentManifest, Fuel, Instance, LoadedComponent, Resources, Runtime, RuntimeBuilder,
    RuntimeError, StoreState, Timeout, wasmtime,
};

// The actor's world, shared with the README's test of this example's lines.
wasmtime::component::bindgen!({ path: "examples/actor.wit" });

const ACTORS: u32 = 100;
const ROUNDS: usize = 8;

/// The guest, in WAT so the example needs no wasm toolchain: a running total
/// in a global, kept between calls of the live instance.
const ACTOR_GUEST: &str = include_str!("actor-guest.wat");

/// The example's observer: outcomes per kind, and calls per actor (the
/// live instance each call was on).
#[derive(Default)]
struct Observed {
    kinds: CallMetrics,
    per_actor: std::sync::Mutex<std::collections::HashMap<u64, u64>>,
}

impl runtime::CallObserver for Observed {
    fn call_finished(&self, event: &runtime::observe::CallEvent<'_>) {
        self.kinds.call_finished(event);
        if let (Some(instance), Ok(mut per_actor)) = (event.instance, self.per_actor.lock()) {
            *per_actor.entry(instance).or_default() += 1;
        }
    }
}

#[path = "shared/actor_state.rs"]
mod actor_state;
use actor_state::ActorState;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = Arc::new(Observed::default());
    let runtime = RuntimeBuilder::<ActorState>::new()
        .link(|linker| Actor::add_to_linker::<_, HasSelf<ActorState>>(linker, StoreState::import_host))
        .observer(metrics.clone())
        // A call waits at most 50 ms for an instance before `busy`.
        .queue(1_000, Duration::from_millis(50))
        .build()?;
    // Limits as values: no manifest file, no TOML text. One instance per
    // actor, and no more: the quota covers live instances and fresh calls.
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000_000).ok_or("fuel")?, Timeout::from_secs(1))
        .with_instances(ACTORS);
    let manifest = ComponentManifest::from_resources("actor".parse()?, resources);
    let component = runtime.load_bytes(ACTOR_GUEST.as_bytes(), &manifest)?;

    let mut actors = Vec::new();
    for id in 0..ACTORS {
        actors.push(component.instantiate_async(ActorState { id, outbox: Vec::new() }).await?);
    }
    let mut inboxes: Vec<Vec<u32>> = (0..ACTORS).map(|id| vec![1_000 + id]).collect();
    for _ in 0..ROUNDS {
        // Every actor handles its inbox on its own task, then hands its instance back.
        let mut tasks = tokio::task::JoinSet::new();
        for mut actor in actors.drain(..) {
            let inbox = std::mem::take(&mut inboxes[actor.host().id as usize]);
            tasks.spawn(async move {
                let handle = actor.typed::<(u32,), (u32,)>("handle")?;
                for amount in inbox {
                    actor.call_typed_async(&handle, (amount,)).await?;
                }
                Ok::<_, RuntimeError>(actor)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            actors.push(joined??);
        }
        // The host delivers what the actors sent.
        for actor in &mut actors {
            for (to, amount) in actor.host_mut().outbox.drain(..) {
                inboxes[to as usize].push(amount);
            }
        }
    }
    actors.sort_by_key(|actor| actor.host().id);

    // A runaway actor is stopped from outside; a trapping one stops itself.
    let cancelled = spin_and_cancel(&mut actors[7]).await;
    println!("actor 7 spun and was stopped: {}", cancelled.map_or_else(|e| e.kind(), |_| "ok"));
    let failed = actors[42].call_async("fail", &[]).await;
    println!("actor 42 trapped: {}", failed.map_or_else(|e| e.kind(), |_| "ok"));
    println!("actor 7 afterwards: {}", actors[7].call_async("total", &[]).await.map_or_else(|e| e.kind(), |_| "ok"));

    // All 100 instances are live: a burst of fresh calls is over the quota.
    let refused = burst(&component, 5).await;
    println!("a burst of 5 fresh calls beside 100 live actors: {refused} refused busy (quota {ACTORS})");

    // The supervisor restarts every poisoned actor in place: it keeps its
    // slot (the burst above cannot take it) and its host state.
    for slot in 0..actors.len() {
        if actors[slot].is_poisoned() {
            let crashed = actors.swap_remove(slot);
            let id = crashed.host().id;
            let restarted = crashed.restart().await.map_err(|failed| failed.error)?;
            actors.push(restarted);
            let last = actors.len() - 1;
            actors.swap(slot, last);
            println!(
                "actor {id} restarted: {}",
                actors[slot].call_async("total", &[]).await.map_or_else(|e| e.kind(), |_| "ok")
            );
        }
    }

    let mut sum = 0;
    for actor in actors.iter_mut().filter(|actor| !actor.is_poisoned()) {
        let total = actor.typed::<(), (u64,)>("total")?;
        sum += actor.call_typed_async(&total, ()).await?.results.0;
    }
    println!("{} healthy actors hold a total of {sum}", actors.iter().filter(|a| !a.is_poisoned()).count());

    archivists(&runtime).await?;

    let busiest =
        metrics.per_actor.lock().ok().and_then(|calls| calls.iter().max_by_key(|(_, n)| **n).map(|(id, n)| (*id, *n)));
    if let Some((instance, calls)) = busiest {
        println!("metrics per actor: the busiest live instance ({instance}) handled {calls} calls");
    }
    println!("{:<22} {:>7} {:>10} {:>10} {:>14}", "outcome", "calls", "p50", "p99", "fuel");
    for (kind, calls) in metrics.kinds.snapshot() {
        let (p50, p99) = (calls.latency_quantile(0.5), calls.latency_quantile(0.99));
        println!("{kind:<22} {:>7} {:>10?} {:>10?} {:>14}", calls.count, p50, p99, calls.fuel);
    }
    Ok(())
}

/// Makes `count` fresh calls of `component`; returns how many were refused
/// `busy` (each after its 50 ms in the component's queue).
async fn burst(component: &LoadedComponent<ActorState>, count: usize) -> usize {
    let mut refused = 0;
    for _ in 0..count {
        if component.call_async("total", &[]).await.is_err_and(|error| error.kind() == "busy") {
            refused += 1;
        }
    }
    refused
}

/// Calls `spin` on `actor` and cancels that one call 20 ms later.
async fn spin_and_cancel(actor: &mut Instance<ActorState>) -> Result<(), RuntimeError> {
    let canceller = actor.call_canceller();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        canceller.cancel_current();
    });
    let spin = actor.typed::<(), ()>("spin")?;
    actor.call_typed_async(&spin, ()).await.map(|_| ())
}

/// An archivist's host state: a kind of actor of its own.
#[derive(Debug, Default)]
struct ArchivistState {
    id: u32,
}

/// A second kind of actor on `runtime`'s engine, pool and cache: each
/// archivist writes an entry into a data directory of its own, under a
/// per-message fuel budget, and sees no other's.
async fn archivists(runtime: &Runtime<ActorState>) -> Result<(), Box<dyn std::error::Error>> {
    let kind = RuntimeBuilder::<ArchivistState>::new().sharing(runtime).build()?;
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-command.wasm");
    let resources = Resources::new(ByteSize::mib(4), Fuel::new(1_000_000_000).ok_or("fuel")?, Timeout::from_secs(5));
    let component = kind.load_file(&wasm, &ComponentManifest::from_resources("archivist".parse()?, resources), ".")?;
    let run = component.command_export().ok_or("the archivist is a command")?;
    let root = std::env::temp_dir().join(format!("actor-example-{}", std::process::id()));
    for id in 0..3 {
        let dir = root.join(format!("archivist-{id}"));
        std::fs::create_dir_all(&dir)?;
        let own = InstanceWasi::new()
            .args([format!("write:/data/entry-{id}.txt"), "ls:/data".to_owned()])
            .dir("/data", DirGrant::new(dir.to_string_lossy(), DirMode::ReadWrite)?)
            .stdio(Stdio::Capture);
        let mut archivist = component.with_instance_wasi(&own)?.instantiate_async(ArchivistState { id }).await?;
        archivist.set_call_fuel(Some(200_000_000));
        let outcome = archivist.call_async(&run, &[]).await?;
        let said = outcome.report.stdout.unwrap_or_default().replace('\n', " / ");
        println!("archivist {} (its own /data): {}", archivist.host().id, said.trim_end_matches(" / "));
    }
    std::fs::remove_dir_all(&root)?;
    Ok(())
}
