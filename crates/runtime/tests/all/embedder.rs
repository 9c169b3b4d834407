//! The embedder's API: its own state per instance, `bindgen!` imports under
//! the same boundary as the registry's, typed and checked calls, one
//! admission for every entry point, cancellation, reports and observers.

use std::sync::Arc;
use std::time::Duration;

use runtime::{
    AsyncHostRegistry, ByteSize, CallMetrics, ComponentManifest, CrashKind, Fuel, HostPolicy, LoadedComponent,
    PoisonCause, Resources, Runtime, RuntimeBuilder, RuntimeError, StoreState, Timeout, Val, host::HostFuture,
};
use wasmtime::component::HasSelf;

use crate::{TestResult, tokio};

wasmtime::component::bindgen!({
    inline: "
        package test:embedder;
        interface counter {
            bump: func(by: u32) -> u32;
        }
        world guest {
            import counter;
        }
    ",
});

/// The embedder's state: a counter the guest bumps through the import, and
/// whether the import should panic.
#[derive(Debug, Default)]
struct Counter {
    value: u32,
    panic: bool,
}

impl test::embedder::counter::Host for Counter {
    fn bump(&mut self, by: u32) -> u32 {
        assert!(!self.panic, "the embedder's import panicked on purpose");
        self.value += by;
        self.value
    }
}

/// `bump(n) -> total` through the import; `echo(n: u32) -> u32`; `spin`.
const GUEST: &str = r#"(component
  (import "test:embedder/counter" (instance $counter (export "bump" (func (param "by" u32) (result u32)))))
  (core func $bump (canon lower (func $counter "bump")))
  (core module $m
    (import "host" "bump" (func $bump (param i32) (result i32)))
    (func (export "bump") (param i32) (result i32) (call $bump (local.get 0)))
    (func (export "echo") (param i32) (result i32) (local.get 0))
    (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m (with "host" (instance (export "bump" (func $bump))))))
  (func (export "bump") (param "by" u32) (result u32) (canon lift (core func $i "bump")))
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo")))
  (func (export "spin") (canon lift (core func $i "spin"))))"#;

/// `echo(n: u32) -> u32`, without imports: callable synchronously.
const ECHO: &str = r#"(component
  (core module $m (func (export "echo") (param i32) (result i32) (local.get 0)))
  (core instance $i (instantiate $m))
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo"))))"#;

/// `nap(ms)`: asks the host to sleep.
fn napping_guest() -> String {
    format!(
        r#"(component
  (import "{}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m (import "host" "sleep" (func $sleep (param i32)))
    (func (export "nap") (param i32) (call $sleep (local.get 0))))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "nap") (param "ms" u32) (canon lift (core func $i "nap"))))"#,
        runtime::host::TIME_INTERFACE
    )
}

fn manifest(timeout: Timeout) -> Result<ComponentManifest, Box<dyn std::error::Error>> {
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(10_000_000_000).ok_or("fuel")?, timeout);
    Ok(ComponentManifest::from_resources("embedder".parse()?, resources))
}

fn counter_runtime(policy: HostPolicy, metrics: Option<Arc<CallMetrics>>) -> Result<Runtime<Counter>, RuntimeError> {
    let mut builder = RuntimeBuilder::<Counter>::new()
        .policy(policy)
        .link(|linker| Guest::add_to_linker::<_, HasSelf<Counter>>(linker, StoreState::import_host));
    if let Some(metrics) = metrics {
        builder = builder.observer(metrics);
    }
    builder.build()
}

fn load(runtime: &Runtime<Counter>, timeout: Timeout) -> Result<LoadedComponent<Counter>, Box<dyn std::error::Error>> {
    Ok(runtime.load_bytes(GUEST.as_bytes(), &manifest(timeout)?)?)
}

#[test]
fn each_instance_has_its_own_state_which_a_bindgen_import_reaches() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut first = component.instantiate_async(Counter { value: 100, panic: false }).await?;
        let mut second = component.instantiate_async(Counter::default()).await?;
        let bump = first.typed::<(u32,), (u32,)>("bump")?;
        assert_eq!(first.call_typed_async(&bump, (5,)).await?.results, (105,));
        let outcome = first.call_typed_async(&bump, (5,)).await?;
        assert_eq!(outcome.results, (110,));
        assert_eq!(outcome.report.host_calls, 1, "the linked import is counted like a registered one");
        assert_eq!(second.call_async("bump", &[Val::U32(1)]).await?.results, [Val::U32(1)]);
        assert_eq!((first.host().value, second.host().value), (110, 1));
        second.host_mut().value = 41;
        assert_eq!(second.call_async("bump", &[Val::U32(1)]).await?.results, [Val::U32(42)]);
        Ok(())
    })
}

#[test]
fn a_panicking_linked_import_ends_that_call_only_as_host_panic() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let error = component
            .call_async_with(Counter { value: 0, panic: true }, "bump", &[Val::U32(1)], None)
            .await
            .err()
            .ok_or("the import panicked")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::HostPanic), "{error}");
        assert!(error.to_string().contains("panicked on purpose"), "{error}");
        let fine = component.call_async("bump", &[Val::U32(2)]).await?;
        assert_eq!(fine.results, [Val::U32(2)]);
        Ok(())
    })
}

#[test]
fn a_wrong_argument_type_is_refused_before_the_guest_runs_and_poisons_nothing() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut instance = component.instantiate_async(Counter::default()).await?;
        let error = instance.call_async("echo", &[Val::S32(7)]).await.err().ok_or("s32 for u32")?;
        assert_eq!(error.kind(), "invalid-arguments");
        let message = format!("{error:?}");
        assert!(message.contains("`n` is u32") && message.contains("an s32"), "{message}");
        assert_eq!(instance.call_async("echo", &[Val::U32(7)]).await?.results, [Val::U32(7)]);
        assert!(!instance.is_poisoned());
        // A fresh call says the same, and so does a check without a call.
        let fresh = component.call_async("echo", &[Val::String("7".into())]).await.err().ok_or("string")?;
        assert_eq!(fresh.kind(), "invalid-arguments");
        assert!(component.check_arguments("echo", &[Val::U32(1)]).is_ok());
        Ok(())
    })
}

