//! Properties over generated input: parsing never panics, valid manifests
//! round-trip, and quantities agree with their `Display`.

use proptest::prelude::*;
use runtime_manifest::{ByteSize, ComponentManifest, HostPolicy, MAX_MANIFEST_BYTES, Timeout};

/// Lines that look like a manifest, valid or not, to reach deep into the validator.
fn manifest_line() -> impl Strategy<Value = String> {
    const KNOWN: [&str; 9] =
        ["name", "version", "wasm", "memory", "fuel", "timeout", "table-elements", "instances", "memroy"];
    let key = prop_oneof![prop::sample::select(&KNOWN[..]).prop_map(str::to_owned), "[a-z_-]{1,12}"];
    let value = prop_oneof![
        "-?[0-9_]{1,30}",
        "\"[0-9]{0,25}(B|KiB|MiB|GiB|ms|s|MB|min|)\"",
        "\"[ -~]{0,20}\"",
        Just("1.5".to_owned()),
        Just("true".to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        "0x[0-9a-f]{1,20}",
    ];
    prop_oneof![
        Just("[component]".to_owned()),
        Just("[resources]".to_owned()),
        Just("[[component]]".to_owned()),
        "\\[[a-z.]{1,12}\\]",
        (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
        "[ -~]{0,40}",
    ]
}

#[derive(Debug, Clone)]
struct Valid {
    name: String,
    version: (u64, u64, u64),
    wasm: Option<String>,
    memory_bytes: u64,
    memory_form: u8,
    fuel: u64,
    timeout_ms: u64,
    table_elements: Option<u32>,
    instances: Option<u32>,
    stdio: Option<&'static str>,
}

impl Valid {
    /// The manifest as a user might write it, in one of several spellings.
    fn to_text(&self) -> String {
        let memory = match self.memory_form % 3 {
            0 => self.memory_bytes.to_string(),
            1 => format!("\"{}B\"", self.memory_bytes),
            _ => format!("\"{}\"", ByteSize::bytes(self.memory_bytes)),
        };
        let mut text = format!(
            "[component]\nname = \"{}\"\nversion = \"{}.{}.{}\"\n",
            self.name, self.version.0, self.version.1, self.version.2
        );
        if let Some(wasm) = &self.wasm {
            text.push_str(&format!("wasm = \"{wasm}\"\n"));
        }
        text.push_str(&format!(
            "\n[resources]\nmemory = {memory}\nfuel = {}\ntimeout = \"{}ms\"\n",
            self.fuel, self.timeout_ms
        ));
        if let Some(n) = self.table_elements {
            text.push_str(&format!("table-elements = {n}\n"));
        }
        if let Some(n) = self.instances {
            text.push_str(&format!("instances = {n}\n"));
        }
        if let Some(stdio) = self.stdio {
            text.push_str(&format!("\n[wasi]\nstdio = \"{stdio}\"\n"));
        }
        text
    }
}

const POLICY_MIN_MEMORY: u64 = runtime_manifest::DEFAULT_MIN_MEMORY.as_bytes();
const POLICY_MAX_MEMORY: u64 = runtime_manifest::DEFAULT_MAX_MEMORY.as_bytes();

prop_compose! {
    /// A manifest that the default policy accepts, in one of several spellings.
    fn valid_manifest()(
        name in "[a-z0-9-]{1,64}",
        version in (0u64..100, 0u64..100, 0u64..1000),
        wasm in proptest::option::of("[a-z]{1,8}(/[a-z0-9_]{1,8}){0,2}\\.wasm"),
        memory_bytes in POLICY_MIN_MEMORY..=POLICY_MAX_MEMORY,
        memory_form in any::<u8>(),
        fuel in 1..=runtime_manifest::DEFAULT_MAX_FUEL.get(),
        timeout_ms in 1u64..=60_000,
        table_elements in proptest::option::of(1..=runtime_manifest::DEFAULT_MAX_TABLE_ELEMENTS),
        instances in proptest::option::of(1..=runtime_manifest::DEFAULT_MAX_INSTANCES),
        stdio in proptest::option::of(prop::sample::select(runtime_manifest::Stdio::NAMES)),
    ) -> Valid {
        Valid { name, version, wasm, memory_bytes, memory_form, fuel, timeout_ms, table_elements, instances, stdio }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = text.parse::<ComponentManifest>();
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ComponentManifest::parse_bytes("bytes", &bytes, &HostPolicy::default());
    }

    #[test]
    fn manifest_shaped_text_never_panics(lines in proptest::collection::vec(manifest_line(), 0..24)) {
        let text = lines.join("\n");
        if let Err(error) = text.parse::<ComponentManifest>() {
            // Whatever is wrong, it is explained: a code and, for a file that
            // was read, at least one problem inside the text.
            prop_assert!(error.code_str().starts_with("runtime::manifest::"));
            prop_assert!(!error.problems().is_empty());
            for problem in error.problems() {
                prop_assert!(problem.span().offset() <= text.len());
            }
        }
    }

    #[test]
    fn valid_manifests_round_trip_unchanged(valid in valid_manifest()) {
        let text = valid.to_text();
        prop_assert!(text.len() < MAX_MANIFEST_BYTES);
        let parsed: ComponentManifest = text.parse().map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(parsed.component.name.as_str(), valid.name.as_str());
        prop_assert_eq!(parsed.resources.memory.as_bytes(), valid.memory_bytes);
        prop_assert_eq!(parsed.resources.fuel.get(), valid.fuel);
        prop_assert_eq!(parsed.resources.timeout.as_millis(), valid.timeout_ms);
        prop_assert_eq!(parsed.resources.instances, valid.instances);
        let stdio: runtime_manifest::Stdio = valid.stdio.unwrap_or("discard").parse().map_err(|()| TestCaseError::fail("stdio"))?;
        prop_assert_eq!(parsed.wasi.stdio, stdio);
        let serialized = parsed.to_toml();
        let reparsed: ComponentManifest = serialized.parse().map_err(|e| TestCaseError::fail(format!("{e:?}\n{serialized}")))?;
        prop_assert_eq!(reparsed, parsed);
    }

    #[test]
    fn memory_is_accepted_exactly_when_the_policy_contains_it(bytes in 0u64..(16 << 20)) {
        let text = format!("[component]\nname = \"m\"\nversion = \"0.1.0\"\n[resources]\nmemory = {bytes}\nfuel = 1\ntimeout = \"1s\"\n");
        let accepted = text.parse::<ComponentManifest>().is_ok();
        prop_assert_eq!(accepted, HostPolicy::default().memory().contains(ByteSize::bytes(bytes)));
    }

    #[test]
    fn byte_sizes_parse_back_from_display(bytes in any::<u64>()) {
        let size = ByteSize::bytes(bytes);
        prop_assert_eq!(size.to_string().parse::<ByteSize>(), Ok(size));
    }

    #[test]
    fn timeouts_parse_back_from_display(millis in any::<u64>()) {
        let timeout = Timeout::from_millis(millis);
        prop_assert_eq!(timeout.to_string().parse::<Timeout>(), Ok(timeout));
    }

    #[test]
    fn byte_size_units_multiply_exactly(n in 0u64..(1 << 33), unit in 0usize..4) {
        let (name, shift) = [("B", 0), ("KiB", 10), ("MiB", 20), ("GiB", 30)][unit];
        let parsed = format!("{n}{name}").parse::<ByteSize>().ok();
        prop_assert_eq!(parsed.map(ByteSize::as_bytes), n.checked_mul(1 << shift));
    }
}
