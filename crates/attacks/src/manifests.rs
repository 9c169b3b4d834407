//! Hostile manifests: the golden corpus of runtime-manifest, plus generated
//! inputs no one would write by hand (oversized, binary, deeply nested, huge
//! numbers) and seeded random mutations of a valid manifest.

use std::collections::BTreeSet;
use std::path::Path;

use runtime::manifest::MAX_MANIFEST_BYTES;
use runtime::{ComponentManifest, HostPolicy, manifest::Error as ManifestError};

use super::{Case, Outcome, Verdict};

const GROUP: &str = "manifest";

const VALID: &str = "[component]\nname = \"target\"\nversion = \"0.1.0\"\nwasm = \"target.wasm\"\n\n\
[resources]\nmemory = \"1MiB\"\nfuel = 50_000_000\ntimeout = \"100ms\"\ntable-elements = 1_000\ninstances = 4\n";

pub(crate) fn cases(quick: bool, seed: u64) -> Result<Vec<Case>, String> {
    let mut cases = corpus_cases()?;
    cases.extend(generated_cases());
    let mutations = if quick { 2_000 } else { 50_000 };
    cases.push(Case::new(
        GROUP,
        format!("{mutations} random mutations (seed {seed})"),
        "no panic; rejections coded, in bounds",
        move || mutation_storm(mutations, seed),
    ));
    Ok(cases)
}

/// The invalid manifests of runtime-manifest's golden tests; each file's first
/// `# expect:` line is its expected primary code.
fn corpus_cases() -> Result<Vec<Case>, String> {
    let dir = crate::workspace_root().join("crates/runtime-manifest/tests/ui/invalid");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot read the manifest corpus {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let expected = text
                .lines()
                .find_map(|line| line.strip_prefix("# expect: "))
                .and_then(|line| line.split(" at ").next())
                .ok_or_else(|| format!("{} has no `# expect:` line", path.display()))?
                .to_owned();
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Ok(Case::new(GROUP, name, expected.clone(), move || rejected_from_path(&path, &expected)))
        })
        .collect()
}

fn rejected_from_path(path: &Path, expected: &str) -> Outcome {
    Outcome::rejected(expected, ComponentManifest::from_path(path).err().map(|e| e.code_str()))
}

fn rejected_text(text: &str, expected: &str) -> Outcome {
    Outcome::rejected(expected, text.parse::<ComponentManifest>().err().map(|e| e.code_str()))
}

fn rejected_bytes(bytes: &[u8], expected: &str) -> Outcome {
    let result = ComponentManifest::parse_bytes("generated", bytes, &HostPolicy::default());
    Outcome::rejected(expected, result.err().map(|e| e.code_str()))
}

const SYNTAX: &str = "runtime::manifest::syntax";

fn generated_cases() -> Vec<Case> {
    let text_case = |name: &str, expected: &'static str, text: String| {
        Case::new(GROUP, name, expected, move || rejected_text(&text, expected))
    };
    let with_resource = |line: &str| VALID.replace("instances = 4\n", &format!("instances = 4\n{line}\n"));
    let replace = |from: &str, to: &str| VALID.replace(from, to);
    let depth = 20_000;
    vec![
        text_case("oversized text (1 MiB)", "runtime::manifest::too_large", VALID.repeat((1 << 20) / VALID.len() + 1)),
        Case::new(GROUP, "oversized file (endless /dev/zero)", "runtime::manifest::too_large", || {
            // Reading must stop at the cap even when the file never ends.
            rejected_from_path(Path::new("/dev/zero"), "runtime::manifest::too_large")
        }),
        Case::new(GROUP, "oversized file on disk (8 MiB)", "runtime::manifest::too_large", || {
            let dir = crate::target_dir().join("adversarial");
            let path = dir.join("oversized.toml");
            let text = format!("{VALID}{}", "#".repeat(8 << 20));
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
                Ok(()) => rejected_from_path(&path, "runtime::manifest::too_large"),
                Err(error) => {
                    Outcome { observed: format!("setup failed: {error}"), verdict: Verdict::HostFailure, figures: None }
                }
            }
        }),
        Case::new(GROUP, "binary garbage", "runtime::manifest::not_utf8", || {
            rejected_bytes(&pseudo_random_bytes(4096, 7), "runtime::manifest::not_utf8")
        }),
        Case::new(GROUP, "a wasm binary passed as manifest", "runtime::manifest::not_utf8", || {
            let wasm = b"\0asm\x0d\x00\x01\x00\x07\x10\x01\xff\xfe\xfd".to_vec();
            rejected_bytes(&wasm, "runtime::manifest::not_utf8")
        }),
        text_case("NUL byte inside a string", SYNTAX, replace("\"target\"", "\"tar\0get\"")),
        text_case(
            "deeply nested arrays",
            SYNTAX,
            with_resource(&format!("x = {}{}", "[".repeat(depth), "]".repeat(depth))),
        ),
        text_case(
            "deeply nested inline tables",
            SYNTAX,
            with_resource(&format!("x = {}1{}", "{ a = ".repeat(depth / 4), " }".repeat(depth / 4))),
        ),
        text_case("deeply dotted table header", SYNTAX, format!("{VALID}[{}]\n", vec!["a"; 10_000].join("."))),
        text_case(
            "5000 unknown keys",
            "runtime::manifest::unknown_key",
            with_resource(&(0..5000).map(|i| format!("k{i} = {i}\n")).collect::<String>()),
        ),
        text_case(
            "60 KB key name",
            "runtime::manifest::unknown_key",
            with_resource(&format!("{} = 1", "k".repeat(60_000))),
        ),
        text_case(
            "fuel of 10^40",
            "runtime::manifest::overflow",
            replace("50_000_000", &format!("1{}", "0".repeat(40))),
        ),
        text_case("fuel of i64::MAX", "runtime::manifest::out_of_range", replace("50_000_000", &i64::MAX.to_string())),
        text_case(
            "fuel of i64::MIN",
            "runtime::manifest::negative_value",
            replace("50_000_000", &i64::MIN.to_string()),
        ),
        text_case(
            "fuel of 0x7fffffffffffffff",
            "runtime::manifest::out_of_range",
            replace("50_000_000", "0x7fffffffffffffff"),
        ),
        text_case(
            "memory of u64::MAX bytes",
            "runtime::manifest::overflow",
            replace("\"1MiB\"", &format!("{}0", u64::MAX)),
        ),
        text_case(
            "memory of 2^63 - 1 bytes",
            "runtime::manifest::out_of_range",
            replace("\"1MiB\"", &i64::MAX.to_string()),
        ),
        text_case("memory of 16 EiB in GiB", "runtime::manifest::overflow", replace("\"1MiB\"", "\"17179869184GiB\"")),
        text_case(
            "timeout of u64::MAX seconds",
            "runtime::manifest::overflow",
            replace("\"100ms\"", &format!("\"{}s\"", u64::MAX)),
        ),
        text_case(
            "instances of u32::MAX + 1",
            "runtime::manifest::out_of_range",
            replace("instances = 4", "instances = 4294967296"),
        ),
        text_case(
            "wasm path to /proc/self/mem",
            "runtime::manifest::invalid_wasm_path",
            replace("\"target.wasm\"", "\"/proc/self/mem\""),
        ),
        text_case(
            "wasm path climbing out",
            "runtime::manifest::invalid_wasm_path",
            replace("\"target.wasm\"", "\"a/b/../../../etc/shadow\""),
        ),
        text_case(
            "wasm path with a drive letter",
            "runtime::manifest::invalid_wasm_path",
            replace("\"target.wasm\"", "\"C:\\\\evil.wasm\""),
        ),
    ]
}