#[test]
fn typed_exports_are_checked_once_and_belong_to_their_instance() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut first = component.instantiate_async(Counter::default()).await?;
        let mut second = component.instantiate_async(Counter::default()).await?;
        let wrong = first.typed::<(String,), (u32,)>("echo").err().ok_or("echo takes a u32")?;
        assert_eq!(wrong.kind(), "invalid-arguments");
        let echo = first.typed::<(u32,), (u32,)>("echo")?;
        assert_eq!(first.call_typed_async(&echo, (9,)).await?.results, (9,));
        let foreign = second.call_typed_async(&echo, (9,)).await.err().ok_or("another instance's export")?;
        assert_eq!(foreign.kind(), "invalid-arguments");
        assert!(!second.is_poisoned());
        Ok(())
    })
}

#[test]
fn a_live_instance_holds_its_slot_for_every_entry_point() -> TestResult {
    let policy = HostPolicy::builder().max_concurrent_instances(2).build()?;
    let runtime = Runtime::builder().policy(policy).queue(0, Duration::from_millis(10)).build()?;
    let component = runtime.load_bytes(ECHO.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let tokio = tokio()?;
    let first = component.instantiate(())?;
    let second = tokio.block_on(component.instantiate_async(()))?;
    assert_eq!(runtime.available_slots(), 0);
    assert_eq!(component.call("echo", &[Val::U32(1)]).err().map(|e| e.kind()), Some("busy"));
    assert_eq!(component.instantiate(()).err().map(|e| e.kind()), Some("busy"));
    let queued = tokio.block_on(component.call_async("echo", &[Val::U32(1)]));
    assert_eq!(queued.err().map(|e| e.kind()), Some("busy"));
    drop(first);
    assert_eq!(component.call("echo", &[Val::U32(1)])?.results, [Val::U32(1)]);
    drop(second);
    assert_eq!(runtime.available_slots(), 2);
    Ok(())
}

#[test]
fn a_component_at_its_instance_quota_waits_in_its_own_queue_and_starves_no_other() -> TestResult {
    let runtime = Runtime::builder().queue(1_000, Duration::from_millis(200)).build()?;
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(10));
    let two = ComponentManifest::from_resources("tenant".parse()?, resources.clone().with_instances(2));
    let tenant = runtime.load_bytes(ECHO.as_bytes(), &two)?;
    let other = runtime.load_bytes(ECHO.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let tokio = tokio()?;
    tokio.block_on(async {
        let first = tenant.instantiate_async(()).await?;
        let second = tenant.instantiate(())?;
        assert_eq!(tenant.available_instances(), 0);
        // The third of each kind is refused, naming the quota, after its wait.
        let error = tenant.instantiate_async(()).await.err().ok_or("a third live instance")?;
        assert!(matches!(&error, RuntimeError::QuotaReached { instances: 2, waited, .. } if *waited >= Duration::from_millis(200)), "{error}");
        assert_eq!(error.kind(), "busy");
        assert!(error.to_string().contains("resources.instances"), "{error}");
        assert_eq!(tenant.call("echo", &[Val::U32(1)]).err().map(|e| e.kind()), Some("busy"));
        // The runtime has room: another component is admitted at once.
        assert_eq!(other.call_async("echo", &[Val::U32(5)]).await?.results, [Val::U32(5)]);
        // A queued call of the tenant gets the slot a dropped instance frees.
        let queued = tenant.call_async("echo", &[Val::U32(7)]);
        let release = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(first);
        };
        let (outcome, ()) = tokio::join!(queued, release);
        let outcome = outcome?;
        assert_eq!(outcome.results, [Val::U32(7)]);
        assert!(outcome.report.queue_wait >= Duration::from_millis(10), "{:?}", outcome.report.queue_wait);
        drop(second);
        assert_eq!(tenant.available_instances(), 2);
        Ok(())
    })
}

/// Two components share a runtime: one floods it, the other calls now and
/// then; the second's calls are admitted as if alone, because the first
/// queues behind its own quota.
#[test]
fn a_flooding_component_does_not_delay_another_beyond_its_quota() -> TestResult {
    // Eight slots in all; the flood's quota is four, so four are always free.
    let policy = HostPolicy::builder().max_concurrent_instances(8).build()?;
    let runtime = Arc::new(Runtime::builder().policy(policy).queue(100_000, Duration::from_secs(30)).build()?);
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(10));
    let flood = runtime.load_bytes(
        ECHO.as_bytes(),
        &ComponentManifest::from_resources("flood".parse()?, resources.clone().with_instances(4)),
    )?;
    let quiet = runtime.load_bytes(ECHO.as_bytes(), &ComponentManifest::from_resources("quiet".parse()?, resources))?;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        let mut flooding = tokio::task::JoinSet::new();
        for n in 0..2_000u32 {
            let flood = flood.clone();
            flooding.spawn(async move { flood.call_async("echo", &[Val::U32(n)]).await.map(|_| ()) });
        }
        tokio::task::yield_now().await;
        // While thousands of the flood's calls wait, the quiet one is never queued.
        let mut waits = Vec::new();
        for n in 0..20 {
            let outcome = quiet.call_async("echo", &[Val::U32(n)]).await?;
            waits.push(outcome.report.queue_wait);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(waits.iter().all(Duration::is_zero), "the quiet component queued: {waits:?}");
        while let Some(joined) = flooding.join_next().await {
            joined??;
        }
        Ok(())
    })
}

