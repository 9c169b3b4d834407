//! Host functions: sleeping past the deadline, errors and panics crossing
//! the boundary, and accounting.

use std::sync::Arc;

use runtime_async::AsyncHostRegistry;
use runtime_core::{CrashKind, DeadlinePhase};
use runtime_manifest::HostPolicy;
use wasmtime::component::Val;

use crate::{Host, LIMITS, PATIENT, TestResult, mixed_guest};

fn tokio() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

#[test]
fn a_host_sleep_past_the_deadline_is_deadline_exceeded_during_host_call() -> TestResult {
    tokio()?.block_on(async {
        let host = Host::reference()?;
        let component = host.load(&mixed_guest(), LIMITS)?;
        let error =
            host.executor.call(&component, (), "nap", &[Val::U32(10_000)], None).await.err().ok_or("deadline")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, CrashKind::DeadlineExceeded { during: DeadlinePhase::HostCall });
        assert!(crash.report.wall < std::time::Duration::from_secs(5), "{:?}", crash.report.wall);

        let twin = host.executor.call(&component, (), "nap", &[Val::U32(1)], None).await?;
        assert_eq!(twin.report.host_calls, 1);
        assert!(twin.report.host_time >= std::time::Duration::from_millis(1));
        Ok(())
    })
}

const FAULTY: &str = "test:faulty/host";

fn faulty_guest() -> String {
    format!(
        r#"(component
  (import "{FAULTY}" (instance $h (export "boom" (func)) (export "fail" (func)) (export "fine" (func))))
  (core func $boom (canon lower (func $h "boom")))
  (core func $fail (canon lower (func $h "fail")))
  (core func $fine (canon lower (func $h "fine")))
  (core module $m
    (import "h" "boom" (func $boom)) (import "h" "fail" (func $fail)) (import "h" "fine" (func $fine))
    (func (export "boom") (call $boom)) (func (export "fail") (call $fail)) (func (export "fine") (call $fine)))
  (core instance $i (instantiate $m (with "h" (instance
    (export "boom" (func $boom)) (export "fail" (func $fail)) (export "fine" (func $fine))))))
  (func (export "boom") (canon lift (core func $i "boom")))
  (func (export "fail") (canon lift (core func $i "fail")))
  (func (export "fine") (canon lift (core func $i "fine"))))"#
    )
}

fn faulty_registry() -> AsyncHostRegistry {
    AsyncHostRegistry::new()
        .func_async(FAULTY, "boom", |_store, (): ()| -> runtime_async::HostFuture<'_, ()> {
            Box::new(async { panic!("the host function exploded") })
        })
        .func_async(FAULTY, "fail", |_store, (): ()| -> runtime_async::HostFuture<'_, ()> {
            Box::new(async { Err(wasmtime::Error::msg("the database is down")) })
        })
        .func_async(FAULTY, "fine", |_store, (): ()| -> runtime_async::HostFuture<'_, ()> {
            Box::new(async { Ok(()) })
        })
}

#[test]
fn a_panicking_host_function_fails_only_its_own_call() -> TestResult {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        let host = Arc::new(Host::new(HostPolicy::default(), &faulty_registry())?);
        let component = host.load(&faulty_guest(), PATIENT)?;
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..200 {
            let (host, component) = (host.clone(), component.clone());
            calls.spawn(async move {
                let export = if n % 2 == 0 { "boom" } else { "fine" };
                (export, host.executor.call(&component, (), export, &[], None).await)
            });
        }
        while let Some(joined) = calls.join_next().await {
            match joined? {
                ("boom", outcome) => {
                    let error = outcome.err().ok_or("boom panics")?;
                    let crash = error.crash().ok_or("a crash")?;
                    assert_eq!(crash.kind, CrashKind::HostPanic);
                    assert!(crash.message.contains("the host function exploded"), "{}", crash.message);
                }
                (_, outcome) => assert_eq!(outcome?.report.host_calls, 1),
            }
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

#[test]
fn a_host_error_is_host_error_with_its_message() -> TestResult {
    tokio()?.block_on(async {
        let host = Host::new(HostPolicy::default(), &faulty_registry())?;
        let component = host.load(&faulty_guest(), PATIENT)?;
        let error = host.executor.call(&component, (), "fail", &[], None).await.err().ok_or("fail errs")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, CrashKind::HostError);
        assert!(crash.message.contains("the database is down"), "{}", crash.message);
        assert!(crash.message.contains("test:faulty/host#fail"), "{}", crash.message);
        host.executor.call(&component, (), "fine", &[], None).await?;
        Ok(())
    })
}
