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
    assert_eq!(parsed.resources.effective_instances(&policy), runtime_manifest::DEFAULT_MAX_INSTANCES);
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

/// The policy file of the README, key for key.
const WIDE_POLICY: &str = r#"
[resources]
memory = { min = "512KiB", max = "64MiB" }
fuel = { max = 100_000_000_000 }
timeout = { max = "60s" }
[compile]
max-functions = 50_000
max-function-size = "2MiB"
max-code = "64MiB"
[grants]
dirs = true
network = false
http = false
"#;

#[test]
fn a_policy_file_widens_what_it_names_and_keeps_the_rest() -> Result<(), Box<dyn std::error::Error>> {
    let policy = HostPolicy::parse("policy.toml", WIDE_POLICY)?;
    let default = HostPolicy::default();
    assert_eq!(policy.memory().max, ByteSize::mib(64));
    assert_eq!(policy.memory().min, ByteSize::kib(512));
    assert_eq!(policy.fuel().max.get(), 100_000_000_000);
    assert_eq!(policy.timeout().max, Timeout::from_secs(60));
    assert_eq!(policy.compile_budget().max_functions, 50_000);
    assert_eq!(policy.compile_budget().max_function_body_bytes, 2 << 20);
    assert_eq!(policy.compile_budget().max_code_bytes, 64 << 20);
    assert_eq!(policy.compile_budget().max_instantiations, default.compile_budget().max_instantiations);
    assert_eq!(policy.max_handles(), default.max_handles());
    assert!(policy.grants().dirs && !policy.grants().network && !policy.grants().http);
    // The printed policy is a policy file that means the same.
    assert_eq!(HostPolicy::parse("printed", &policy.to_toml())?, policy);
    // An empty file is the default policy.
    assert_eq!(HostPolicy::parse("empty", "")?, default);
    Ok(())
}

#[test]
fn a_policy_file_is_checked_like_a_manifest_and_called_a_policy() {
    let cases = [
        ("[resources]\nmemroy = { max = \"64MiB\" }\n", "runtime::policy::unknown_key", "did you mean `memory`?"),
        ("[resources]\nmemory = { max = \"64MB\" }\n", "runtime::policy::invalid_value", "MiB"),
        ("[resources]\nmemory = \"64MiB\"\n", "runtime::policy::wrong_type", "max"),
        ("[compile]\nmax-functions = 0\n", "runtime::policy::zero_value", ""),
        ("[compile]\nmax-functions = \"many\"\n", "runtime::policy::wrong_type", ""),
        ("[grants]\nnetwork = \"yes\"\n", "runtime::policy::wrong_type", "network = true"),
        ("[grants]\nfilesystem = true\n", "runtime::policy::unknown_key", "dirs"),
        ("[resources]\nmemory = { min = \"8MiB\", max = \"1MiB\" }\n", "runtime::policy::invalid_value", "min <= max"),
        ("[resources\n", "runtime::policy::syntax", ""),
    ];
    for (text, code, help) in cases {
        let error = HostPolicy::parse("policy.toml", text).err().unwrap_or_else(|| panic!("accepted: {text}"));
        assert_eq!(error.code_str(), code, "{text}");
        let rendered = format!("{:?}", miette::Report::new(error));
        assert!(rendered.contains(help), "{text}: {rendered}");
    }
}

#[test]
fn grants_the_policy_refuses_are_reported_where_the_manifest_asks() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = "[component]\nname = \"x\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"1MiB\"\nfuel = 1000\ntimeout = \"1s\"\n[wasi.network]\ntcp-connect = [\"127.0.0.1:8080\"]\n";
    let refused = ComponentManifest::parse("Component.toml", manifest, &HostPolicy::default());
    assert_eq!(refused.err().map(|e| e.code_str()).as_deref(), Some("runtime::manifest::grant_refused"));
    let open = HostPolicy::parse("policy.toml", "[grants]\nnetwork = true\n")?;
    let granted = ComponentManifest::parse("Component.toml", manifest, &open)?;
    assert_eq!(granted.wasi.network.tcp_connect, ["127.0.0.1:8080".parse::<runtime_manifest::AddressPattern>()?]);
    Ok(())
}