#[test]
fn cancelling_a_live_instance_stops_its_call_reports_the_fuel_burned_and_poisons_it() -> TestResult {
    tokio()?.block_on(async {
        let metrics = Arc::new(CallMetrics::new());
        let runtime = counter_runtime(HostPolicy::default(), Some(metrics.clone()))?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut instance = component.instantiate_async(Counter::default()).await?;
        let token = instance.cancellation_token();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            token.cancel();
        });
        let error = instance.call_async("spin", &[]).await.err().ok_or("cancelled")?;
        let RuntimeError::Cancelled { report } = &error else { return Err(format!("{error:?}").into()) };
        assert!(report.fuel_consumed >= 1_000_000, "a 30 ms spin burned only {} fuel", report.fuel_consumed);
        // The token stays cancelled: the next call is refused at once.
        let after = instance.call_async("echo", &[Val::U32(1)]).await.err().ok_or("refused")?;
        assert!(matches!(after, RuntimeError::Cancelled { .. }), "{after:?}");
        assert!(instance.is_poisoned());
        let counts = metrics.snapshot();
        assert_eq!(counts.get("cancelled").map(|kind| kind.count), Some(2));
        assert_eq!(counts.get("instantiate").map(|kind| kind.count), None, "kinds are outcomes, not exports");
        assert_eq!(counts.get("ok").map(|kind| kind.count), None, "an instantiation is not a call");
        assert_eq!(metrics.instantiations().get("ok").map(|kind| kind.count), Some(1));
        // Keyed by component and export too.
        let spin = metrics.of_export("embedder", "spin");
        assert_eq!(spin.get("cancelled").map(|kind| (kind.count, kind.fuel >= 1_000_000)), Some((1, true)));
        assert_eq!(metrics.of_export("embedder", "echo").get("cancelled").map(|kind| kind.count), Some(1));
        assert_eq!(metrics.of_export("embedder", "instantiate").get("ok").map(|kind| kind.count), Some(1));
        assert_eq!(metrics.exports().len(), 3, "{:?}", metrics.exports());
        Ok(())
    })
}

/// A supervisor gives one call less time than the manifest allows; the
/// manifest's timeout still caps a longer one.
#[test]
fn a_live_instance_can_be_given_a_shorter_call_timeout_but_never_a_longer_one() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        instance.set_call_timeout(Some(Duration::from_secs(60)));
        assert_eq!(instance.call_timeout(), Duration::from_secs(10), "the manifest caps it");
        instance.set_call_timeout(Some(Duration::from_millis(50)));
        assert_eq!(instance.call_async("double", &[Val::U32(4)]).await?.results, [Val::U32(8)]);
        let started = std::time::Instant::now();
        let error = instance.call_async("spin", &[]).await.err().ok_or("the spin stops")?;
        let took = started.elapsed();
        assert!(matches!(error.crash().map(|crash| crash.kind), Some(CrashKind::DeadlineExceeded { .. })), "{error}");
        assert!(took < Duration::from_secs(2), "the 50 ms timeout took {took:?}");
        assert!(instance.is_poisoned());
        // The synchronous entry point honours it too.
        let mut sync = component.instantiate(())?;
        sync.set_call_timeout(Some(Duration::from_millis(50)));
        let started = std::time::Instant::now();
        let error = sync.call("spin", &[]).err().ok_or("the sync spin stops")?;
        assert!(matches!(error.crash().map(|crash| crash.kind), Some(CrashKind::DeadlineExceeded { .. })), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        Ok(())
    })
}

/// A typed call of a fresh instance: no `Val` on either side, the
/// signature checked before the guest runs.
#[test]
fn a_fresh_instance_can_be_called_through_a_typed_export() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let doubled = component.call_typed_async::<(u32,), (u32,)>("double", (21,)).await?;
        assert_eq!(doubled.results, (42,));
        assert!(doubled.report.instantiate > Duration::ZERO, "the report covers the instantiation");
        let wrong = component.call_typed_async::<(String,), (u32,)>("double", ("21".into(),)).await;
        let error = wrong.err().ok_or("a string for a u32 was accepted")?;
        assert_eq!(error.kind(), "invalid-arguments", "{error}");
        assert_eq!(error.report().map(|report| report.fuel_consumed), None, "no guest code ran");
        Ok(())
    })
}

/// An actor host gives one message less fuel than the manifest allows;
/// the manifest's fuel still caps a larger grant.
#[test]
fn a_live_instance_can_be_given_less_fuel_per_call_but_never_more() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        instance.set_call_fuel(Some(u64::MAX));
        assert_eq!(instance.call_fuel(), 10_000_000_000, "the manifest caps it");
        instance.set_call_fuel(Some(100_000));
        let doubled = instance.call_async("double", &[Val::U32(4)]).await?;
        assert_eq!((doubled.results.as_slice(), doubled.report.fuel_limit), ([Val::U32(8)].as_slice(), 100_000));
        let error = instance.call_async("spin", &[]).await.err().ok_or("the spin stops")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!((crash.kind, crash.report.fuel_consumed), (CrashKind::OutOfFuel, 100_000), "{error}");
        // The synchronous entry point honours it too; `None` is the manifest's again.
        let mut sync = component.instantiate(())?;
        sync.set_call_fuel(Some(5_000));
        let error = sync.call("spin", &[]).err().ok_or("the sync spin stops")?;
        assert_eq!(
            error.crash().map(|crash| (crash.kind, crash.report.fuel_consumed)),
            Some((CrashKind::OutOfFuel, 5_000))
        );
        let mut fresh = component.instantiate(())?;
        fresh.set_call_fuel(Some(5_000));
        fresh.set_call_fuel(None);
        assert_eq!(fresh.call("double", &[Val::U32(2)])?.report.fuel_limit, 10_000_000_000);
        Ok(())
    })
}

#[test]
fn a_call_stopped_at_its_deadline_reports_the_fuel_it_burned() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_millis(50))?;
        let error = component.call_async("spin", &[]).await.err().ok_or("deadline")?;
        let crash = error.crash().ok_or("a crash")?;
        assert!(matches!(crash.kind, CrashKind::DeadlineExceeded { .. }), "{error}");
        assert!(
            crash.report.fuel_consumed >= 1_000_000,
            "a 50 ms spin burned only {} fuel",
            crash.report.fuel_consumed
        );
        Ok(())
    })
}

