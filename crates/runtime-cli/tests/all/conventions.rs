//! What a command-line tool is expected to have: a version naming the
//! wasmtime it is built on, shell completions, a man page, and typo
//! suggestions that never name an internal command.

use crate::{TestResult, wasm_runtime};

fn stdout_of(args: &[&str]) -> Result<(Option<i32>, String, String), std::io::Error> {
    let output = wasm_runtime(args)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok((output.status.code(), text(&output.stdout), text(&output.stderr)))
}

#[test]
fn the_version_names_the_runtime_and_its_wasmtime() -> TestResult {
    let (code, stdout, _) = stdout_of(&["--version"])?;
    assert_eq!(code, Some(0));
    let expected = format!("wasm-runtime {} (wasmtime 48.0.", env!("CARGO_PKG_VERSION"));
    assert!(stdout.starts_with(&expected), "{stdout}");
    Ok(())
}

#[test]
fn completions_are_printed_for_each_shell_and_an_unknown_one_is_a_usage_error() -> TestResult {
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef wasm-runtime"), ("fish", "complete -c wasm-runtime")]
    {
        let (code, stdout, stderr) = stdout_of(&["completions", shell])?;
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(stdout.contains(marker) && stdout.contains("serve"), "{shell}: {stdout}");
    }
    let (code, _, stderr) = stdout_of(&["completions", "nosh"])?;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("bash") && stderr.contains("zsh"), "the error lists the shells: {stderr}");
    Ok(())
}

#[test]
fn the_man_page_documents_every_visible_command() -> TestResult {
    let (code, page, _) = stdout_of(&["__man"])?;
    assert_eq!(code, Some(0));
    assert!(page.contains(".TH wasm-runtime 1") && page.contains("(wasmtime 48.0."), "{page}");
    for command in ["check", "run", "inspect", "serve", "compile", "completions"] {
        assert!(page.contains(command), "{command} missing from the man page");
    }
    assert!(!page.contains("__compile"), "internal commands stay out of the page");
    Ok(())
}

#[test]
fn a_mistyped_command_is_never_told_an_internal_one() -> TestResult {
    let (code, _, stderr) = stdout_of(&["compil"])?;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("'compile'"), "the visible command is suggested: {stderr}");
    assert!(!stderr.contains("__"), "{stderr}");
    Ok(())
}
