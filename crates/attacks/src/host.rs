//! Attacks on the host boundary and on the async executor: host calls past
//! the deadline, panicking, failing and never-ending host functions,
//! cancellation storms and concurrency floods.

use std::sync::Arc;
use std::time::Duration;

use runtime::{
    AsyncHostRegistry, CancellationToken, HostPolicy, LoadedComponent, Runtime, RuntimeError, Val, host::HostFuture,
    host::TIME_INTERFACE,
};

use super::{Case, Figures, Outcome, Verdict};

const HOSTILE: &str = "xtask:attack/host";

fn guest() -> String {
    format!(
        r#"(component
  (import "{TIME_INTERFACE}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (import "{HOSTILE}" (instance $h (export "boom" (func)) (export "fail" (func)) (export "hang" (func))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core func $boom (canon lower (func $h "boom")))
  (core func $fail (canon lower (func $h "fail")))
  (core func $hang (canon lower (func $h "hang")))
  (core module $m
    (import "h" "sleep" (func $sleep (param i32)))
    (import "h" "boom" (func $boom)) (import "h" "fail" (func $fail)) (import "h" "hang" (func $hang))
    (func (export "nap") (param i32) (call $sleep (local.get 0)))
    (func (export "boom") (call $boom))
    (func (export "fail") (call $fail))
    (func (export "hang") (call $hang))
    (func (export "spin") (loop $l (br $l)))
    (func (export "echo") (param i32) (result i32) (local.get 0))
    (func (export "call-host-in-a-loop") (loop $l (call $sleep (i32.const 0)) (br $l))))
  (core instance $i (instantiate $m (with "h" (instance
    (export "sleep" (func $sleep)) (export "boom" (func $boom)) (export "fail" (func $fail)) (export "hang" (func $hang))))))
  (func (export "nap") (param "ms" u32) (canon lift (core func $i "nap")))
  (func (export "boom") (canon lift (core func $i "boom")))
  (func (export "fail") (canon lift (core func $i "fail")))
  (func (export "hang") (canon lift (core func $i "hang")))
  (func (export "spin") (canon lift (core func $i "spin")))
  (func (export "echo") (param "n" u32) (result u32) (canon lift (core func $i "echo")))
  (func (export "call-host-in-a-loop") (canon lift (core func $i "call-host-in-a-loop"))))"#
    )
}

fn registry() -> AsyncHostRegistry {
    AsyncHostRegistry::with_reference_functions()
        .func_async(HOSTILE, "boom", |_store, (): ()| -> HostFuture<'_, ()> {
            Box::new(async { panic!("a host function panicked on purpose") })
        })
        .func_async(HOSTILE, "fail", |_store, (): ()| -> HostFuture<'_, ()> {
            Box::new(async { Err(wasmtime::Error::msg("a host function failed on purpose")) })
        })
        .func_async(HOSTILE, "hang", |_store, (): ()| -> HostFuture<'_, ()> { Box::new(std::future::pending()) })
}

/// A runtime with the hostile host functions, its guest, and a Tokio runtime.
struct Setup {
    runtime: Arc<Runtime>,
    guest: LoadedComponent,
    tokio: tokio::runtime::Runtime,
}

fn setup(max_concurrent: u32, queue: (usize, Duration)) -> Result<Setup, String> {
    let policy = HostPolicy::builder().max_concurrent_instances(max_concurrent).build().map_err(|e| e.to_string())?;
    let runtime = Runtime::builder()
        .policy(policy)
        .host_functions(registry())
        .queue(queue.0, queue.1)
        .build()
        .map_err(|e| e.to_string())?;
    let manifest = crate::limits_manifest("1MiB", "10_000_000_000", "100ms")?;
    let guest = runtime.load_bytes(guest().as_bytes(), &manifest).map_err(|e| e.to_string())?;
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    Ok(Setup { runtime: Arc::new(runtime), guest, tokio })
}

/// One call of `export`; then a plain call must still succeed on the same runtime.
fn single_call(export: &'static str, args: Vec<Val>, expected: &'static str) -> Outcome {
    let setup = match setup(100, (1_000, Duration::from_secs(1))) {
        Ok(setup) => setup,
        Err(error) => return host_failure(error),
    };
    setup.tokio.block_on(async {
        let result = setup.guest.call_async(export, &args).await;
        let healthy = setup.guest.call_async("echo", &[Val::U32(7)]).await;
        let (observed, figures) = match &result {
            Ok(outcome) => ("ok".to_owned(), Some(Figures::from(&outcome.report))),
            Err(error) => (super::probe::observed_kind(error), error.crash().map(|c| Figures::from(&c.report))),
        };
        let verdict = match (observed == expected, healthy.is_ok(), &result) {
            (_, false, _) => Verdict::HostFailure,
            (true, true, _) => Verdict::Pass,
            (false, true, Ok(_)) => Verdict::Escaped,
            (false, true, Err(_)) => Verdict::Misclassified,
        };
        Outcome { observed, verdict, figures }
    })
}