#[test]
fn the_report_says_how_long_a_call_queued() -> TestResult {
    let nap = |registry: AsyncHostRegistry| {
        registry.func_async(runtime::host::TIME_INTERFACE, "sleep", |_store, (ms,): (u32,)| -> HostFuture<'_, ()> {
            Box::new(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                Ok(())
            })
        })
    };
    let policy = HostPolicy::builder().max_concurrent_instances(1).build()?;
    let runtime = Runtime::builder().policy(policy).host_functions(nap(AsyncHostRegistry::new())).build()?;
    let component = runtime.load_bytes(napping_guest().as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let (first, second) =
            tokio::join!(component.call_async("nap", &[Val::U32(50)]), component.call_async("nap", &[Val::U32(1)]));
        let waits = [first?.report.queue_wait, second?.report.queue_wait];
        assert!(waits.iter().any(|wait| *wait >= Duration::from_millis(30)), "{waits:?}");
        assert!(waits.contains(&Duration::ZERO), "{waits:?}");
        Ok(())
    })
}

/// `check(n) -> n` through a hand-written import that fails past a limit
/// kept in the host state.
const CHECKING_GUEST: &str = r#"(component
  (import "test:embedder/fallible" (instance $f (export "check" (func (param "n" u32) (result u32)))))
  (core func $check (canon lower (func $f "check")))
  (core module $m
    (import "host" "check" (func $check (param i32) (result i32)))
    (func (export "check") (param i32) (result i32) (call $check (local.get 0))))
  (core instance $i (instantiate $m (with "host" (instance (export "check" (func $check))))))
  (func (export "check") (param "n" u32) (result u32) (canon lift (core func $i "check"))))"#;

#[test]
fn a_hand_written_import_is_counted_and_its_error_is_a_host_error() -> TestResult {
    let runtime = RuntimeBuilder::<Counter>::new()
        .link(|linker| {
            linker.instance("test:embedder/fallible")?.func_wrap(
                "check",
                |mut store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (n,): (u32,)| {
                    let limit = StoreState::import_host(store.data_mut()).value;
                    if n > limit { Err(wasmtime::Error::msg(format!("{n} is past {limit}"))) } else { Ok((n,)) }
                },
            )
        })
        .build()?;
    let component = runtime.load_bytes(CHECKING_GUEST.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(Counter { value: 10, panic: false }).await?;
        let fine = instance.call_async("check", &[Val::U32(7)]).await?;
        assert_eq!((fine.results, fine.report.host_calls), (vec![Val::U32(7)], 1));
        let error = instance.call_async("check", &[Val::U32(11)]).await.err().ok_or("past the limit")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::HostError), "{error}");
        assert!(error.to_string().contains("11 is past 10"), "{error}");
        assert_eq!(error.report().map(|report| report.host_calls), Some(1));
        Ok(())
    })
}

/// An actor's storage, kept by the host for it, is charged against the
/// instance's host-memory budget: past it, the call is the guest's
/// `host-memory-limit-exceeded`, and what was charged stays charged.
#[test]
fn an_imports_keeping_is_charged_to_the_instances_host_memory_budget() -> TestResult {
    let runtime = RuntimeBuilder::<Counter>::new()
        .link(|linker| {
            linker.instance("test:embedder/fallible")?.func_wrap(
                "check",
                |mut store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (n,): (u32,)| {
                    // Keeps `n` bytes for the actor.
                    store.data_mut().charge_host_memory(u64::from(n))?;
                    Ok((n,))
                },
            )
        })
        .build()?;
    // 1 MiB of memory: a host-memory budget of 4 MiB at the default factor.
    let component = runtime.load_bytes(CHECKING_GUEST.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(Counter::default()).await?;
        for _ in 0..4 {
            instance.call_async("check", &[Val::U32(1_000_000)]).await?;
        }
        let error = instance.call_async("check", &[Val::U32(1_000_000)]).await.err().ok_or("past the budget")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::HostMemoryLimitExceeded), "{error}");
        assert!(error.to_string().contains("4194304-byte host-memory budget"), "{error}");
        // A restart keeps the host state, and so what it holds stays charged.
        let mut restarted = instance.restart().await.map_err(|failed| failed.error)?;
        let again =
            restarted.call_async("check", &[Val::U32(1_000_000)]).await.err().ok_or("a restart reset the charge")?;
        assert_eq!(again.crash().map(|crash| crash.kind), Some(CrashKind::HostMemoryLimitExceeded), "{again}");
        Ok(())
    })
}

/// `check(n)` through an unmarked import; `say(ptr, len)` passes the host a
/// string wherever the caller points.
const UNMARKED_GUEST: &str = r#"(component
  (import "test:embedder/fallible" (instance $f
    (export "check" (func (param "n" u32) (result u32)))
    (export "say" (func (param "s" string)))))
  (core module $mem (memory (export "memory") 1))
  (core instance $mem (instantiate $mem))
  (core func $check (canon lower (func $f "check")))
  (core func $say (canon lower (func $f "say") (memory (core memory $mem "memory"))))
  (core module $m
    (import "host" "check" (func $check (param i32) (result i32)))
    (import "host" "say" (func $say (param i32 i32)))
    (func (export "check") (param i32) (result i32) (call $check (local.get 0)))
    (func (export "say") (param i32 i32) (call $say (local.get 0) (local.get 1))))
  (core instance $i (instantiate $m (with "host" (instance (export "check" (func $check)) (export "say" (func $say))))))
  (func (export "check") (param "n" u32) (result u32) (canon lift (core func $i "check")))
  (func (export "say") (param "ptr" u32) (param "len" u32) (canon lift (core func $i "say"))))"#;

/// An import's own typed error, whatever its text says.
#[derive(Debug)]
struct OwnError(String);

impl std::fmt::Display for OwnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OwnError {}

