//! The README's actor block, a digest of `crates/runtime/examples/actor.rs`,
//! run with that example's world, guest and host state.

use std::sync::Arc;

use runtime::wasmtime::component::HasSelf;
use runtime::{ByteSize, CallMetrics, ComponentManifest, Fuel, Resources, RuntimeBuilder, StoreState, Timeout};

use crate::readme_blocks::assert_holds_block;
use crate::{TestResult, tokio};

runtime::wasmtime::component::bindgen!({ path: "examples/actor.wit" });

const ACTOR_GUEST: &str = include_str!("../../examples/actor-guest.wat");

#[path = "../../examples/shared/actor_state.rs"]
mod actor_state;
use actor_state::ActorState;

#[test]
fn the_readme_s_actor_block_runs_as_written() -> TestResult {
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000_000).ok_or("fuel")?, Timeout::from_secs(1));
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
    assert_holds_block(include_str!("readme_actor.rs"), 3)
}
