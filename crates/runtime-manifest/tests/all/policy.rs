//! A host can widen or narrow its policy; a manifest never exceeds it.

use runtime_manifest::{ByteSize, ComponentManifest, Fuel, HostPolicy, LimitKey, PolicyError, Timeout};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn manifest(memory: &str, fuel: u64, timeout: &str) -> String {
    format!(
        "[component]\nname = \"p\"\nversion = \"1.0.0\"\n\n[resources]\nmemory = \"{memory}\"\nfuel = {fuel}\ntimeout = \"{timeout}\"\n"
    )
}

fn code(text: &str, policy: &HostPolicy) -> Option<String> {
    ComponentManifest::parse("policy", text, policy).err().map(|e| e.code_str())
}

#[test]
fn the_default_policy_accepts_its_bounds_and_nothing_past_them() {
    let policy = HostPolicy::default();
    for ok in [manifest("512KiB", 1, "1ms"), manifest("4MiB", 10_000_000_000, "60s")] {
        assert_eq!(code(&ok, &policy), None, "{ok}");
    }
    for bad in [
        manifest("511KiB", 1, "1ms"),
        manifest("4097KiB", 1, "1ms"),
        manifest("1MiB", 10_000_000_001, "1ms"),
        manifest("1MiB", 1, "60001ms"),
    ] {
        assert_eq!(code(&bad, &policy).as_deref(), Some("runtime::manifest::out_of_range"), "{bad}");
    }
}

#[test]
fn a_wider_policy_admits_what_the_default_refuses() -> TestResult {
    let text = manifest("64MiB", 1_000, "5s");
    assert_eq!(code(&text, &HostPolicy::default()).as_deref(), Some("runtime::manifest::out_of_range"));
    let wide = HostPolicy::builder().memory(ByteSize::mib(1), ByteSize::mib(256)).build()?;
    let parsed = ComponentManifest::parse("wide", &text, &wide)?;
    assert_eq!(parsed.resources.memory, ByteSize::mib(64));
    Ok(())
}

#[test]
fn a_narrower_policy_refuses_what_the_default_admits() -> TestResult {
    let text = manifest("2MiB", 1_000_000, "500ms");
    assert_eq!(code(&text, &HostPolicy::default()), None);
    let narrow = HostPolicy::builder()
        .timeout(Timeout::from_millis(1), Timeout::from_millis(200))
        .fuel(Fuel::MIN, Fuel::new(1_000_000).ok_or("fuel")?)
        .build()?;
    let error = ComponentManifest::parse("narrow", &text, &narrow).err().ok_or("500ms is above 200ms")?;
    assert_eq!(error.problems().len(), 1);
    assert_eq!(error.code_str(), "runtime::manifest::out_of_range");
    Ok(())
}

#[test]
fn resources_are_checked_again_against_a_later_policy() -> TestResult {
    let parsed: ComponentManifest = manifest("4MiB", 1_000, "1s").parse()?;
    assert_eq!(parsed.resources.check(&HostPolicy::default()), Ok(()));
    let narrow = HostPolicy::builder().memory(ByteSize::kib(512), ByteSize::mib(1)).build()?;
    let violations = parsed.resources.check(&narrow).err().ok_or("4MiB exceeds 1MiB")?;
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].key, LimitKey::Memory);
    assert_eq!((violations[0].value.as_str(), violations[0].max.as_str()), ("4MiB", "1MiB"));
    Ok(())
}

#[test]
fn optional_limits_default_within_the_policy() -> TestResult {
    let parsed: ComponentManifest = manifest("1MiB", 1_000, "1s").parse()?;
    let policy = HostPolicy::default();
    assert_eq!(parsed.resources.effective_table_elements(&policy), runtime_manifest::DEFAULT_TABLE_ELEMENTS);
    assert_eq!(parsed.resources.effective_instances(&policy), runtime_manifest::DEFAULT_INSTANCES);
    let tight = HostPolicy::builder().max_instances(2).max_table_elements(100).build()?;
    assert_eq!(parsed.resources.effective_instances(&tight), 2);
    assert_eq!(parsed.resources.effective_table_elements(&tight), 100);
    Ok(())
}

#[test]
fn a_policy_cannot_be_empty_or_unlimited() {
    let empty = HostPolicy::builder().memory(ByteSize::mib(2), ByteSize::mib(1)).build();
    assert_eq!(empty, Err(PolicyError::EmptyRange { key: LimitKey::Memory }));
    let zero = HostPolicy::builder().max_instances(0).build();
    assert_eq!(zero, Err(PolicyError::Zero { key: LimitKey::Instances }));
    let zero_time = HostPolicy::builder().timeout(Timeout::from_millis(0), Timeout::from_secs(1)).build();
    assert_eq!(zero_time, Err(PolicyError::Zero { key: LimitKey::Timeout }));
}
