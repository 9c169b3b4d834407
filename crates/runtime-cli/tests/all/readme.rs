//! Every `cargo run -p runtime-cli -- ...` line in the README's `sh` blocks
//! runs as written, from the repository's root, with the exit code its
//! comment states (`# exit N: ...`, else 0); a comment that is not about the
//! exit code lists, separated by ` / `, text the output must contain. A line
//! ending in ` &` is a server: it is started, its comment is its first
//! stderr line, the `curl` lines after it run against it (each comment again
//! lists text the output must contain), and SIGTERM must stop it with exit 0.
//! A `mkdir -p DIR` line is made first.

use std::path::Path;
use std::process::Command;

use crate::TestResult;

const PREFIX: &str = "cargo run -p runtime-cli -- ";

/// One README command and what its comment promises.
#[derive(Debug)]
struct Example {
    line: String,
    exit_code: i32,
    output_contains: Vec<String>,
    /// For a server (`... &`): the `curl` lines run against it, each with
    /// the text its output must contain.
    requests: Option<Vec<(String, Vec<String>)>>,
}

/// The text a `# a / b` comment lists.
fn listed(comment: &str) -> Vec<String> {
    comment.split(" / ").map(str::to_owned).collect()
}

fn examples(readme: &str) -> Vec<Example> {
    let mut found = Vec::new();
    let mut in_sh = false;
    let lines: Vec<&str> = readme.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        let Some(rest) = line.strip_prefix(PREFIX).filter(|_| in_sh) else { continue };
        let comment = lines.get(i + 1).and_then(|next| next.strip_prefix("# ")).unwrap_or("");
        if let Some(server) = rest.strip_suffix(" &") {
            let mut requests = Vec::new();
            for (j, next) in lines.iter().enumerate().skip(i + 1) {
                if next.starts_with("```") {
                    break;
                }
                if next.starts_with("curl ") {
                    let expected = lines.get(j + 1).and_then(|c| c.strip_prefix("# ")).unwrap_or("");
                    requests.push(((*next).to_owned(), listed(expected)));
                }
            }
            let output_contains = listed(comment);
            found.push(Example { line: server.to_owned(), exit_code: 0, output_contains, requests: Some(requests) });
            continue;
        }
        let (exit_code, output_contains) = match comment.strip_prefix("exit ") {
            Some(tail) => (tail.split(':').next().and_then(|n| n.trim().parse().ok()).unwrap_or(-1), Vec::new()),
            None if comment.is_empty() => (0, Vec::new()),
            None => (0, listed(comment)),
        };
        found.push(Example { line: rest.to_owned(), exit_code, output_contains, requests: None });
    }
    found
}

/// Splits a shell line into words: spaces separate, quotes group.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut quote, mut started) = (String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (None, ' ') => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (None, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn the_readme_quotes_words_as_a_shell_would() {
    assert_eq!(
        words(r#"run a.wat --invoke 'f("x y", 1)' -- b"#),
        ["run", "a.wat", "--invoke", r#"f("x y", 1)"#, "--", "b"]
    );
}

#[test]
fn every_cli_command_in_the_readme_runs_as_written() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    let examples = examples(&readme);
    assert!(examples.len() >= 6, "the README's commands were not found: {examples:?}");
    // The directories the README makes for its commands, as it makes them.
    for dir in readme.lines().filter_map(|line| line.strip_prefix("mkdir -p ")) {
        std::fs::create_dir_all(dir)?;
    }
    let cache = format!("{}/toolchain-cache", env!("CARGO_TARGET_TMPDIR"));
    for example in examples {
        if let Some(requests) = &example.requests {
            serve_as_written(&root, &example, requests)?;
            continue;
        }
        let output = Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
            .args(words(&example.line))
            .current_dir(&root)
            .env("NO_COLOR", "1")
            .env("WASM_RUNTIME_CACHE_DIR", &cache)
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(example.exit_code),
            "{PREFIX}{}\nstdout: {stdout}\nstderr: {stderr}",
            example.line
        );
        for text in &example.output_contains {
            assert!(stdout.contains(text.as_str()), "{PREFIX}{}\nmissing {text:?} in stdout: {stdout}", example.line);
        }
    }
    Ok(())
}

/// Starts a README server line, runs its `curl` lines, stops it with SIGTERM.
fn serve_as_written(root: &Path, example: &Example, requests: &[(String, Vec<String>)]) -> TestResult {
    use std::io::{BufRead, BufReader, Read};
    let mut server = crate::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
            .args(words(&example.line))
            .current_dir(root)
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?,
    );
    let mut stderr = BufReader::new(server.0.stderr.take().ok_or("no stderr")?);
    let mut first = String::new();
    stderr.read_line(&mut first)?;
    for text in &example.output_contains {
        assert!(first.contains(text.as_str()), "{PREFIX}{}\nfirst stderr line: {first}", example.line);
    }
    for (request, expected) in requests {
        let output = Command::new("sh").args(["-c", request]).output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        for text in expected {
            assert!(stdout.contains(text.as_str()), "{request}\nmissing {text:?} in: {stdout}");
        }
    }
    Command::new("kill").args(["-TERM", &server.0.id().to_string()]).status()?;
    let status = server.0.wait()?;
    let mut rest = String::new();
    stderr.read_to_string(&mut rest)?;
    assert_eq!(status.code(), Some(0), "{PREFIX}{} after SIGTERM\nstderr: {first}{rest}", example.line);
    Ok(())
}

/// The README's TOML blocks: a host policy (it has `[compile]` or
/// `[grants]`) or a component manifest.
fn toml_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_policy_key_the_docs_name_is_one_the_policy_parser_knows() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    // The README's policy and manifest blocks parse as written.
    let blocks = toml_blocks(&readme);
    assert!(blocks.len() >= 2, "{blocks:?}");
    for block in blocks {
        if block.contains("[compile]") || block.contains("[grants]") {
            runtime::HostPolicy::parse("README policy", &block).map_err(|e| format!("{e:?}\n{block}"))?;
        } else {
            let policy = runtime::HostPolicy::default();
            runtime::ComponentManifest::parse("README manifest", &block, &policy)
                .map_err(|e| format!("{e:?}\n{block}"))?;
        }
    }
    // Every `[table] key` the docs mention is a key of that table.
    let mut named = 0;
    for doc in ["README.md", "ARCHITECTURE.md", "SECURITY.md", "BENCHMARKING.md"] {
        let text = std::fs::read_to_string(root.join(doc))?;
        for table in ["resources", "compile", "grants", "engine"] {
            let marker = format!("`[{table}] ");
            for (at, _) in text.match_indices(&marker) {
                let key: String =
                    text[at + marker.len()..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
                if key.is_empty() {
                    continue;
                }
                named += 1;
                let error = runtime::HostPolicy::parse("doc", &format!("[{table}]\n{key} = 0\n")).err();
                let unknown = error.as_ref().is_some_and(|e| format!("{e:?}").contains("unknown_key"));
                assert!(!unknown, "{doc} names `[{table}] {key}`, which no policy accepts: {error:?}");
            }
        }
    }
    assert!(named >= 10, "the docs' policy keys were not found ({named})");
    Ok(())
}
