//! The README's Rust blocks, compiled and run here as written (each test
//! checks its copy is the README's, line for line), from the repository's
//! root as a reader runs them. The serving block runs in `runtime-http`.

use runtime::Val;

use crate::readme_blocks::{assert_holds_block, repository, rust_block_count};
use crate::{TestResult, tokio};

#[test]
fn every_rust_block_of_the_readme_has_its_test() -> TestResult {
    let readme = std::fs::read_to_string(repository().join("README.md"))?;
    // Block 2 is below, block 3 in `readme_actor`; blocks 1 (a guest's
    // source) and 4 are runtime-http's `readme` tests.
    assert_eq!(rust_block_count(&readme), 4, "a Rust block was added to or removed from the README: give it a test");
    Ok(())
}

#[test]
#[allow(clippy::print_stdout, clippy::print_stderr, reason = "the README's snippet prints its outcome")]
fn the_readme_s_first_embedding_block_runs_as_written() -> TestResult {
    // Its paths are the repository's; the other tests name theirs absolutely.
    std::env::set_current_dir(repository())?;
    tokio()?.block_on(async {
        // --- README block 2 ---
        let runtime = runtime::Runtime::builder().build()?;
        // The manifest's limits and grants, validated against the runtime's policy at load:
        let manifest = runtime::ComponentManifest::from_path("examples/rust-guest/Component.toml")?;
        let component = runtime.load_file("fixtures/guests/rust-guest.wasm", &manifest, "examples/rust-guest")?;
        match component.call_async("greet", &[Val::String("you".into())]).await {
            Ok(outcome) => println!("{:?} used {} fuel", outcome.results, outcome.report.fuel_consumed),
            Err(error) => eprintln!("{error} ({})", error.kind()), // e.g. deadline-exceeded
        }
        // --- end of block 2 ---
        let outcome = component.call_async("greet", &[Val::String("you".into())]).await?;
        assert!(matches!(&outcome.results[..], [Val::String(text)] if text.contains("you")), "{:?}", outcome.results);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    assert_holds_block(include_str!("readme.rs"), 2)
}
