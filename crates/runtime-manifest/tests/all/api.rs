//! The public API beyond the golden corpus: files, sizes, encodings, policies.

use std::path::PathBuf;

use runtime_manifest::{
    ByteSize, ComponentManifest, Error, Fuel, HostPolicy, MAX_MANIFEST_BYTES, ManifestProblem, Resources, Timeout,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const VALID: &str = r#"[component]
name = "hello"
version = "0.1.0"
wasm = "build/hello.wasm"

[resources]
memory = "1MiB"
fuel = 50_000_000
timeout = "100ms"
table-elements = 10_000
instances = 10
"#;

fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("runtime-manifest-{name}"))
}

#[test]
fn the_design_example_parses_to_typed_values() -> TestResult {
    let manifest: ComponentManifest = VALID.parse()?;
    assert_eq!(manifest.component.name.as_str(), "hello");
    assert_eq!(manifest.component.version, runtime_manifest::semver::Version::new(0, 1, 0));
    let wasm = manifest.component.wasm.as_ref().ok_or("wasm is set")?;
    assert_eq!(wasm.resolve("/srv/app".as_ref()), PathBuf::from("/srv/app/build/hello.wasm"));
    let resources = &manifest.resources;
    assert_eq!(resources.memory, ByteSize::mib(1));
    assert_eq!(Some(resources.fuel), Fuel::new(50_000_000));
    assert_eq!(resources.timeout.as_duration(), std::time::Duration::from_millis(100));
    assert_eq!(resources.table_elements, Some(10_000));
    assert_eq!(resources.instances, Some(10));
    Ok(())
}

#[test]
fn from_path_reads_a_file_and_names_it_in_diagnostics() -> TestResult {
    let path = scratch("from-path.toml");
    std::fs::write(&path, VALID)?;
    assert_eq!(ComponentManifest::from_path(&path)?, VALID.parse()?);

    std::fs::write(&path, VALID.replace("\"1MiB\"", "\"64MiB\""))?;
    let error = ComponentManifest::from_path(&path).err().ok_or("64MiB is above the policy")?;
    assert_eq!(error.code_str(), "runtime::manifest::out_of_range");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
    Ok(())
}

#[test]
fn a_missing_file_is_a_read_error() {
    let error = ComponentManifest::from_path(scratch("does-not-exist.toml")).err();
    assert!(matches!(error, Some(Error::Read { .. })), "{error:?}");
}

#[test]
fn oversized_input_is_refused_before_parsing() -> TestResult {
    // Valid TOML, padded with comments just past the cap: the size alone rejects it.
    let padded = format!("{VALID}{}", "# padding\n".repeat(MAX_MANIFEST_BYTES / 10));
    assert!(padded.len() > MAX_MANIFEST_BYTES);
    let path = scratch("oversized.toml");
    std::fs::write(&path, &padded)?;
    for error in [padded.parse::<ComponentManifest>().err(), ComponentManifest::from_path(&path).err()] {
        assert!(matches!(error, Some(Error::TooLarge { .. })), "{error:?}");
    }
    // Just under the cap is still accepted.
    let under = format!("{VALID}{}", "#".repeat(MAX_MANIFEST_BYTES - VALID.len()));
    assert_eq!(under.parse::<ComponentManifest>()?, VALID.parse()?);
    Ok(())
}

#[test]
fn binary_input_is_reported_at_its_first_invalid_byte() -> TestResult {
    let mut bytes = b"[component]\nname = \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, 0x00, 0x61, 0x73, 0x6d]);
    let error = ComponentManifest::parse_bytes("garbage", &bytes, &HostPolicy::default())
        .err()
        .ok_or("binary garbage is rejected")?;
    assert_eq!(error.code_str(), "runtime::manifest::not_utf8");
    assert_eq!(error.problems()[0].span().offset(), 20);
    Ok(())
}

