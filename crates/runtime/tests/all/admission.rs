//! Admission equals the pool's capacity: a call is admitted only if the
//! instance pool can place it, so an admitted call never fails for want of a
//! pool slot, and a component that could never be placed is refused at load.

use std::time::Duration;

use runtime::{
    ByteSize, ComponentManifest, Fuel, HostPolicy, LoadError, Resources, Runtime, RuntimeError, Timeout, Val,
};

use crate::{TestResult, tokio};

/// `echo(n: u32) -> u32` in a component that instantiates its core module
/// `instances` times, each instance defining `memories_each` memories.
fn guest(instances: usize, memories_each: usize) -> String {
    let memories = "(memory 1)".repeat(memories_each);
    let more = "(core instance (instantiate $m))".repeat(instances.saturating_sub(1));
    format!(
        r#"(component
  (core module $m {memories} (func (export "echo") (param i32) (result i32) (local.get 0)))
  (core instance $i (instantiate $m))
  {more}
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo"))))"#
    )
}

fn manifest(instances: u32) -> Result<ComponentManifest, Box<dyn std::error::Error>> {
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(10))
        .with_instances(instances);
    Ok(ComponentManifest::from_resources("admission".parse()?, resources))
}

fn runtime(slots: u32, queue_timeout: Duration) -> Result<Runtime, Box<dyn std::error::Error>> {
    let policy = HostPolicy::builder().max_concurrent_instances(slots).build()?;
    Ok(Runtime::builder().policy(policy).queue(1_000, queue_timeout).build()?)
}

/// Eight core instances each: the pool once held four per slot, and half of
/// ten admitted instances then failed `busy` with nothing queued.
#[test]
fn every_admitted_instance_of_a_component_of_many_core_instances_fits_the_pool() -> TestResult {
    let runtime = runtime(10, Duration::from_millis(100))?;
    let component = runtime.load_bytes(guest(8, 0).as_bytes(), &manifest(100)?)?;
    assert_eq!(component.pool_slots(), 1);
    let live = (0..10).map(|_| component.instantiate(())).collect::<Result<Vec<_>, _>>()?;
    assert_eq!(runtime.available_slots(), 0);
    let queued = tokio()?.block_on(component.call_async("echo", &[Val::U32(1)])).err().ok_or("an 11th instance")?;
    assert!(matches!(queued, RuntimeError::Busy { waited } if waited >= Duration::from_millis(100)), "{queued:?}");
    drop(live);
    assert_eq!(component.call("echo", &[Val::U32(3)])?.results, [Val::U32(3)]);
    Ok(())
}

/// Four memories take two slots: five live instances fill ten slots; the
/// sixth waits in the queue (never `busy` at once) and gets a freed place;
/// a one-slot component fits beside them exactly as far as slots remain.
#[test]
fn a_component_of_many_memories_takes_as_many_slots_as_the_pool_needs() -> TestResult {
    let runtime = runtime(10, Duration::from_secs(10))?;
    let wide = runtime.load_bytes(guest(4, 1).as_bytes(), &manifest(100)?)?;
    let narrow = runtime.load_bytes(guest(1, 1).as_bytes(), &manifest(100)?)?;
    assert_eq!((wide.pool_slots(), narrow.pool_slots()), (2, 1));
    let mut live = (0..4).map(|_| wide.instantiate(())).collect::<Result<Vec<_>, _>>()?;
    let beside = [narrow.instantiate(())?, narrow.instantiate(())?];
    assert_eq!(runtime.available_slots(), 0);
    assert_eq!(narrow.call("echo", &[Val::U32(1)]).err().map(|e| e.kind()), Some("busy"));
    drop(beside);
    live.push(wide.instantiate(())?);
    assert_eq!(runtime.available_slots(), 0);
    tokio()?.block_on(async {
        let queued = wide.call_async("echo", &[Val::U32(9)]);
        let release = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            live.pop();
        };
        let (outcome, ()) = tokio::join!(queued, release);
        let outcome = outcome?;
        assert_eq!(outcome.results, [Val::U32(9)]);
        assert!(outcome.report.queue_wait >= Duration::from_millis(10), "{:?}", outcome.report.queue_wait);
        Ok(())
    })
}

/// Many concurrent calls of a two-slot component, beside a live one, with
/// five slots (two calls at a time, one slot always spare): all queue and
/// all succeed.
#[test]
fn concurrent_calls_of_a_multi_slot_component_queue_and_all_succeed() -> TestResult {
    let runtime = runtime(7, Duration::from_secs(30))?;
    let wide = runtime.load_bytes(guest(3, 1).as_bytes(), &manifest(100)?)?;
    let held = wide.instantiate(())?;
    tokio()?.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..200u32 {
            let wide = wide.clone();
            calls.spawn(
                async move { (n, wide.call_async("echo", &[Val::U32(n)]).await.map(|outcome| outcome.results)) },
            );
        }
        while let Some(joined) = calls.join_next().await {
            let (n, results) = joined?;
            assert_eq!(results?, [Val::U32(n)]);
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    drop(held);
    assert_eq!(runtime.available_slots(), 7);
    Ok(())
}

#[test]
fn a_component_that_needs_more_slots_than_the_runtime_has_is_refused_at_load_with_its_figures() -> TestResult {
    let runtime = runtime(1, Duration::from_millis(10))?;
    let error = runtime.load_bytes(guest(3, 1).as_bytes(), &manifest(1)?).err().ok_or("a 3-memory component loaded")?;
    let RuntimeError::Load(load) = &error else { return Err(format!("not a load error: {error:?}").into()) };
    assert!(matches!(load, LoadError::PoolTooSmall { memories: 3, tables: 0, needed: 2, slots: 1 }), "{load:?}");
    assert_eq!(error.kind(), "too-large");
    let message = error.to_string();
    assert!(message.contains("3 memories") && message.contains("the runtime has 1"), "{message}");
    // One memory fits the same runtime.
    let fits = runtime.load_bytes(guest(1, 1).as_bytes(), &manifest(1)?)?;
    assert_eq!(fits.call("echo", &[Val::U32(4)])?.results, [Val::U32(4)]);
    Ok(())
}

/// Past the per-component caps no runtime can hold it, pool or not: wasmtime
/// refuses it when it is compiled, naming the count.
#[test]
fn a_component_past_the_per_component_caps_is_refused_at_load() -> TestResult {
    let runtime = runtime(100, Duration::from_millis(10))?;
    let error = runtime.load_bytes(guest(33, 0).as_bytes(), &manifest(1)?).err().ok_or("33 core instances loaded")?;
    assert!(error.to_string().contains("33 core module instances"), "{error}");
    let error = runtime.load_bytes(guest(5, 1).as_bytes(), &manifest(1)?).err().ok_or("5 memories loaded")?;
    assert!(error.to_string().contains("5 Wasm linear memories"), "{error}");
    Ok(())
}