/// An import linked by hand that never calls `import_host`: its error (of
/// its own type) is still the host's, counted and timed; a bad string the
/// guest passes to it is still the guest's.
#[test]
fn an_unmarked_linked_import_that_fails_is_a_counted_host_error_and_a_bad_argument_stays_the_guests() -> TestResult {
    let runtime = RuntimeBuilder::<Counter>::new()
        .link(|linker| {
            let mut fallible = linker.instance("test:embedder/fallible")?;
            fallible.func_wrap(
                "check",
                |_store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (n,): (u32,)| {
                    if n > 10 { Err(wasmtime::Error::new(OwnError(format!("{n} is past ten")))) } else { Ok((n,)) }
                },
            )?;
            fallible
                .func_wrap("say", |_store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (_s,): (String,)| Ok(()))
        })
        .build()?;
    let component = runtime.load_bytes(UNMARKED_GUEST.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(Counter::default()).await?;
        assert_eq!(instance.call_async("check", &[Val::U32(7)]).await?.results, [Val::U32(7)]);
        let error = instance.call_async("check", &[Val::U32(11)]).await.err().ok_or("past the limit")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::HostError), "{error}");
        assert!(error.to_string().contains("11 is past ten"), "{error}");
        assert!(error.to_string().contains("an import the embedder linked"), "{error}");
        // The embedder gets its own error back, whole, to downcast.
        let crash = error.crash().ok_or("a crash")?;
        let own = crash.source.as_deref().and_then(|source| source.downcast_ref::<OwnError>());
        assert_eq!(own.map(|own| own.0.as_str()), Some("11 is past ten"));
        assert!(crash.function.is_some(), "the failed function is named");
        assert_eq!(error.report().map(|report| report.host_calls), Some(1));
        assert!(matches!(
            instance.call_async("check", &[Val::U32(1)]).await,
            Err(RuntimeError::Poisoned { by: PoisonCause::Crash(CrashKind::HostError) })
        ));

        let mut instance = component.instantiate_async(Counter::default()).await?;
        instance.call_async("say", &[Val::U32(0), Val::U32(5)]).await?;
        let error =
            instance.call_async("say", &[Val::U32(65_000), Val::U32(5_000)]).await.err().ok_or("out of bounds")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::ComponentModelViolation), "{error}");
        Ok(())
    })
}

/// `check(n)` and `say(ptr, len)` as in [`UNMARKED_GUEST`], and `bad` (3
/// bytes of invalid UTF-8 at 16) in its memory.
fn unmarked_guest_with_bad_utf8() -> String {
    UNMARKED_GUEST.replace(
        r#"(core module $mem (memory (export "memory") 1))"#,
        r#"(core module $mem (memory (export "memory") 1) (data (i32.const 16) "\ff\fe\fd"))"#,
    )
}

/// Blame by type and by where the error was raised, never by its text: an
/// import's own error that says "invalid utf-8" is the host's, whether it
/// reached its state (which marks its work) or returned a typed error; a
/// string of invalid UTF-8 the guest passes is the guest's.
#[test]
fn an_imports_error_that_reads_like_a_guests_fault_is_the_hosts_and_a_real_bad_string_is_the_guests() -> TestResult {
    let runtime = RuntimeBuilder::<Counter>::new()
        .link(|linker| {
            let mut fallible = linker.instance("test:embedder/fallible")?;
            fallible.func_wrap(
                "check",
                |mut store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (n,): (u32,)| match n {
                    // Reaches its state (no `import_host`), then fails with a bare message.
                    1 => {
                        let value = store.data_mut().host_mut().value;
                        Err(wasmtime::Error::msg(format!("invalid utf-8 in the host's table {value}")))
                    }
                    // Never touches its state; a typed error.
                    2 => Err(wasmtime::Error::new(OwnError("invalid utf-8 sequence of 1 bytes from index 0".into()))),
                    n => Ok((n,)),
                },
            )?;
            fallible
                .func_wrap("say", |_store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (_s,): (String,)| Ok(()))
        })
        .build()?;
    let component =
        runtime.load_bytes(unmarked_guest_with_bad_utf8().as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        for n in [1, 2] {
            let mut instance = component.instantiate_async(Counter::default()).await?;
            assert_eq!(instance.call_async("check", &[Val::U32(7)]).await?.results, [Val::U32(7)]);
            let error = instance.call_async("check", &[Val::U32(n)]).await.err().ok_or("the import fails")?;
            assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::HostError), "{error}");
            assert!(error.to_string().contains("invalid utf-8"), "{error}");
            assert!(error.to_string().contains("an import the embedder linked"), "{error}");
            assert_eq!(error.report().map(|report| report.host_calls), Some(1), "{error}");
        }
        let mut instance = component.instantiate_async(Counter::default()).await?;
        instance.call_async("say", &[Val::U32(0), Val::U32(5)]).await?;
        let error = instance.call_async("say", &[Val::U32(16), Val::U32(3)]).await.err().ok_or("bad utf-8")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::ComponentModelViolation), "{error}");
        Ok(())
    })
}

/// `check(n) -> n` through an import, and `spin`.
const CHECKING_SPINNER: &str = r#"(component
  (import "test:embedder/fallible" (instance $f (export "check" (func (param "n" u32) (result u32)))))
  (core func $check (canon lower (func $f "check")))
  (core module $m
    (import "host" "check" (func $check (param i32) (result i32)))
    (func (export "check") (param i32) (result i32) (call $check (local.get 0)))
    (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m (with "host" (instance (export "check" (func $check))))))
  (func (export "check") (param "n" u32) (result u32) (canon lift (core func $i "check")))
  (func (export "spin") (canon lift (core func $i "spin"))))"#;

