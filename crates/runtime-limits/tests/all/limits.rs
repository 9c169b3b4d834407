//! `ResourceLimits` against the policy, and the epoch ticker.

use std::time::Duration;

use runtime_limits::{Deadline, EpochTicker, ResourceLimits};
use runtime_manifest::{ByteSize, ComponentManifest, DEFAULT_MAX_INSTANCES, DEFAULT_TABLE_ELEMENTS, HostPolicy};

use crate::{TestResult, limits};

#[test]
fn limits_carry_the_manifest_and_the_policy_defaults() -> TestResult {
    let limits = limits("memory = \"2MiB\"\nfuel = 5_000\ntimeout = \"250ms\"")?;
    assert_eq!(limits.memory_bytes(), 2 << 20);
    assert_eq!(limits.fuel(), 5_000);
    assert_eq!(limits.timeout(), Duration::from_millis(250));
    assert_eq!(limits.table_elements(), DEFAULT_TABLE_ELEMENTS);
    assert_eq!(limits.instances(), DEFAULT_MAX_INSTANCES);
    Ok(())
}

#[test]
fn a_manifest_beyond_a_narrower_policy_is_refused() -> TestResult {
    let manifest: ComponentManifest =
        "[component]\nname = \"t\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\nfuel = 1\ntimeout = \"1s\"\n"
            .parse()?;
    let narrow = HostPolicy::builder().memory(ByteSize::kib(512), ByteSize::mib(1)).build()?;
    let error = ResourceLimits::new(&manifest.resources, &narrow).err().ok_or("4MiB > 1MiB")?;
    assert!(error.to_string().contains("memory = 4MiB (allowed 512KiB..=1MiB)"), "{error}");
    assert!(ResourceLimits::new(&manifest.resources, &HostPolicy::default()).is_ok());
    Ok(())
}

#[test]
fn the_ticker_stops_when_dropped_and_deadlines_compare_with_now() -> TestResult {
    let mut config = wasmtime::Config::default();
    config.epoch_interruption(true);
    #[expect(clippy::disallowed_methods, reason = "a bare engine is enough to watch the epoch")]
    let engine = wasmtime::Engine::new(&config)?;
    let ticker = EpochTicker::start(engine.clone())?;
    // Dropping joins the thread: this returns promptly only if the ticker stops.
    drop(ticker);
    let deadline = Deadline::after(Duration::ZERO);
    assert!(deadline.has_passed());
    assert!(!Deadline::after(Duration::from_secs(3600)).has_passed());
    Ok(())
}
