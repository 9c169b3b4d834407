//! The runtime's costs operation by operation: engine creation; loading
//! (compile, in-memory cache hit, on-disk cache hit) of a tiny component and
//! of the Rust guest; instantiate + call with pooled and on-demand
//! allocation; a warm call on a live instance; the host-function round trip;
//! a compute-heavy and a memory-heavy export; and how costs grow with
//! component size and with concurrency.
//!
//! `cargo xtask bench` measures the key operations against bare wasmtime;
//! this suite gives each of the runtime's own costs its own figure.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use runtime::{Allocation, ByteSize, HostPolicy, Runtime, Val};
use runtime_core::{ComponentLoader, RuntimeEngine};

type Setup<T> = Result<T, Box<dyn Error>>;

/// Setup cannot fail on a working machine; if it does, the benchmark cannot run.
fn ready<T>(what: &str, setup: Setup<T>) -> T {
    setup.unwrap_or_else(|error| panic!("{what}: {error}"))
}

fn tokio_runtime(threads: usize) -> Setup<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?)
}

fn engine_creation(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    for (name, allocation) in [("pooled", Allocation::Pooling), ("on-demand", Allocation::OnDemand)] {
        group.bench_function(name, |b| b.iter(|| RuntimeEngine::new(HostPolicy::default(), allocation)));
    }
    group.finish();
}

/// A fresh cache directory for this run.
fn cache_dir() -> PathBuf {
    std::env::temp_dir().join(format!("wasm-runtime-bench-cache-{}", std::process::id()))
}

