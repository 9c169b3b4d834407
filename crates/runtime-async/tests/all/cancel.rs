//! Cancellation mid-guest and mid-host-call, by token and by dropping the
//! future; thousands of cancellations leave the pool and memory as they were.

use std::time::Duration;

use runtime_async::CancellationToken;
use wasmtime::component::Val;

use crate::{Host, TestResult, mixed_guest};

const LONG: &str = "memory = \"1MiB\"\nfuel = 10_000_000_000\ntimeout = \"10s\"";

fn cancel_after(token: &CancellationToken, after: Duration) {
    let token = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        token.cancel();
    });
}

#[test]
fn a_token_cancels_a_spinning_guest_and_a_sleeping_host_call() -> TestResult {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let host = Host::reference()?;
        let component = host.load(&mixed_guest(), LONG)?;
        for (export, args) in [("spin", vec![]), ("nap", vec![Val::U32(60_000)])] {
            let token = CancellationToken::new();
            cancel_after(&token, Duration::from_millis(20));
            let error =
                host.executor.call(&component, (), export, &args, Some(&token)).await.err().ok_or("cancelled")?;
            assert_eq!(error.kind(), "cancelled", "{export}: {error}");
            match error {
                runtime_core::RuntimeError::Cancelled { report } => {
                    assert!(report.wall < Duration::from_secs(5))
                }
                other => return Err(format!("{export}: {other}").into()),
            }
        }
        assert_eq!(host.executor.available_slots(), host.engine.policy().max_concurrent_instances() as usize);
        Ok(())
    })
}

#[test]
fn dropping_the_future_releases_the_slot() -> TestResult {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let host = Host::reference()?;
        let component = host.load(&mixed_guest(), LONG)?;
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), host.executor.call(&component, (), "spin", &[], None))
                .await;
        assert!(abandoned.is_err(), "the spin cannot finish in 10ms");
        assert_eq!(host.executor.available_slots(), host.engine.policy().max_concurrent_instances() as usize);
        assert_eq!(host.executor.call(&component, (), "echo", &[Val::U32(7)], None).await?.results, [Val::U32(7)]);
        Ok(())
    })
}

/// Resident memory of this process, in bytes.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn ten_thousand_cancelled_calls_leave_the_pool_and_memory_as_they_were() -> TestResult {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(async {
        let host = std::sync::Arc::new(Host::reference_alone()?);
        let component = host.load(&mixed_guest(), LONG)?;
        let storm = |count: usize| {
            let (host, component) = (host.clone(), component.clone());
            async move {
                let mut calls = tokio::task::JoinSet::new();
                for n in 0..count {
                    let (host, component) = (host.clone(), component.clone());
                    calls.spawn(async move {
                        let token = CancellationToken::new();
                        cancel_after(&token, Duration::from_micros(200));
                        let export = if n % 2 == 0 { "spin" } else { "nap" };
                        let args = if n % 2 == 0 { vec![] } else { vec![Val::U32(60_000)] };
                        host.executor.call(&component, (), export, &args, Some(&token)).await
                    });
                    if calls.len() >= 200 {
                        calls.join_next().await;
                    }
                }
                let mut cancelled = 0;
                while let Some(joined) = calls.join_next().await {
                    if joined.map(|outcome| outcome.err().map(|e| e.kind()) == Some("cancelled")).unwrap_or(false) {
                        cancelled += 1;
                    }
                }
                cancelled
            }
        };
        storm(1_000).await; // warm the pool and the allocator
        let before = rss_bytes().ok_or("no /proc/self/statm")?;
        storm(10_000).await;
        let after = rss_bytes().ok_or("no /proc/self/statm")?;
        assert_eq!(host.executor.available_slots(), host.engine.policy().max_concurrent_instances() as usize);
        assert_eq!(host.executor.call(&component, (), "echo", &[Val::U32(1)], None).await?.results, [Val::U32(1)]);
        let growth = after.saturating_sub(before);
        assert!(growth < 32 << 20, "RSS grew by {} KiB over 10,000 cancelled calls", growth / 1024);
        Ok(())
    })
}
