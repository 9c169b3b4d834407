//! Many calls at once, each with its own result; a spinning guest does not
//! starve a current-thread runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use runtime_core::{CrashKind, DeadlinePhase};
use wasmtime::component::Val;

use crate::{Host, LIMITS, PATIENT, TestResult, mixed_guest};

#[test]
fn a_thousand_mixed_calls_each_get_their_own_outcome() -> TestResult {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        let host = Arc::new(Host::reference()?);
        // Spinning calls end at their 100ms deadline; the others get a deadline
        // that a loaded machine cannot reach, so that only the spin ends by it.
        let spinner = host.load(&mixed_guest(), LIMITS)?;
        let patient = host.load(&mixed_guest(), PATIENT)?;
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..1_000u32 {
            let host = host.clone();
            let component = if n % 4 == 2 { spinner.clone() } else { patient.clone() };
            calls.spawn(async move {
                let (export, args) = match n % 4 {
                    0 => ("echo", vec![Val::U32(n)]),
                    1 => ("trap", vec![]),
                    2 => ("spin", vec![]),
                    _ => ("nap", vec![Val::U32(5)]),
                };
                (n, host.executor.call(&component, (), export, &args, None).await)
            });
        }
        while let Some(joined) = calls.join_next().await {
            let (n, outcome) = joined?;
            match n % 4 {
                0 => assert_eq!(outcome?.results, [Val::U32(n)], "call {n} got another call's result"),
                1 => assert_eq!(outcome.err().and_then(|e| e.crash().map(|c| c.kind)), Some(CrashKind::Unreachable)),
                2 => assert_eq!(
                    outcome.err().and_then(|e| e.crash().map(|c| c.kind)),
                    Some(CrashKind::DeadlineExceeded { during: DeadlinePhase::Guest })
                ),
                _ => assert_eq!(outcome?.report.host_calls, 1),
            }
        }
        assert_eq!(host.executor.available_slots(), host.engine.policy().max_concurrent_instances() as usize);
        Ok(())
    })
}

#[test]
fn a_spinning_guest_yields_to_other_tasks_on_a_current_thread_runtime() -> TestResult {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    tokio.block_on(async {
        let host = Host::reference()?;
        let component = host.load(&mixed_guest(), LIMITS)?;
        let ticks = Arc::new(AtomicU64::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(1));
            loop {
                interval.tick().await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        // The guest spins for its whole 100ms deadline on the only thread.
        let outcome = host.executor.call(&component, (), "spin", &[], None).await;
        ticker.abort();
        assert_eq!(outcome.err().map(|e| e.kind()), Some("deadline-exceeded"));
        let ticks = ticks.load(Ordering::Relaxed);
        assert!(ticks >= 10, "the other task ran only {ticks} times while the guest spun");
        Ok(())
    })
}