/// An async import linked by hand that never calls `import_host` and
/// sleeps past the deadline: the call waited in a host call, not in the
/// guest; a guest spinning in its own code (yielding through the same call
/// hook at every tick) is still `during guest`.
#[test]
fn an_unmarked_async_import_past_the_deadline_is_a_deadline_during_a_host_call() -> TestResult {
    let runtime = RuntimeBuilder::<Counter>::new()
        .link(|linker| {
            linker.instance("test:embedder/fallible")?.func_wrap_async(
                "check",
                |_store: wasmtime::StoreContextMut<'_, StoreState<Counter>>, (n,): (u32,)| {
                    Box::new(async move {
                        tokio::time::sleep(Duration::from_millis(u64::from(n))).await;
                        Ok((n,))
                    })
                },
            )
        })
        .build()?;
    let component = runtime.load_bytes(CHECKING_SPINNER.as_bytes(), &manifest(Timeout::from_millis(200))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(Counter::default()).await?;
        assert_eq!(instance.call_async("check", &[Val::U32(1)]).await?.results, [Val::U32(1)]);
        let started = std::time::Instant::now();
        let error = instance.call_async("check", &[Val::U32(5_000)]).await.err().ok_or("past the deadline")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: runtime::DeadlinePhase::HostCall }, "{error}");
        assert!(crash.kind.help().contains("host function"), "{}", crash.kind.help());
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

        let mut instance = component.instantiate_async(Counter::default()).await?;
        let error = instance.call_async("spin", &[]).await.err().ok_or("the spin stops")?;
        let kind = error.crash().map(|crash| crash.kind);
        assert_eq!(kind, Some(CrashKind::DeadlineExceeded { during: runtime::DeadlinePhase::Guest }), "{error}");
        Ok(())
    })
}

mod mismatched {
    wasmtime::component::bindgen!({
        inline: "
            package test:mismatched;
            world calc {
                export triple: func(n: u32) -> u32;
            }
        ",
        exports: { default: async },
    });
}

/// The embedder's mistakes inside `run`: a world the component does not
/// export, a synchronous wrapper on an async store. Usage errors; the
/// instance still answers.
#[test]
fn an_embedders_mistake_inside_run_is_a_usage_error_that_poisons_nothing() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        let wrong_world = instance
            .run_async(|mut store, instance| {
                Box::pin(async move { mismatched::Calc::new(&mut store, &instance)?.call_triple(&mut store, 1).await })
            })
            .await
            .err()
            .ok_or("a world the component does not export")?;
        assert_eq!(wrong_world.kind(), "usage", "{wrong_world}");
        assert!(!instance.is_poisoned());
        let sync_on_async = instance
            .run_async(|mut store, instance| {
                Box::pin(async move {
                    let double = instance.get_typed_func::<(u32,), (u32,)>(&mut store, "double")?;
                    double.call(&mut store, (2,)).map(|(n,)| n)
                })
            })
            .await
            .err()
            .ok_or("a synchronous call on an async store")?;
        assert_eq!(sync_on_async.kind(), "usage", "{sync_on_async}");
        assert!(!instance.is_poisoned());
        let doubled = instance
            .run_async(|mut store, instance| {
                Box::pin(async move { exported::Calc::new(&mut store, &instance)?.call_double(&mut store, 21).await })
            })
            .await?;
        assert_eq!(doubled.results, 42);
        Ok(())
    })
}

#[test]
fn an_instance_made_synchronously_can_also_be_called_on_tokio_and_the_reverse_is_refused() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(ECHO.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let tokio = tokio()?;
    let mut sync = component.instantiate(())?;
    assert_eq!(sync.call("echo", &[Val::U32(1)])?.results, [Val::U32(1)]);
    assert_eq!(tokio.block_on(sync.call_async("echo", &[Val::U32(2)]))?.results, [Val::U32(2)]);
    let mut on_tokio = tokio.block_on(component.instantiate_async(()))?;
    let refused = on_tokio.call("echo", &[Val::U32(3)]).err().ok_or("an async store refuses a sync call")?;
    assert_eq!(refused.kind(), "async-required");
    assert!(!on_tokio.is_poisoned());
    assert_eq!(tokio.block_on(on_tokio.call_async("echo", &[Val::U32(4)]))?.results, [Val::U32(4)]);
    Ok(())
}

#[test]
fn a_cancelled_token_refuses_every_later_call_however_short() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut instance = component.instantiate_async(Counter::default()).await?;
        instance.cancellation_token().cancel();
        for n in 0..100 {
            let error = instance.call_async("echo", &[Val::U32(n)]).await.err().ok_or("a call after cancel()")?;
            assert_eq!(error.kind(), "cancelled", "call {n}: {error}");
        }
        assert!(!instance.is_poisoned(), "no call was stopped mid-way");
        Ok(())
    })
}

