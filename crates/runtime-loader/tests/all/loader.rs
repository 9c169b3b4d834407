//! What the loader accepts and how it names what it refuses.

use runtime_loader::{ComponentLoader, LoadError};

use crate::{TestResult, component_wat, engine};

fn loader() -> ComponentLoader {
    ComponentLoader::new(engine().clone())
}

fn small_component() -> Result<Vec<u8>, wat::Error> {
    wat::parse_str(component_wat(r#"(module (func (export "run")))"#, &[("run", "")]))
}

fn refusal(bytes: &[u8]) -> String {
    match loader().load_bytes(bytes) {
        Ok(_) => "accepted".to_owned(),
        Err(error) => format!("{error:?}"),
    }
}

#[test]
fn binaries_and_wat_text_load() -> TestResult {
    let binary = small_component()?;
    let from_binary = loader().load_bytes(&binary)?;
    let wat = component_wat(r#"(module (func (export "run")))"#, &[("run", "")]);
    let from_text = loader().load_bytes(wat.as_bytes())?;
    assert_eq!(from_binary.hash, from_text.hash);
    Ok(())
}

#[test]
fn a_core_module_is_named_as_such_in_binary_and_text() -> TestResult {
    for input in [wat::parse_str("(module)")?, b"(module (func))".to_vec()] {
        let error = loader().load_bytes(&input).err().ok_or("a core module is refused")?;
        assert!(matches!(error, LoadError::NotAComponent), "{error:?}");
        assert_eq!(error.kind(), "not-a-component");
        assert!(error.to_string().contains("not a component"));
    }
    Ok(())
}

#[test]
fn garbage_truncation_and_versions_are_told_apart() -> TestResult {
    let binary = small_component()?;
    assert!(refusal(&[0xff, 0x00, 0x13, 0x37]).starts_with("Malformed"));
    assert!(refusal(b"hello, world").starts_with("Malformed"), "{}", refusal(b"hello"));
    assert!(refusal(&binary[..binary.len() / 2]).starts_with("Truncated"), "{}", refusal(&binary[..binary.len() / 2]));
    assert!(refusal(&binary[..6]).starts_with("Truncated"));
    assert!(refusal(b"\0asm\x02\x00\x00\x00").starts_with("UnsupportedVersion"));
    assert!(refusal(b"\0asm\x0c\x00\x01\x00").starts_with("UnsupportedVersion"));
    Ok(())
}

#[test]
fn a_component_that_ends_in_a_core_module_loads_and_cut_short_it_is_truncated() -> TestResult {
    // The nested module ends where the binary ends: an empty one, and one
    // whose own last section is a custom section.
    for text in ["(component (core module))", r#"(component (core module (func) (@custom "producers" "x")))"#] {
        let binary = wat::parse_str(text)?;
        loader().load_bytes(&binary).map_err(|error| format!("{text}: {error}"))?;
        for cut in 9..binary.len() {
            let refused = refusal(&binary[..cut]);
            assert!(refused.starts_with("Truncated"), "{text} cut at {cut}: {refused}");
        }
    }
    Ok(())
}

#[test]
fn oversized_input_is_refused_and_input_at_the_cap_is_not() -> TestResult {
    let binary = small_component()?;
    let size = binary.len() as u64;
    let at_cap = loader().with_max_bytes(size);
    at_cap.load_bytes(&binary)?;
    let below = loader().with_max_bytes(size - 1);
    let error = below.load_bytes(&binary).err().ok_or("one byte too many")?;
    assert!(matches!(error, LoadError::TooLarge { limit, .. } if limit == size - 1), "{error:?}");
    Ok(())
}

#[test]
fn invalid_code_fails_to_compile() {
    let invalid = component_wat(r#"(module (func (export "run") (result i32)))"#, &[("run", "(result u32)")]);
    assert!(refusal(invalid.as_bytes()).starts_with("CompileFailed"), "{}", refusal(invalid.as_bytes()));
}

fn nested_blocks(depth: usize) -> String {
    component_wat(
        &format!(r#"(module (func (export "run") {}{}))"#, "(block ".repeat(depth), ")".repeat(depth)),
        &[("run", "")],
    )
}

#[test]
fn the_compile_budget_refuses_bombs_the_size_cap_lets_through() -> TestResult {
    let at_limit = nested_blocks(runtime_manifest::DEFAULT_MAX_CONTROL_DEPTH);
    loader().load_bytes(at_limit.as_bytes())?;
    let error = loader().load_bytes(nested_blocks(20_000).as_bytes()).err().ok_or("20,000 nested blocks")?;
    let LoadError::ExceedsCompileBudget { overs } = &error else { return Err(format!("{error:?}").into()) };
    let depth = overs.iter().find(|over| over.what == "levels of nested blocks").ok_or(format!("{overs:?}"))?;
    // The real figure, not where the count passed the budget.
    assert_eq!((depth.found, depth.key), (20_000, "max-control-depth"), "{depth:?}");
    assert_eq!(error.kind(), "too-large");

    // A third more functions than the budget, and the deepest body too: one
    // refusal names both, each with its real figure and the key to widen.
    let functions = runtime_manifest::DEFAULT_MAX_FUNCTIONS * 4 / 3;
    let many: String = (0..functions).map(|i| format!("(func (export \"f{i}\") (result i32) (i32.const 0))")).collect();
    let deep = format!("(func {}{})", "(block ".repeat(20_000), ")".repeat(20_000));
    // As a binary: the same text is past the WAT size cap.
    let binary = wat::parse_str(component_wat(&format!("(module {many} {deep})"), &[("f0", "(result s32)")]))?;
    let error = loader().load_bytes(&binary).err().ok_or("a third too many functions")?;
    let LoadError::ExceedsCompileBudget { overs } = &error else { return Err(format!("{error:?}").into()) };
    let found: Vec<(&str, u64)> = overs.iter().map(|over| (over.key, over.found)).collect();
    assert_eq!(found, [("max-functions", functions as u64 + 1), ("max-control-depth", 20_000)]);
    let help = miette::Diagnostic::help(&error).map(|help| help.to_string()).unwrap_or_default();
    let widen = format!("max-functions = {}, max-control-depth = 20000", functions + 1);
    assert!(help.contains(&widen) && help.contains("--policy"), "the fix is named: {help}");
    Ok(())
}
