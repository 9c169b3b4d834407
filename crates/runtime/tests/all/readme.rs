//! The README's Rust blocks, compiled and run here as written (each test
//! checks its copy is the README's, line for line), from the repository's
//! root as a reader runs them. The serving block runs in `runtime-http`.

use runtime::Val;

use crate::readme_blocks::{assert_holds_block, repository, rust_block_count};
use crate::{TestResult, tokio};

#[test]
fn every_rust_block_of_the_readme_has_its_test() -> TestResult {
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    // Blocks 2 and 3 are below; blocks 1 (a guest's source) and 4 are
    // runtime-http's `readme` tests.
    assert_eq!(rust_block_count(&readme), 4, "a Rust block was added to or removed from the README: give it a test");
    Ok(())
}

#[test]
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the README's snippet prints its outcome")]
fn the_readme_s_first_embedding_block_runs_as_written() -> TestResult {
    // Its paths are the repository's; the other tests name theirs absolutely.
    std::env::set_current_dir(repository())?;
    tokio()?.block_on(async {
        // --- README block 2 ---
        let runtime = runtime::Runtime::builder().build()?;
        // The manifest's limits and grants, validated against the runtime's policy at load:
        let manifest = runtime::ComponentManifest::from_path("examples/rust-guest/Component.toml")?;
        let component = runtime.load_file("fixtures/guests/rust-guest.wasm", &manifest, "examples/rust-guest")?;
        match component.call_async("greet", &[Val::String("you".into())]).await {
            Ok(outcome) => println!("{:?} used {} fuel", outcome.results, outcome.report.fuel_consumed),
            Err(error) => eprintln!("{error} ({})", error.kind()), // e.g. deadline-exceeded
        }
        // --- end of block 2 ---
        let outcome = component.call_async("greet", &[Val::String("you".into())]).await?;
        assert!(matches!(&outcome.results[..], [Val::String(text)] if text.contains("you")), "{:?}", outcome.results);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    assert_holds_block(include_str!("readme.rs"), 2)
}

/// The actor block: the README's digest of `crates/runtime/examples/actor.rs`,
/// run with that example's world and guest.
mod actor {
    use std::sync::Arc;

    use runtime::wasmtime::component::HasSelf;
    use runtime::{ByteSize, CallMetrics, ComponentManifest, Fuel, Resources, RuntimeBuilder, StoreState, Timeout};

    use crate::readme_blocks::assert_holds_block;
    use crate::{TestResult, tokio};

    runtime::wasmtime::component::bindgen!({ path: "examples/actor.wit" });

    const ACTOR_GUEST: &str = include_str!("../../examples/actor-guest.wat");

    #[derive(Debug, Default)]
    struct ActorState {
        id: u32,
        outbox: Vec<(u32, u32)>,
    }

    impl example::actor::mailbox::Host for ActorState {
        fn send(&mut self, to: u32, amount: u32) -> u32 {
            self.outbox.push((to, amount));
            self.outbox.len() as u32
        }

        fn self_id(&mut self) -> u32 {
            self.id
        }
    }

    #[test]
    fn the_readme_s_actor_block_runs_as_written() -> TestResult {
        let resources =
            Resources::new(ByteSize::mib(1), Fuel::new(1_000_000_000).ok_or("fuel")?, Timeout::from_secs(1));
        let manifest = ComponentManifest::from_resources("readme-actor".parse()?, resources);
        let (id, amount) = (7, 10);
        tokio()?.block_on(async {
            // --- README block 3 ---
            let metrics = Arc::new(CallMetrics::new());
            let runtime = RuntimeBuilder::<ActorState>::new()
                .link(|linker| Actor::add_to_linker::<_, HasSelf<ActorState>>(linker, StoreState::import_host))
                .observer(metrics.clone())
                .build()?;
            let component = runtime.load_bytes(ACTOR_GUEST.as_bytes(), &manifest)?;
            let mut actor = component.instantiate_async(ActorState { id, outbox: Vec::new() }).await?;
            let handle = actor.typed::<(u32,), (u32,)>("handle")?;
            actor.call_typed_async(&handle, (amount,)).await?; // the guest calls mailbox.send -> ActorState
            actor.set_call_fuel(Some(1_000_000)); // this message's budget, under the manifest's
            actor.call_canceller().cancel_current(); // from anywhere: ends this message only (an idle actor is untouched)
            let actor = actor.restart().await.map_err(|failed| failed.error)?; // after a crash, in place: same slot, same host state
            actor.cancellation_token().cancel(); // from anywhere: stops the actor for good (later calls refused)
            // --- end of block 3 ---
            // The message reached the host state, which the restart kept.
            assert_eq!(actor.host().outbox, [(8, 5)]);
            let mut actor = actor;
            let refused = actor.call_async("total", &[]).await.err().ok_or("a call after cancel() ran")?;
            assert_eq!(refused.kind(), "cancelled", "{refused}");
            let outcomes = metrics.snapshot();
            assert_eq!(outcomes.get("ok").map(|ok| ok.count), Some(1), "{:?}", outcomes.keys());
            Ok::<_, Box<dyn std::error::Error>>(())
        })?;
        assert_holds_block(include_str!("readme.rs"), 3)
    }
}
