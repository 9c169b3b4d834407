//! At most `max_concurrent_instances` live at once; others wait in a bounded
//! queue for a limited time, then get `busy`.

use std::time::Duration;

use runtime_async::{AsyncExecutor, AsyncHostRegistry};
use runtime_manifest::HostPolicy;
use wasmtime::component::Val;

use crate::{Host, TestResult, mixed_guest};

const LIMITS: &str = "memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"5s\"";

fn two_slot_host() -> Result<Host, Box<dyn std::error::Error>> {
    let policy = HostPolicy::builder().max_concurrent_instances(2).build()?;
    Ok(Host::new(policy, &AsyncHostRegistry::with_reference_functions())?)
}

#[test]
fn a_call_beyond_the_slots_waits_then_runs_or_gets_busy() -> TestResult {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let host = two_slot_host()?;
        let component = host.load(&mixed_guest(), LIMITS)?;
        let patient = AsyncExecutor::new(2).with_queue(10, Duration::from_secs(5));
        let impatient = AsyncExecutor::new(2).with_queue(10, Duration::from_millis(20));
        for (executor, expect_busy) in [(&patient, false), (&impatient, true)] {
            let first = executor.call(&component, (), "nap", &[Val::U32(200)], None);
            let second = executor.call(&component, (), "nap", &[Val::U32(200)], None);
            let third = async {
                tokio::task::yield_now().await;
                executor.call(&component, (), "echo", &[Val::U32(3)], None).await
            };
            let (first, second, third) = tokio::join!(first, second, third);
            first?;
            second?;
            match (third, expect_busy) {
                (Ok(outcome), false) => assert_eq!(outcome.results, [Val::U32(3)]),
                (Err(runtime_core::RuntimeError::Busy { waited }), true) => {
                    assert!(waited >= Duration::from_millis(20))
                }
                (other, _) => return Err(format!("unexpected: {other:?}").into()),
            }
            assert_eq!(executor.available_slots(), 2);
        }
        Ok(())
    })
}

#[test]
fn a_full_queue_is_busy_at_once() -> TestResult {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let host = two_slot_host()?;
        let component = host.load(&mixed_guest(), LIMITS)?;
        let no_queue = AsyncExecutor::new(1).with_queue(0, Duration::from_secs(5));
        let nap = no_queue.call(&component, (), "nap", &[Val::U32(100)], None);
        let refused = async {
            tokio::task::yield_now().await;
            no_queue.call(&component, (), "echo", &[Val::U32(1)], None).await
        };
        let (nap, refused) = tokio::join!(nap, refused);
        nap?;
        assert!(matches!(refused, Err(runtime_core::RuntimeError::Busy { waited }) if waited == Duration::ZERO));
        Ok(())
    })
}
