//! An actor on WASI 0.3's model: one instance of the p3 actor fixture
//! (`fixtures/guests/rust-p3-actor`, an async `handle-message`) handles
//! several messages at once. Each awaits the host's async `request`, a
//! concurrent host function, without holding a thread: five messages that
//! each wait 400 ms for the host are answered together well inside the one
//! 1 s deadline that covers them, beside one that sums a stream of numbers
//! the host's `numbers` writes. The host buffers what it streams and
//! charges it to the instance's host-memory budget, so an actor asking for
//! 10 million numbers (40 MB) is refused typed. A message the host never
//! answers meets the deadline, typed, and leaves its instance poisoned
//! (wasmtime 48 cannot cancel one task of a store), so a supervisor starts
//! a fresh one, whose first message is answered again.
//!
//! Run it from the workspace root: `cargo run -p runtime --example actor_p3`.
#![allow(clippy::print_stdout, reason = "an example shows its results on stdout")]

use std::time::{Duration, Instant};

use runtime::wasmtime::component::{Accessor, StreamReader};
use runtime::{ComponentManifest, HostPolicy, Runtime, StoreState, Val, wasmtime};

/// The host's answer to `question` after as many milliseconds as it says;
/// never, for anything else.
async fn request(accessor: &Accessor<StoreState<()>>, question: String) -> wasmtime::Result<(String,)> {
    // Marks the host's own work: counted and timed in the report, and
    // covered by the deadline while it waits.
    accessor.with(|mut access| {
        StoreState::import_host(access.data_mut());
    });
    match question.parse::<u64>() {
        Ok(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Err(_) => std::future::pending().await,
    }
    Ok((format!("{question} ms later"),))
}

/// The numbers 0..`count`, as a stream the host buffers: charged first.
async fn numbers(accessor: &Accessor<StoreState<()>>, count: u32) -> wasmtime::Result<(StreamReader<u32>,)> {
    accessor.with(|mut access| {
        StoreState::import_host(access.data_mut());
        access.data_mut().charge_host_memory(u64::from(count) * 4)?;
        let buffered: Vec<u32> = (0..count).collect();
        Ok((StreamReader::new(&mut access, buffered)?,))
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Component-model async is a policy choice: it costs plain (p2) calls,
    // so a host turns it on where its components need it.
    let policy = HostPolicy::builder().component_model_async(true).build()?;
    let runtime = Runtime::builder()
        .policy(policy)
        .link(|linker| {
            let mut host = linker.instance("example:p3-actor/host")?;
            host.func_wrap_concurrent("request", |accessor, (question,): (String,)| {
                Box::pin(request(accessor, question))
            })?;
            host.func_wrap_concurrent("numbers", |accessor, (count,): (u32,)| Box::pin(numbers(accessor, count)))
        })
        .build()?;
    let manifest: ComponentManifest = "[component]\nname = \"p3-actor\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"4MiB\"\nfuel = 100_000_000\ntimeout = \"1s\"\n"
        .parse()?;
    let actor = runtime.load_file("fixtures/guests/rust-p3-actor.wasm", &manifest, ".")?;

    let mut instance = actor.instantiate_async(()).await?;
    let mut messages: Vec<[Val; 1]> = (0..5).map(|_| [Val::String("ask:400".into())]).collect();
    messages.push([Val::String("sum:1000".into())]);
    let calls: Vec<(&str, &[Val])> = messages.iter().map(|message| ("handle-message", &message[..])).collect();
    let started = Instant::now();
    let outcome = instance.call_concurrent_async(&calls).await?;
    println!("{} messages answered in {:?}, under one 1 s deadline:", calls.len(), started.elapsed());
    for results in &outcome.results {
        println!("  {results:?}");
    }
    println!("  report: {} host calls, {} fuel", outcome.report.host_calls, outcome.report.fuel_consumed);

    let greedy = [Val::String("sum:10000000".into())];
    let error = instance.call_async("handle-message", &greedy).await.err().ok_or("it was answered")?;
    println!("10 million numbers asked: {} ({error})", error.kind());

    let mut instance = actor.instantiate_async(()).await?;
    let unanswered = [Val::String("ask:never".into())];
    let error = instance.call_async("handle-message", &unanswered).await.err().ok_or("it was answered")?;
    println!("a message the host never answers: {} ({error})", error.kind());
    let poisoned = instance.call_async("handle-message", &messages[0]).await.err().ok_or("it answered")?;
    println!("its instance afterwards: {}", poisoned.kind());

    // The supervisor's restart: a fresh instance of the same component.
    let mut instance = actor.instantiate_async(()).await?;
    let answer = instance.call_async("handle-message", &messages[0]).await?;
    println!("a fresh instance: {:?}", answer.results);
    Ok(())
}