fn host_failure(error: String) -> Outcome {
    Outcome { observed: format!("setup failed: {error}"), verdict: Verdict::HostFailure, figures: None }
}

/// `count` calls cancelled shortly after they start; then every slot must be
/// free again and a plain call must succeed.
fn cancellation_storm(count: usize) -> Outcome {
    let setup = match setup(1_000, (100_000, Duration::from_secs(5))) {
        Ok(setup) => setup,
        Err(error) => return host_failure(error),
    };
    setup.tokio.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..count {
            let guest = setup.guest.clone();
            calls.spawn(async move {
                let token = CancellationToken::new();
                let trigger = token.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_micros(100)).await;
                    trigger.cancel();
                });
                let (export, args) = if n % 2 == 0 { ("spin", vec![]) } else { ("nap", vec![Val::U32(60_000)]) };
                guest.call_async_with((), export, &args, Some(&token)).await
            });
        }
        let mut cancelled = 0;
        let mut other = 0;
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(Err(RuntimeError::Cancelled { .. })) => cancelled += 1,
                // A call may end on its own deadline before the token fires; that is fine.
                Ok(Err(error)) if error.kind() == "deadline-exceeded" => other += 1,
                _ => return host_failure("a cancelled call ended otherwise".into()),
            }
        }
        let free = setup.runtime.available_slots();
        let healthy = setup.guest.call_async("echo", &[Val::U32(1)]).await.is_ok();
        let observed = format!("{cancelled} cancelled, {other} timed out, {free} slots free");
        let verdict = if healthy && free == 1_000 { Verdict::Pass } else { Verdict::HostFailure };
        Outcome { observed, verdict, figures: None }
    })
}

/// `count` sleeping calls against `slots` slots and a short queue: every call
/// ends as `ok` or `busy`, never as a pool error, and the slots come back.
fn flood(count: usize, slots: u32) -> Outcome {
    let setup = match setup(slots, (count / 2, Duration::from_millis(50))) {
        Ok(setup) => setup,
        Err(error) => return host_failure(error),
    };
    setup.tokio.block_on(async {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..count {
            let guest = setup.guest.clone();
            calls.spawn(async move { guest.call_async("nap", &[Val::U32(20)]).await });
        }
        let (mut ok, mut busy, mut other) = (0, 0, Vec::new());
        while let Some(joined) = calls.join_next().await {
            match joined {
                Ok(Ok(_)) => ok += 1,
                Ok(Err(error)) if error.kind() == "busy" => busy += 1,
                Ok(Err(error)) => other.push(error.kind()),
                Err(join) => other.push(if join.is_panic() { "panic" } else { "join-error" }),
            }
        }
        let free = setup.runtime.available_slots();
        let observed = format!("{ok} ok, {busy} busy, {} other, {free}/{slots} free", other.len());
        let verdict =
            if other.is_empty() && free == slots as usize && ok > 0 { Verdict::Pass } else { Verdict::HostFailure };
        Outcome { observed, verdict, figures: None }
    })
}

pub(crate) fn cases(quick: bool) -> Vec<Case> {
    let storm = if quick { 1_000 } else { 10_000 };
    let flood_size = if quick { 2_000 } else { 20_000 };
    vec![
        Case::new("host", "host sleep past the deadline", "deadline-exceeded/host-call", || {
            single_call("nap", vec![Val::U32(10_000)], "deadline-exceeded/host-call")
        }),
        Case::new("host", "host function that never returns", "deadline-exceeded/host-call", || {
            single_call("hang", vec![], "deadline-exceeded/host-call")
        }),
        Case::new("host", "panicking host function", "host-panic", || single_call("boom", vec![], "host-panic")),
        Case::new("host", "host function returning an error", "host-error", || {
            single_call("fail", vec![], "host-error")
        }),
        Case::new("cpu", "host call in a loop", "deadline-exceeded/guest", || {
            single_call("call-host-in-a-loop", vec![], "deadline-exceeded/guest")
        }),
        Case::new("async", format!("cancellation storm ({storm})"), "all cancelled, slots restored", move || {
            cancellation_storm(storm)
        }),
        Case::new(
            "async",
            format!("concurrency flood ({flood_size} over 64 slots)"),
            "ok or busy, slots restored",
            move || flood(flood_size, 64),
        ),
    ]
}
