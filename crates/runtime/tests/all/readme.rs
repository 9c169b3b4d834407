//! The README's first embedding snippet, compiled and run here as written
//! (the test checks that every line of it is in this file, in order), from
//! the repository's root as a reader runs it.

use runtime::Val;

use crate::{TestResult, tokio};

fn repository() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the README's snippet prints its outcome")]
fn the_readme_s_first_embedding_snippet_runs_as_written() -> TestResult {
    // Its paths are the repository's; the other tests name theirs absolutely.
    std::env::set_current_dir(repository())?;
    tokio()?.block_on(async {
        // --- README ---
        let runtime = runtime::Runtime::builder().build()?;
        // The manifest's limits and grants, validated against the runtime's policy at load:
        let manifest = runtime::ComponentManifest::from_path("examples/rust-guest/Component.toml")?;
        let component = runtime.load_file("fixtures/guests/rust-guest.wasm", &manifest, "examples/rust-guest")?;
        match component.call_async("greet", &[Val::String("you".into())]).await {
            Ok(outcome) => println!("{:?} used {} fuel", outcome.results, outcome.report.fuel_consumed),
            Err(error) => eprintln!("{error} ({})", error.kind()), // e.g. deadline-exceeded
        }
        // --- end ---
        let outcome = component.call_async("greet", &[Val::String("you".into())]).await?;
        assert!(matches!(&outcome.results[..], [Val::String(text)] if text.contains("you")), "{:?}", outcome.results);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // The snippet above is the README's, line for line.
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    let snippet = first_rust_block(&readme).ok_or("the README has no Rust block")?;
    let source = include_str!("readme.rs");
    let ours = source.split("// --- README ---").nth(1).and_then(|rest| rest.split("// --- end ---").next());
    let ours: Vec<&str> = ours.ok_or("markers")?.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let theirs: Vec<&str> = snippet.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(ours, theirs, "the README's first Rust block and this test differ");
    Ok(())
}

fn first_rust_block(readme: &str) -> Option<String> {
    let start = readme.find("```rust\n")? + "```rust\n".len();
    let end = readme[start..].find("```")?;
    Some(readme[start..start + end].to_owned())
}