#[test]
fn deep_nesting_is_a_syntax_error_not_a_stack_overflow() {
    let depth = 30_000;
    let text = format!("{VALID}deep = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let error = ComponentManifest::parse("deep", &text, &HostPolicy::default()).err();
    assert_eq!(error.map(|e| e.code_str()).as_deref(), Some("runtime::manifest::syntax"));
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() -> TestResult {
    let text =
        "[component]\nname = \"Bad_Name\"\nversion = \"x\"\n\n[resources]\nmemory = \"1MB\"\nfuel = 0\ntimeout = 100\n";
    let error = text.parse::<ComponentManifest>().err().ok_or("five problems")?;
    let codes: Vec<String> = error.problems().iter().map(ManifestProblem::code_str).collect();
    assert_eq!(
        codes,
        [
            "runtime::manifest::invalid_name",
            "runtime::manifest::invalid_version",
            "runtime::manifest::unknown_unit",
            "runtime::manifest::zero_value",
            "runtime::manifest::ambiguous_unit",
        ]
    );
    assert!(error.to_string().ends_with("(and 4 more problems)"), "{error}");
    Ok(())
}

#[test]
fn typed_values_match_their_manifest_spelling() -> TestResult {
    let manifest: ComponentManifest = VALID.replace("\"100ms\"", "\"2s\"").replace("\"1MiB\"", "1048576").parse()?;
    assert_eq!(manifest.resources.timeout, Timeout::from_secs(2));
    assert_eq!(manifest.resources.memory, ByteSize::kib(1024));
    Ok(())
}

#[test]
fn resources_made_as_values_are_checked_against_the_policy() -> TestResult {
    let resources = Resources::new(ByteSize::mib(1), Fuel::new(1_000_000).ok_or("fuel")?, Timeout::from_millis(100))
        .with_table_elements(500);
    let manifest = ComponentManifest::from_resources("values".parse()?, resources.clone());
    assert_eq!(manifest.resources, resources);
    assert_eq!(manifest.component.name.as_str(), "values");
    assert_eq!(manifest.resources.effective_table_elements(&HostPolicy::default()), 500);
    assert!(resources.check(&HostPolicy::default()).is_ok());
    let huge = Resources::new(ByteSize::mib(64), Fuel::MIN, Timeout::from_secs(1));
    let violations = huge.check(&HostPolicy::default()).err().ok_or("64MiB is past the default policy")?;
    assert_eq!(violations.len(), 1, "{violations:?}");
    // The manifest round-trips through TOML like a parsed one.
    let parsed: ComponentManifest = manifest.to_toml().parse()?;
    assert_eq!(parsed, manifest);
    Ok(())
}

#[test]
fn on_client_gone_is_cancel_unless_the_manifest_says_finish_and_nothing_else() -> TestResult {
    let plain: ComponentManifest = VALID.parse()?;
    assert_eq!(plain.wasi.http.on_client_gone, runtime_manifest::OnClientGone::Cancel);
    let finishing: ComponentManifest = format!("{VALID}[wasi.http]\non-client-gone = \"finish\"\n").parse()?;
    assert_eq!(finishing.wasi.http.on_client_gone, runtime_manifest::OnClientGone::Finish);
    assert!(finishing.wasi.http.is_empty(), "it grants no outgoing origin");
    let wrong = format!("{VALID}[wasi.http]\non-client-gone = \"finsh\"\n").parse::<ComponentManifest>();
    let text = format!("{:?}", wrong.err().ok_or("`finsh` was accepted")?);
    assert!(text.contains("on-client-gone") && text.contains("did you mean `finish`"), "{text}");
    Ok(())
}

#[test]
fn network_address_patterns_match_their_ports_and_ranges_only() -> Result<(), Box<dyn std::error::Error>> {
    use runtime_manifest::AddressPattern;
    use std::net::SocketAddr;
    let addr = |text: &str| text.parse::<SocketAddr>();
    let exact: AddressPattern = "127.0.0.1:8080".parse()?;
    assert!(exact.matches(addr("127.0.0.1:8080")?));
    assert!(!exact.matches(addr("127.0.0.1:8081")?) && !exact.matches(addr("127.0.0.2:8080")?));
    let any_port: AddressPattern = "127.0.0.1:*".parse()?;
    assert!(any_port.matches(addr("127.0.0.1:1")?) && any_port.matches(addr("127.0.0.1:65535")?));
    assert!(!any_port.matches(addr("127.0.0.2:80")?));
    let loopback: AddressPattern = "127.0.0.0/8:*".parse()?;
    assert!(loopback.matches(addr("127.255.0.1:9")?));
    assert!(!loopback.matches(addr("128.0.0.1:9")?) && !loopback.matches(addr("[::1]:9")?));
    let everywhere: AddressPattern = "0.0.0.0/0:443".parse()?;
    assert!(everywhere.matches(addr("8.8.8.8:443")?) && !everywhere.matches(addr("8.8.8.8:80")?));
    let v6: AddressPattern = "[fd00::/8]:53".parse()?;
    assert!(v6.matches(addr("[fd12::1]:53")?) && !v6.matches(addr("[fe80::1]:53")?));
    // Each writes back as it was read.
    for text in ["127.0.0.1:8080", "127.0.0.1:*", "127.0.0.0/8:*", "[::1]:*", "[fd00::/8]:53", "0.0.0.0/0:443"] {
        assert_eq!(text.parse::<AddressPattern>()?.to_string(), text);
    }
    for bad in
        ["127.0.0.1", "127.0.0.1:x", "127.0.0.1/33:*", "::1:80", "[127.0.0.1]:80", "localhost:80", "127.0.0.1:70000"]
    {
        assert!(bad.parse::<AddressPattern>().is_err(), "{bad} was accepted");
    }
    Ok(())
}

#[test]
fn a_policy_s_network_ranges_bound_every_network_grant() -> Result<(), Box<dyn std::error::Error>> {
    use runtime_manifest::{AddressPattern, ComponentManifest, HostPolicy};
    let range: AddressPattern = "127.0.0.0/8:*".parse()?;
    for inside in ["127.0.0.1:80", "127.0.0.1:*", "127.1.0.0/16:*", "127.0.0.0/8:443"] {
        assert!(range.contains(&inside.parse()?), "{inside}");
    }
    for outside in ["10.0.0.1:80", "0.0.0.0/0:*", "[::1]:80"] {
        assert!(!range.contains(&outside.parse()?), "{outside}");
    }
    let one_port: AddressPattern = "127.0.0.1:80".parse()?;
    assert!(!one_port.contains(&"127.0.0.1:*".parse()?), "a wildcard is wider than one port");

    let policy = HostPolicy::parse("p.toml", "[grants]\nnetwork = true\nnetwork-ranges = [\"127.0.0.0/8:*\"]\n")?;
    assert_eq!(policy.network_ranges(), [range]);
    assert_eq!(HostPolicy::parse("again", &policy.to_toml())?, policy, "the policy writes back as it was read");
    let manifest = |address: &str| {
        format!(
            "[component]\nname = \"a\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"1MiB\"\nfuel = 1_000\ntimeout = \"1s\"\n[wasi.network]\ntcp-connect = [\"{address}\"]\n"
        )
    };
    ComponentManifest::parse_bytes("m.toml", manifest("127.0.0.1:8080").as_bytes(), &policy)?;
    let refused = ComponentManifest::parse_bytes("m.toml", manifest("10.0.0.1:80").as_bytes(), &policy)
        .err()
        .ok_or("accepted")?;
    assert!(format!("{refused:?}").contains("network-ranges"), "{refused:?}");
    assert!(HostPolicy::parse("bad", "[grants]\nnetwork-ranges = [\"localhost:*\"]\n").is_err());
    Ok(())
}