/// Two kinds of actor, each with its own state type and imports, on one
/// engine: one pool of instance slots and one compile cache between them.
#[test]
fn runtimes_of_different_kinds_share_one_engine_its_slots_and_its_cache() -> TestResult {
    let policy = HostPolicy::builder().max_concurrent_instances(2).build()?;
    let counters = counter_runtime(policy, None)?;
    let plain = RuntimeBuilder::<()>::new().sharing(&counters).build()?;
    let counter = counters.load_bytes(GUEST.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let echo = plain.load_bytes(ECHO.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let compiled = plain.loader().load_bytes(GUEST.as_bytes())?;
    assert_eq!(
        compiled.source,
        runtime::loader::CacheSource::Memory,
        "the other kind's compile is in the shared cache"
    );
    tokio()?.block_on(async {
        let _first = counter.instantiate_async(Counter::default()).await?;
        let mut second = echo.instantiate(())?;
        assert_eq!(second.call("echo", &[Val::U32(3)])?.results, [Val::U32(3)]);
        // Both slots of the one pool are taken, whichever kind asks.
        let refused = echo.instantiate(()).err().ok_or("a third instance in a pool of two")?;
        assert_eq!(refused.kind(), "busy", "{refused}");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // The shared parts are the other runtime's to set.
    let refused = RuntimeBuilder::<()>::new().sharing(&counters).policy(HostPolicy::default()).build();
    let message = refused.err().map(|error| (error.kind(), error.to_string()));
    assert!(message.as_ref().is_some_and(|(kind, text)| *kind == "usage" && text.contains("`policy`")), "{message:?}");
    Ok(())
}

/// Records which instance each observed call was on.
#[derive(Default)]
struct InstanceLog(std::sync::Mutex<Vec<(String, Option<u64>)>>);

impl runtime::CallObserver for InstanceLog {
    fn call_finished(&self, event: &runtime::observe::CallEvent<'_>) {
        if let Ok(mut log) = self.0.lock() {
            log.push((event.export.to_owned(), event.instance));
        }
    }
}

/// Metrics per actor: each call on a live instance names it.
#[test]
fn an_observer_sees_which_live_instance_each_call_was_on() -> TestResult {
    let log = Arc::new(InstanceLog::default());
    let runtime = Runtime::builder().observer(log.clone()).build()?;
    let component = runtime.load_bytes(ECHO.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let (mut one, mut two) = (component.instantiate(())?, component.instantiate(())?);
    assert_ne!(one.id(), two.id());
    one.call("echo", &[Val::U32(1)])?;
    two.call("echo", &[Val::U32(2)])?;
    component.call("echo", &[Val::U32(3)])?;
    let calls: Vec<_> =
        log.0.lock().map_err(|_| "poisoned log")?.iter().filter(|(export, _)| export == "echo").cloned().collect();
    let expected =
        [("echo".to_owned(), Some(one.id())), ("echo".to_owned(), Some(two.id())), ("echo".to_owned(), None)];
    assert_eq!(calls, expected);
    Ok(())
}

/// Reloading a component (a new version, the same name) keeps its quota:
/// live instances of the old load count against the new one.
#[test]
fn a_reloaded_component_keeps_its_quota() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(10));
    let two = ComponentManifest::from_resources("versioned".parse()?, resources.clone().with_instances(2));
    let first = runtime.load_bytes(ECHO.as_bytes(), &two)?;
    let _live = (first.instantiate(())?, first.instantiate(())?);
    let reloaded = runtime.load_bytes(CALC.as_bytes(), &two)?;
    assert_eq!(reloaded.available_instances(), 0, "the old load's two instances count");
    let refused = reloaded.instantiate(()).err().ok_or("a third instance past a quota of two")?;
    assert_eq!(refused.kind(), "busy", "{refused}");
    // Another name has a quota of its own.
    let other = runtime.load_bytes(
        ECHO.as_bytes(),
        &ComponentManifest::from_resources("other".parse()?, resources.clone().with_instances(2)),
    )?;
    assert_eq!(other.available_instances(), 2);
    // A changed quota is the same one, resized: the two live ones still count.
    let three = ComponentManifest::from_resources("versioned".parse()?, resources.clone().with_instances(3));
    assert_eq!(runtime.load_bytes(ECHO.as_bytes(), &three)?.available_instances(), 1);
    let one = ComponentManifest::from_resources("versioned".parse()?, resources.with_instances(1));
    let shrunk = runtime.load_bytes(ECHO.as_bytes(), &one)?;
    assert_eq!(shrunk.available_instances(), 0, "two in use under a quota of one");
    drop(_live);
    assert_eq!(shrunk.available_instances(), 1, "as they end, the quota of one holds");
    Ok(())
}

/// A supervisor restarts a poisoned actor in place: its slot (a quota of
/// one, which another instantiation cannot take meanwhile) and its host
/// state stay; a refused restart gives the host state back.
#[test]
fn a_restart_in_place_keeps_the_slot_and_the_host_state_and_a_refused_one_returns_it() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_secs(10));
        let one = ComponentManifest::from_resources("actor".parse()?, resources.with_instances(1));
        let component = runtime.load_bytes(GUEST.as_bytes(), &one)?;
        let mut actor = component.instantiate_async(Counter::default()).await?;
        assert_eq!(actor.call_async("bump", &[Val::U32(5)]).await?.results, [Val::U32(5)]);
        actor.set_call_fuel(Some(10_000));
        let error = actor.call_async("spin", &[]).await.err().ok_or("out of fuel")?;
        assert_eq!(error.crash().map(|crash| crash.kind), Some(CrashKind::OutOfFuel));
        assert!(actor.is_poisoned());
        let mut restarted = actor.restart().await.map_err(|failed| failed.error)?;
        assert!(!restarted.is_poisoned());
        assert_eq!(restarted.call_fuel(), 10_000, "its per-call settings stay");
        assert_eq!(restarted.host().value, 5, "the host state stays");
        assert_eq!(restarted.call_async("bump", &[Val::U32(1)]).await?.results, [Val::U32(6)]);
        assert_eq!(component.available_instances(), 0, "it kept the one slot");
        // Stopped for good, it cannot restart: the state comes back.
        restarted.cancellation_token().cancel();
        let failed = restarted.restart().await.err().ok_or("a cancelled actor restarted")?;
        assert_eq!((failed.error.kind(), failed.host.value), ("cancelled", 6));
        assert_eq!(component.available_instances(), 1, "the slot is free again");
        Ok(())
    })
}

/// An actor host interrupts one message and keeps the actor: an idle
/// instance is left as it is, a call in progress ends `cancelled` and
/// poisons its instance, named as such.
#[test]
fn a_call_canceller_stops_only_the_call_in_progress() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut instance = component.instantiate_async(Counter::default()).await?;
        let canceller = instance.call_canceller();
        assert!(!canceller.cancel_current(), "nothing was in progress");
        assert_eq!(instance.call_async("echo", &[Val::U32(1)]).await?.results, [Val::U32(1)]);
        let stopper = canceller.clone();
        let stop = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            stopper.cancel_current()
        });
        let error = instance.call_async("spin", &[]).await.err().ok_or("the spin was cancelled")?;
        assert_eq!(error.kind(), "cancelled", "{error}");
        assert!(stop.await?, "the spin was in progress");
        let after = instance.call_async("echo", &[Val::U32(2)]).await.err().ok_or("poisoned")?;
        assert!(matches!(after, RuntimeError::Poisoned { by: PoisonCause::Cancelled }), "{after:?}");
        Ok(())
    })
}

