//! The compile cache as the CLI meets it: bounded reads of component files,
//! unusable cache directories named as such, `run` carrying on without one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::TestResult;

const GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-guest.wasm");
const LIMITS: [&str; 6] = ["--memory", "4MiB", "--fuel", "100000000", "--timeout", "5s"];

fn scratch_dir(name: &str) -> Result<PathBuf, std::io::Error> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-cache-{name}"));
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(&dir)?;
    } else {
        let _ = std::fs::remove_file(&dir);
    }
    Ok(dir)
}

#[test]
fn inspect_stops_reading_at_the_component_size_cap() -> TestResult {
    let started = Instant::now();
    let output = crate::wasm_runtime(&["inspect", "/dev/zero"])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("too_large"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn a_cache_directory_that_is_a_file_is_an_io_error_naming_it_and_the_fix() -> TestResult {
    let file = scratch_dir("a-file")?;
    std::fs::write(&file, "")?;
    let path = file.to_str().ok_or("path")?;
    for command in [&["compile", GUEST, "--cache-dir", path][..], &["inspect", GUEST, "--cache-dir", path]] {
        let output = crate::wasm_runtime(command)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(stderr.contains("runtime::load::cache_dir"), "{command:?}: {stderr}");
        assert!(stderr.contains(&format!("cannot use {path} as the compile cache directory")), "{stderr}");
        assert!(stderr.contains("not a directory") && stderr.contains("remove the file"), "{stderr}");
        assert!(!stderr.contains("failed to compile"), "the component is not blamed: {stderr}");
    }
    Ok(())
}

#[test]
fn run_falls_back_to_a_private_cache_with_a_warning() -> TestResult {
    let file = scratch_dir("run-file")?;
    std::fs::write(&file, "")?;
    let path = file.to_str().ok_or("path")?;
    let mut args = vec!["run", GUEST, "--cache-dir", path, "--invoke", "greet(\"cache\")"];
    args.extend(LIMITS);
    let output = crate::wasm_runtime(&args)?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("hello, cache!"));
    assert!(stderr.contains(&format!("cannot use {path}")) && stderr.contains("private temporary cache"), "{stderr}");
    assert_eq!(std::fs::read(&file)?, b"", "the file was left alone");
    Ok(())
}

#[test]
fn a_cache_directory_others_may_write_is_refused() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch_dir("world-writable")?;
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    let path = dir.to_str().ok_or("path")?;
    let output = crate::wasm_runtime(&["compile", GUEST, "--cache-dir", path])?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("other users may write") && stderr.contains("chmod go-w"), "{stderr}");
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0, "nothing written into it");
    Ok(())
}
