//! The same export called synchronously and through the async executor, on
//! a trivial export (where fixed costs dominate) and a compute-heavy one
//! (where the epoch yields of an async store are the only difference); and
//! 10,000 concurrent calls that each sleep 10 ms in a host function.

use criterion::{Criterion, criterion_group, criterion_main};
use runtime::{Runtime, RuntimeError, Val};

fn setup() -> Result<(Runtime, tokio::runtime::Runtime), Box<dyn std::error::Error>> {
    let runtime = Runtime::builder().build()?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok((runtime, tokio))
}

fn async_vs_sync(c: &mut Criterion) {
    let (runtime, tokio) = setup().unwrap_or_else(|error| panic!("setup: {error}"));
    let guest = benches::load(&runtime, benches::COMPUTE_GUEST).unwrap_or_else(|error| panic!("load: {error}"));
    let spin = [Val::U32(10_000_000)];
    for (name, export, args) in [("trivial", "noop", &[][..]), ("compute-10M", "spin", &spin[..])] {
        let mut group = c.benchmark_group(name);
        if export == "spin" {
            group.sample_size(20);
        }
        group.bench_function("sync", |b| b.iter(|| guest.call(export, args)));
        group.bench_function("async", |b| b.to_async(&tokio).iter(|| runtime.call_async(&guest, export, args)));
        group.finish();
    }
}

fn concurrent_sleeps(c: &mut Criterion) {
    let (runtime, _) = setup().unwrap_or_else(|error| panic!("setup: {error}"));
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("tokio: {error}"));
    let runtime = std::sync::Arc::new(runtime);
    let guest = benches::load(&runtime, &benches::napping_guest()).unwrap_or_else(|error| panic!("load: {error}"));
    let mut group = c.benchmark_group("concurrency");
    group.sample_size(10);
    group.bench_function("10000-calls-sleeping-10ms", |b| {
        b.to_async(&tokio).iter(|| {
            let (runtime, guest) = (runtime.clone(), guest.clone());
            async move {
                let mut calls = tokio::task::JoinSet::new();
                for _ in 0..10_000 {
                    let (runtime, guest) = (runtime.clone(), guest.clone());
                    calls.spawn(async move { runtime.call_async(&guest, "nap", &[Val::U32(10)]).await });
                }
                let mut failures = 0;
                while let Some(joined) = calls.join_next().await {
                    if !matches!(joined, Ok(Ok(_))) {
                        failures += 1;
                    }
                }
                assert_eq!(failures, 0, "every call must succeed");
                Ok::<(), RuntimeError>(())
            }
        });
    });
    group.finish();
}

criterion_group!(benches, async_vs_sync, concurrent_sleeps);
criterion_main!(benches);
