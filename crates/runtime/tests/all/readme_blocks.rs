//! The README's Rust blocks, held line for line by the tests that run them.
//!
//! A test marks its copy of block N with `// --- README block N ---` and
//! `// --- end of block N ---`; inside, one line ending in `// test only`
//! may be the test's own (a stand-in for a ctrl-c, say) and is not compared.
//! Shared with `runtime-http`'s tests, which run the serving block.

use std::path::{Path, PathBuf};

/// The repository's root, where the README's paths start.
pub(crate) fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails unless `test_source`'s copy of README block `n` (1-based) is that
/// block, line for line (indentation and blank lines aside).
pub(crate) fn assert_holds_block(test_source: &str, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    let block = rust_blocks(&readme).nth(n - 1).ok_or_else(|| format!("the README has no Rust block {n}"))?;
    let (start, end) = (format!("// --- README block {n} ---"), format!("// --- end of block {n} ---"));
    let copy = test_source
        .split(start.as_str())
        .nth(1)
        .and_then(|rest| rest.split(end.as_str()).next())
        .ok_or_else(|| format!("the test has no `{start}` ... `{end}`"))?;
    let (own, ours): (Vec<&str>, Vec<&str>) = significant(copy).partition(|line| line.ends_with("// test only"));
    assert!(own.len() <= 1, "the test's copy of block {n} has more than one line of its own: {own:?}");
    let theirs: Vec<&str> = significant(block).collect();
    assert_eq!(ours, theirs, "README block {n} and its test differ");
    Ok(())
}

/// How many Rust blocks the README has.
#[allow(dead_code, reason = "runtime-http's tests include this file and count no blocks")]
pub(crate) fn rust_block_count(readme: &str) -> usize {
    rust_blocks(readme).count()
}

/// Fails unless README block `n` is the file at `path` (from the
/// repository's root), line for line: a guest's source, whose committed
/// build the calling test runs.
#[allow(dead_code, reason = "only runtime-http's tests hold a guest's source")]
pub(crate) fn assert_block_is_file(n: usize, path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    let block = rust_blocks(&readme).nth(n - 1).ok_or_else(|| format!("the README has no Rust block {n}"))?;
    let file = std::fs::read_to_string(repository().join(path))?;
    assert_eq!(
        significant(block).collect::<Vec<_>>(),
        significant(&file).collect::<Vec<_>>(),
        "README block {n} and {path} differ"
    );
    Ok(())
}

fn significant(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty())
}

/// The bodies of the README's fences whose info string starts with `rust`
/// (`rust`, `rust,no_run`, ...).
fn rust_blocks(readme: &str) -> impl Iterator<Item = &str> {
    readme.split("\n```rust").skip(1).filter_map(|rest| rest.split_once('\n')?.1.split("```").next())
}