fn loading(c: &mut Criterion) {
    let engine = ready("engine", RuntimeEngine::new(HostPolicy::default(), Allocation::Pooling).map_err(Into::into));
    let tiny = ready(
        "tiny",
        runtime::cli_support::component_binary(benches::COMPUTE_GUEST.as_bytes(), &runtime::HostPolicy::default())
            .map_err(Into::into),
    );
    let dir = cache_dir();
    for (name, bytes) in [("tiny", &tiny[..]), ("rust-guest", benches::RUST_GUEST)] {
        let mut group = c.benchmark_group(format!("load/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        if name == "rust-guest" {
            group.sample_size(10);
        }
        group.bench_function("compile", |b| b.iter(|| ComponentLoader::new(engine.clone()).load_bytes(bytes)));
        let warm = ComponentLoader::new(engine.clone()).with_disk_cache(&dir);
        ready("first load", warm.load_bytes(bytes).map_err(Into::into));
        group.bench_function("memory-cache-hit", |b| b.iter(|| warm.load_bytes(bytes)));
        group.bench_function("disk-cache-hit", |b| {
            b.iter(|| ComponentLoader::new(engine.clone()).with_disk_cache(&dir).load_bytes(bytes))
        });
        group.finish();
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate-call");
    for (name, allocation) in [("pooled", Allocation::Pooling), ("on-demand", Allocation::OnDemand)] {
        let runtime = ready("runtime", Runtime::builder().allocation(allocation).build().map_err(Into::into));
        let guest = ready("load", benches::load(&runtime, benches::COMPUTE_GUEST).map_err(Into::into));
        group.bench_function(name, |b| b.iter(|| guest.call("noop", &[])));
    }
    group.finish();

    let runtime = ready("runtime", Runtime::builder().build().map_err(Into::into));
    let guest = ready("load", benches::load(&runtime, benches::COMPUTE_GUEST).map_err(Into::into));
    let mut instance = ready("instance", guest.instantiate(()).map_err(Into::into));
    c.bench_function("warm-call", |b| b.iter(|| instance.call("noop", &[])));
    let noop = ready("typed", instance.typed::<(), ()>("noop").map_err(Into::into));
    c.bench_function("typed-warm-call", |b| b.iter(|| instance.call_typed(&noop, ())));
}

fn host_round_trip(c: &mut Criterion) {
    const PINGS: u32 = 1_000;
    let runtime =
        ready("runtime", Runtime::builder().host_functions(benches::ping_registry()).build().map_err(Into::into));
    let guest = ready("load", benches::load(&runtime, &benches::pinging_guest()).map_err(Into::into));
    let tokio = ready("tokio", tokio_runtime(1));
    let mut group = c.benchmark_group("host-round-trip");
    group.throughput(Throughput::Elements(u64::from(PINGS)));
    group.bench_function("1000-pings", |b| {
        b.to_async(&tokio).iter(|| guest.call_async("ping-n", &[Val::U32(PINGS)]));
    });
    group.finish();
}

fn workloads(c: &mut Criterion) {
    const PAGES: u32 = 256;
    let policy = HostPolicy::builder().memory(ByteSize::kib(64), ByteSize::mib(64)).build();
    let policy = ready("policy", policy.map_err(Into::into));
    let runtime = ready("runtime", Runtime::builder().policy(policy).build().map_err(Into::into));
    let compute = ready("load", benches::load(&runtime, benches::COMPUTE_GUEST).map_err(Into::into));
    let memory = benches::load_with_memory(&runtime, benches::MEMORY_GUEST.as_bytes(), "32MiB");
    let memory = ready("load", memory.map_err(Into::into));
    let mut group = c.benchmark_group("workload");
    group.sample_size(20);
    group.bench_function("compute-spin-10M", |b| b.iter(|| compute.call("spin", &[Val::U32(10_000_000)])));
    group.throughput(Throughput::Bytes(u64::from(PAGES + 1) * 65_536));
    group.bench_function("memory-fill-16MiB", |b| b.iter(|| memory.call("fill", &[Val::U32(PAGES)])));
    group.finish();
}

fn scaling_with_size(c: &mut Criterion) {
    let engine = ready("engine", RuntimeEngine::new(HostPolicy::default(), Allocation::Pooling).map_err(Into::into));
    let runtime = ready("runtime", Runtime::builder().build().map_err(Into::into));
    let mut compile = c.benchmark_group("scaling/compile");
    compile.sample_size(10);
    let sizes = [10, 100, 1_000, 5_000];
    let guests: Vec<Vec<u8>> =
        sizes.iter().map(|&n| ready("guest", benches::guest_with_functions(n).map_err(Into::into))).collect();
    for (n, wat) in sizes.iter().zip(&guests) {
        let binary = ready(
            "binary",
            runtime::cli_support::component_binary(wat, &runtime::HostPolicy::default())
                .map(|b| b.into_owned())
                .map_err(Into::into),
        );
        compile.bench_with_input(BenchmarkId::from_parameter(n), &binary, |b, binary| {
            b.iter(|| ComponentLoader::new(engine.clone()).load_bytes(binary));
        });
    }
    compile.finish();
    let mut call = c.benchmark_group("scaling/instantiate-call");
    for (n, wat) in sizes.iter().zip(&guests) {
        let guest = ready("load", benches::load_with_memory(&runtime, wat, "1MiB").map_err(Into::into));
        call.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| guest.call("noop", &[])));
    }
    call.finish();
}

fn scaling_with_concurrency(c: &mut Criterion) {
    let runtime = Arc::new(ready("runtime", Runtime::builder().build().map_err(Into::into)));
    let guest = ready("load", benches::load(&runtime, &benches::napping_guest()).map_err(Into::into));
    let tokio = ready("tokio", tokio_runtime(2));
    let mut group = c.benchmark_group("scaling/concurrent-calls-sleeping-10ms");
    group.sample_size(10);
    for calls in [1_usize, 100, 1_000, 10_000] {
        group.bench_function(BenchmarkId::from_parameter(calls), |b| {
            b.to_async(&tokio).iter(|| {
                let guest = guest.clone();
                async move {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..calls {
                        let guest = guest.clone();
                        set.spawn(async move { guest.call_async("nap", &[Val::U32(10)]).await.is_ok() });
                    }
                    let mut succeeded = 0;
                    while let Some(joined) = set.join_next().await {
                        succeeded += usize::from(joined.unwrap_or(false));
                    }
                    assert_eq!(succeeded, calls, "every call must succeed");
                }
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = engine_creation, loading, calls, host_round_trip, workloads, scaling_with_size, scaling_with_concurrency
}
criterion_main!(benches);
