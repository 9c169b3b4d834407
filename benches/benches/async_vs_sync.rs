//! The same export called synchronously and through the async executor, on
//! a trivial export (where fixed costs dominate) and a compute-heavy one
//! (where the epoch yields of an async store are the only difference).
//! Concurrency is in `runtime.rs` (`scaling/concurrent-calls-sleeping-10ms`).

use criterion::{Criterion, criterion_group, criterion_main};
use runtime::{Runtime, Val};

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
        group.bench_function("async", |b| b.to_async(&tokio).iter(|| guest.call_async(export, args)));
        group.finish();
    }
}

criterion_group!(benches, async_vs_sync);
criterion_main!(benches);
