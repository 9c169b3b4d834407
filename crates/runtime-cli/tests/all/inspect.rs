//! `wasm-runtime inspect` and the README's example lines.

use std::path::PathBuf;

use crate::{TestResult, wasm_runtime};

fn repo(path: &str) -> Result<String, Box<dyn std::error::Error>> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    Ok(full.to_str().ok_or("utf-8 path")?.to_owned())
}

#[test]
fn inspect_shows_the_world_as_wit_and_the_size() -> TestResult {
    let output = wasm_runtime(&["inspect", &repo("fixtures/guests/rust-guest.wasm")?])?;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout)?;
    assert!(
        text.contains("export count-matches: func(pattern: string, text: string) -> result<u32, string>;"),
        "{text}"
    );
    assert!(text.contains("import wasi:cli/stdout@0.2.6;"), "{text}");
    let size = std::fs::metadata(repo("fixtures/guests/rust-guest.wasm")?)?.len();
    assert!(text.contains(&format!("size: {size} bytes")), "{text}");
    Ok(())
}

#[test]
fn inspect_reports_the_compile_cache() -> TestResult {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-inspect-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let cache = cache.to_str().ok_or("utf-8 path")?.to_owned();
    let hello = repo("examples/hello/hello.wat")?;
    let before = String::from_utf8(wasm_runtime(&["inspect", &hello, "--cache-dir", &cache])?.stdout)?;
    assert!(before.contains("compile cache: not cached"), "{before}");
    let manifest = repo("examples/hello/Component.toml")?;
    let run = wasm_runtime(&["run", &hello, "--manifest", &manifest, "--cache-dir", &cache, "--invoke", "hello()"])?;
    assert_eq!(run.status.code(), Some(0));
    let after = String::from_utf8(wasm_runtime(&["inspect", &hello, "--cache-dir", &cache])?.stdout)?;
    assert!(after.contains("compile cache: cached ("), "{after}");
    Ok(())
}

#[test]
fn the_readme_examples_run() -> TestResult {
    let hello = wasm_runtime(&[
        "run",
        &repo("examples/hello/hello.wat")?,
        "--manifest",
        &repo("examples/hello/Component.toml")?,
        "--invoke",
        "hello()",
    ])?;
    assert_eq!(String::from_utf8(hello.stdout)?.trim(), "\"hello, world!\"");
    let guest = wasm_runtime(&[
        "run",
        &repo("fixtures/guests/rust-guest.wasm")?,
        "--manifest",
        &repo("examples/rust-guest/Component.toml")?,
        "--invoke",
        "count-matches(\"[0-9]+\", \"a1 b22 c333\")",
    ])?;
    assert_eq!(String::from_utf8(guest.stdout)?.trim(), "ok(3)");
    Ok(())
}

#[test]
fn captured_output_is_shown_after_the_result() -> TestResult {
    let output = wasm_runtime(&[
        "run",
        &repo("fixtures/guests/rust-guest.wasm")?,
        "--manifest",
        &repo("examples/rust-guest/Component.toml")?,
        "--invoke",
        "shout(\"loud\")",
        "--json",
    ])?;
    let body = crate::run_json(&output.stdout)?;
    assert_eq!(body["calls"][0]["report"]["stdout"], "loud\n");
    assert_eq!(body["calls"][0]["report"]["stderr"], "loud\n");
    Ok(())
}

/// Functions inside exported interfaces are listed in the form `--invoke`
/// takes, and the declared size sits beside the policy given.
#[test]
fn interface_functions_and_declared_figures_are_shown_beside_the_policy() -> TestResult {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let wasm = format!("{root}/fixtures/guests/python-guest.wasm");
    let policy = format!("{root}/examples/policy/wide.toml");
    let output = wasm_runtime(&["inspect", &wasm, "--policy", &policy])?;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout)?;
    for line in [
        "  docs:adder/add@0.1.0#add: func(a: u32, b: u32) -> u32",
        "  docs:adder/add@0.1.0#greet: func(name: string) -> string",
        "(policy max-functions: 50000)",
        "(policy memory: at most 64MiB)",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // The declared initial memory (about 12 MiB) is what the default 4 MiB policy refuses.
    let memory: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("initial memory: ")?.split(' ').next()?.parse().ok())
        .ok_or("no initial memory line")?;
    assert!(memory > 4 << 20 && memory < 64 << 20, "{memory}");
    let hello = format!("{root}/examples/hello/hello.wat");
    let stdout = String::from_utf8(wasm_runtime(&["inspect", &hello])?.stdout)?;
    assert!(
        stdout.contains("  hello: func() -> string") && stdout.contains("(policy max-functions: 10000)"),
        "{stdout}"
    );
    Ok(())
}
