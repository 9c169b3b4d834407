//! `wasm-runtime check`: exit 0 with a summary, or exit 1 with diagnostics.

use crate::{TestResult, scratch, wasm_runtime};

fn write_manifest(name: &str, text: &str) -> Result<std::path::PathBuf, std::io::Error> {
    scratch(&format!("{name}.toml"), text)
}

#[test]
fn a_valid_manifest_prints_its_effective_limits() -> TestResult {
    let path = write_manifest(
        "valid",
        "[component]\nname = \"hello\"\nversion = \"0.1.0\"\nwasm = \"hello.wasm\"\n\n[resources]\nmemory = \"1MiB\"\nfuel = 50_000_000\ntimeout = \"100ms\"\n",
    )?;
    let output = wasm_runtime(&["check", path.to_str().ok_or("utf-8 path")?])?;
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout)?;
    assert_eq!(
        stdout.trim_end(),
        "ok: hello 0.1.0: memory 1MiB, fuel 50000000, timeout 100ms, table-elements 10000, instances 100, wasm hello.wasm"
    );
    Ok(())
}

/// The acceptance case: a typo'd key, a missing `fuel` and a memory
/// above the policy give three different diagnostics, each on its own line.
#[test]
fn three_problems_give_three_line_accurate_diagnostics() -> TestResult {
    let path = write_manifest(
        "three",
        "[component]\nname = \"hello\"\nversion = \"0.1.0\"\n\n[resources]\nmemroy = \"1MiB\"\nmemory = \"8MiB\"\ntimeout = \"100ms\"\n",
    )?;
    let output = wasm_runtime(&["check", path.to_str().ok_or("utf-8 path")?])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr)?;
    let file = path.display().to_string();
    for (code, place) in [
        ("runtime::manifest::missing_limit", format!("{file}:5:1")),
        ("runtime::manifest::unknown_key", format!("{file}:6:1")),
        ("runtime::manifest::out_of_range", format!("{file}:7:10")),
    ] {
        assert!(stderr.contains(code), "{code} missing from:\n{stderr}");
        assert!(stderr.contains(&place), "{place} missing from:\n{stderr}");
    }
    assert!(stderr.contains("did you mean `memory`?"), "{stderr}");
    assert!(stderr.contains("add `fuel = 50_000_000` to [resources]"), "{stderr}");
    assert!(stderr.contains("allowed: 512KiB..=4MiB"), "{stderr}");
    Ok(())
}

#[test]
fn an_unreadable_manifest_exits_1() -> TestResult {
    let output = wasm_runtime(&["check", "/nonexistent/Component.toml"])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8(output.stderr)?.contains("runtime::manifest::io"));
    Ok(())
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() -> TestResult {
    assert_eq!(wasm_runtime(&["check"])?.status.code(), Some(1));
    assert_eq!(wasm_runtime(&["frobnicate"])?.status.code(), Some(1));
    let help = wasm_runtime(&["check", "--help"])?;
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8(help.stdout)?.contains("wasm-runtime check"));
    Ok(())
}

/// A component passed where a manifest belongs is refused with its real
/// size, not the bytes read up to the cap.
#[test]
fn a_file_too_large_to_be_a_manifest_reports_its_real_size() -> TestResult {
    let wasm = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-guest.wasm");
    let size = std::fs::metadata(wasm)?.len();
    let output = wasm_runtime(&["check", wasm])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains(&format!("is {size} bytes")), "{stderr}");
    assert!(stderr.contains("runtime::manifest::too_large"), "{stderr}");
    Ok(())
}

#[test]
fn a_policy_file_s_errors_call_it_a_policy() -> TestResult {
    let bad = crate::scratch("bad-policy.toml", "[resources]\nmemory = { max = \"lots\" }\n")?;
    let output = wasm_runtime(&["check", "--policy", bad.to_str().ok_or("path")?])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("runtime::policy::invalid_value") && stderr.contains("policy file"), "{stderr}");
    assert!(!stderr.contains("manifest"), "{stderr}");
    let output = wasm_runtime(&["check", "--policy", "/nonexistent/policy.toml"])?;
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("cannot read policy file") && stderr.contains("runtime::policy::io"), "{stderr}");
    Ok(())
}