/// Deterministic bytes (SplitMix64), with a leading 0xff so they are never UTF-8.
pub(crate) fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut bytes: Vec<u8> = (0..len).map(|_| splitmix(&mut state).to_le_bytes()[0]).collect();
    if let Some(first) = bytes.first_mut() {
        *first = 0xff;
    }
    bytes
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\n",
    "#",
    "\\",
    "-",
    "_",
    "0",
    "9",
    "0x",
    "1e9",
    "MiB",
    "MB",
    "ms",
    "s",
    "memory",
    "fuel",
    "timeout",
    "resources",
    "component",
    "99999999999999999999999",
    "\u{feff}",
    "\u{0}",
    "é",
    "\r\n",
    "\t",
    "true",
    "1979-05-27",
];

/// Applies `count` seeded random edits to a valid manifest and checks that
/// every result is accepted or rejected with a coded, in-bounds diagnostic.
fn mutation_storm(count: usize, seed: u64) -> Outcome {
    let mut state = seed;
    let mut accepted = 0usize;
    let mut codes = BTreeSet::new();
    for index in 0..count {
        let text = mutate(VALID, &mut state);
        match text.parse::<ComponentManifest>() {
            Ok(_) => accepted += 1,
            Err(error) => {
                if let Some(problem) = unexplained(&error, text.len()) {
                    return Outcome {
                        observed: format!("mutation {index}: {problem}"),
                        verdict: Verdict::Misclassified,
                        figures: None,
                    };
                }
                codes.insert(error.code_str());
            }
        }
    }
    Outcome {
        observed: format!("{accepted} ok, {} rejected, {} codes", count - accepted, codes.len()),
        verdict: Verdict::Pass,
        figures: None,
    }
}

/// Why a rejection is not properly explained, if it is not.
fn unexplained(error: &ManifestError, len: usize) -> Option<String> {
    if !error.code_str().starts_with("runtime::manifest::") {
        return Some(format!("uncoded error: {error}"));
    }
    if error.problems().is_empty() {
        return Some(format!("no problem listed: {error}"));
    }
    error
        .problems()
        .iter()
        .find(|p| p.span().offset() + p.span().len() > len)
        .map(|p| format!("span {:?} outside the text ({len} bytes)", p.span()))
}

fn mutate(text: &str, state: &mut u64) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let edits = 1 + splitmix(state) % 4;
    for _ in 0..edits {
        let at = (splitmix(state) % (chars.len() as u64 + 1)) as usize;
        match splitmix(state) % 4 {
            0 if at < chars.len() => {
                let end = (at + 1 + (splitmix(state) % 8) as usize).min(chars.len());
                chars.drain(at..end);
            }
            1 => {
                let token = TOKENS[(splitmix(state) % TOKENS.len() as u64) as usize];
                chars.splice(at..at, token.chars());
            }
            2 if at < chars.len() => chars[at] = char::from(b' ' + (splitmix(state) % 95) as u8),
            _ => {
                let line_start = chars[..at].iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
                let line_end = chars[at..].iter().position(|&c| c == '\n').map_or(chars.len(), |i| at + i + 1);
                let line: Vec<char> = chars[line_start..line_end].to_vec();
                chars.splice(line_start..line_start, line);
            }
        }
    }
    let mutated: String = chars.into_iter().collect();
    debug_assert!(mutated.len() <= MAX_MANIFEST_BYTES);
    mutated
}
