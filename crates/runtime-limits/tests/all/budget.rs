//! `InstanceBudget`: sums, denials, and growths wasmtime could not complete.

use runtime_limits::{Denial, InstanceBudget, LimitedResource};
use wasmtime::ResourceLimiter;

use crate::{TestResult, limits};

const PAGE: usize = 64 * 1024;

fn budget() -> Result<InstanceBudget, Box<dyn std::error::Error>> {
    Ok(InstanceBudget::new(&limits("memory = \"1MiB\"\nfuel = 1\ntimeout = \"1s\"\ntable-elements = 100")?))
}

#[test]
fn memories_are_summed_and_the_budget_is_inclusive() -> TestResult {
    let mut budget = budget()?;
    assert!(budget.memory_growing(0, 8 * PAGE, None)?);
    assert!(budget.memory_growing(0, 4 * PAGE, None)?);
    assert!(budget.memory_growing(4 * PAGE, 8 * PAGE, None)?);
    assert_eq!(budget.usage().current_memory_bytes, 16 * PAGE as u64);
    assert!(!budget.memory_growing(8 * PAGE, 9 * PAGE, None)?);
    assert_eq!(
        budget.denials(),
        [Denial { resource: LimitedResource::Memory, requested: 17 * PAGE as u64, limit: 16 * PAGE as u64 }]
    );
    assert!(budget.was_denied(LimitedResource::Memory));
    assert!(!budget.was_denied(LimitedResource::TableElements));
    Ok(())
}

#[test]
fn a_growth_wasmtime_fails_after_approval_is_taken_back() -> TestResult {
    let mut budget = budget()?;
    assert!(budget.memory_growing(0, 10 * PAGE, None)?);
    ResourceLimiter::memory_grow_failed(&mut budget, wasmtime::Error::msg("past the memory's maximum"))?;
    assert_eq!(budget.usage().current_memory_bytes, 0);
    assert_eq!(budget.usage().peak_memory_bytes, 10 * PAGE as u64);
    assert!(budget.memory_growing(0, 16 * PAGE, None)?);
    Ok(())
}

#[test]
fn tables_have_their_own_budget() -> TestResult {
    let mut budget = budget()?;
    assert!(budget.table_growing(0, 60, None)?);
    assert!(budget.table_growing(0, 40, None)?);
    assert!(!budget.table_growing(40, 41, None)?);
    assert!(budget.was_denied(LimitedResource::TableElements));
    assert!(budget.memory_growing(0, PAGE, None)?, "memory is unaffected by tables");
    Ok(())
}

#[test]
fn denials_are_recorded_up_to_a_cap() -> TestResult {
    let mut budget = budget()?;
    for _ in 0..10_000 {
        assert!(!budget.memory_growing(0, 17 * PAGE, None)?);
    }
    assert_eq!(budget.denials().len(), InstanceBudget::MAX_RECORDED_DENIALS);
    budget.clear_denials();
    assert!(budget.denials().is_empty());
    Ok(())
}

/// A growth granted and then failed in wasmtime is taken back: the peak of
/// the call it happened in shows it, the next call's does not.
#[test]
fn each_call_of_a_reused_instance_has_its_own_peak() -> TestResult {
    let mut budget = budget()?;
    assert!(budget.memory_growing(0, PAGE, None)?);
    assert!(budget.memory_growing(PAGE, 9 * PAGE, None)?);
    budget.memory_grow_failed(wasmtime::Error::msg("mmap failed"))?;
    assert_eq!(budget.usage().current_memory_bytes, PAGE as u64);
    assert_eq!(budget.usage().peak_memory_bytes, 9 * PAGE as u64);
    budget.begin_call();
    assert_eq!(budget.usage().peak_memory_bytes, PAGE as u64);
    assert!(budget.memory_growing(PAGE, 2 * PAGE, None)?);
    assert_eq!(budget.usage().peak_memory_bytes, 2 * PAGE as u64);
    Ok(())
}

#[test]
fn a_later_successful_growth_forgets_the_denials_of_that_resource_only() -> TestResult {
    let mut budget = budget()?;
    assert!(!budget.memory_growing(0, 17 * PAGE, None)?);
    assert!(!budget.table_growing(0, 101, None)?);
    assert!(budget.memory_growing(0, PAGE, None)?, "a smaller growth still fits");
    assert!(!budget.was_denied(LimitedResource::Memory), "the guest survived the refusal");
    assert!(budget.was_denied(LimitedResource::TableElements));
    Ok(())
}