#[test]
fn dropping_a_live_call_poisons_the_instance_as_dropped_mid_call() -> TestResult {
    tokio()?.block_on(async {
        let runtime = counter_runtime(HostPolicy::default(), None)?;
        let component = load(&runtime, Timeout::from_secs(10))?;
        let mut instance = component.instantiate_async(Counter::default()).await?;
        let dropped = tokio::time::timeout(Duration::from_millis(20), instance.call_async("spin", &[])).await;
        assert!(dropped.is_err(), "the spin ended by itself");
        assert!(instance.is_poisoned(), "the guest stopped at an unknown point");
        let after = instance.call_async("echo", &[Val::U32(1)]).await.err().ok_or("a call after the drop")?;
        assert!(matches!(after, RuntimeError::Poisoned { by: PoisonCause::DroppedMidCall }), "{after:?}");
        // Nothing was dropped here: the instance answers.
        let mut fresh = component.instantiate_async(Counter::default()).await?;
        assert_eq!(fresh.call_async("echo", &[Val::U32(2)]).await?.results, [Val::U32(2)]);
        assert!(!fresh.is_poisoned());
        Ok(())
    })
}

#[test]
fn an_instance_made_synchronously_yields_to_tokio_on_the_async_entry_points() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_secs(5))?)?;
    let tokio = tokio()?;
    let mut spinning = component.instantiate(())?;
    let token = spinning.cancellation_token();
    tokio.block_on(async {
        let started = std::time::Instant::now();
        // On this one thread: the sleeper wakes only if the spin yields.
        let sleeper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let woke = started.elapsed();
            token.cancel();
            woke
        });
        let error = spinning.call_async("spin", &[]).await.err().ok_or("the spin ended")?;
        assert_eq!(error.kind(), "cancelled", "{error}");
        let woke = sleeper.await?;
        assert!(woke < Duration::from_secs(2), "the sleeper woke after {woke:?}: the spin never yielded");
        assert!(started.elapsed() < Duration::from_secs(2), "the call ran on for {:?}", started.elapsed());
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // From its first async call on, it is an async instance: a synchronous
    // call is a usage error that poisons nothing.
    let mut both = component.instantiate(())?;
    assert_eq!(both.call("double", &[Val::U32(1)])?.results, [Val::U32(2)]);
    assert_eq!(tokio.block_on(both.call_async("double", &[Val::U32(2)]))?.results, [Val::U32(4)]);
    assert_eq!(both.call("double", &[Val::U32(3)]).err().map(|e| e.kind()), Some("async-required"));
    assert_eq!(tokio.block_on(both.call_async("double", &[Val::U32(5)]))?.results, [Val::U32(10)]);
    Ok(())
}

mod exported {
    wasmtime::component::bindgen!({
        inline: "
            package test:exported;
            world calc {
                export double: func(n: u32) -> u32;
                export spin: func();
            }
        ",
        exports: { default: async },
    });
}

/// `double(n) -> 2n` and `spin`, for the `calc` world above.
const CALC: &str = r#"(component
  (core module $m
    (func (export "double") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
    (func (export "spin") (loop $l (br $l))))
  (core instance $i (instantiate $m))
  (func (export "double") (param "n" u32) (result u32) (canon lift (core func $i "double")))
  (func (export "spin") (canon lift (core func $i "spin"))))"#;

#[test]
fn bindgen_export_wrappers_run_under_the_same_limits_and_report() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(CALC.as_bytes(), &manifest(Timeout::from_millis(50))?)?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        let doubled = instance
            .run_async(|mut store, instance| {
                Box::pin(async move {
                    let calc = exported::Calc::new(&mut store, &instance)?;
                    calc.call_double(&mut store, 21).await
                })
            })
            .await?;
        assert_eq!(doubled.results, 42);
        assert!(doubled.report.fuel_consumed > 0);
        let error = instance
            .run_async(|mut store, instance| {
                Box::pin(async move { exported::Calc::new(&mut store, &instance)?.call_spin(&mut store).await })
            })
            .await
            .err()
            .ok_or("the spin stops at its deadline")?;
        let crash = error.crash().ok_or("a crash")?;
        assert!(matches!(crash.kind, CrashKind::DeadlineExceeded { .. }), "{error}");
        assert!(crash.report.fuel_consumed >= 1_000_000, "{} fuel", crash.report.fuel_consumed);
        assert!(instance.is_poisoned());
        Ok(())
    })
}

/// Compiles only while the builder, the runtime and a loaded component can
/// move to another thread (a builder made in `main` and built in a task).
#[test]
fn the_builder_the_runtime_and_a_component_are_send() {
    fn send<S: Send>() {}
    send::<RuntimeBuilder<Counter>>();
    send::<Runtime<Counter>>();
    send::<LoadedComponent<Counter>>();
    send::<runtime::Instance<Counter>>();
}

/// A start function that counts down from 10,000 in two pages of memory.
const STARTS_WORKING: &str = r#"(component
  (core module $m
    (memory 2)
    (func $start (local $n i32)
      (local.set $n (i32.const 10000))
      (loop $l (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n))))
    (start $start)
    (func (export "echo") (param i32) (result i32) (local.get 0)))
  (core instance $i (instantiate $m))
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo"))))"#;

#[test]
fn a_live_instantiation_reports_what_its_start_functions_used() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let component = runtime.load_bytes(STARTS_WORKING.as_bytes(), &manifest(Timeout::from_secs(10))?)?;
    let tokio = tokio()?;
    for instance in [component.instantiate(())?, tokio.block_on(component.instantiate_async(()))?] {
        let report = instance.instantiation_report();
        assert!(report.fuel_consumed >= 10_000, "{report:?}");
        assert!(report.peak_memory_bytes >= 2 * 65_536, "{report:?}");
        assert!(report.instantiate > Duration::ZERO && report.wall >= report.instantiate, "{report:?}");
    }
    Ok(())
}
