//! The golden corpus: every file under `tests/ui/invalid` is rejected with the
//! codes and places its `# expect:` lines state, and renders exactly as its
//! `.err` snapshot; every file under `tests/ui/valid` is accepted.
//!
//! `BLESS=1 cargo test -p runtime-manifest` rewrites the `# expect:` lines and
//! the snapshots from the current output; review the diff before committing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use runtime_manifest::{ComponentManifest, Error, HostPolicy};

use crate::line_col;

const EXPECT: &str = "# expect: ";

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn corpus(kind: &str) -> Result<Vec<PathBuf>, std::io::Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui").join(kind);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir)?.map(|entry| entry.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.retain(|path| path.extension().is_some_and(|ext| ext == "toml"));
    files.sort();
    Ok(files)
}

fn parse(path: &Path, text: &str) -> Result<ComponentManifest, Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    ComponentManifest::parse(&name, text, &HostPolicy::default())
}

/// `code at line:col` for every problem, in file order.
fn observed(text: &str, error: &Error) -> Vec<String> {
    error
        .problems()
        .iter()
        .map(|problem| {
            let (line, col) = line_col(text, problem.span().offset());
            format!("{} at {line}:{col}", problem.code_str())
        })
        .collect()
}

fn render(error: &Error) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, error)?;
    Ok(out)
}

/// The text after the leading `# expect:` lines.
fn strip_expectations(text: &str) -> &str {
    let mut rest = text;
    while rest.starts_with(EXPECT) {
        rest = rest.split_once('\n').map_or("", |(_, after)| after);
    }
    rest
}

/// Rewrites the `# expect:` header of `path` from the current output. The
/// header shifts every line, so it is computed with a header of the same size.
fn bless(path: &Path, text: &str) -> Result<String, Box<dyn std::error::Error>> {
    let body = strip_expectations(text);
    let count = parse(path, body).err().map_or(0, |error| error.problems().len());
    let with_header = |lines: &[String]| {
        lines.iter().fold(String::new(), |mut out, line| {
            let _ = writeln!(out, "{EXPECT}{line}");
            out
        }) + body
    };
    // A header can move positions that depend on the end of the text, so
    // repeat until the header describes the text that carries it.
    let mut lines = vec![String::new(); count];
    for _ in 0..4 {
        let candidate = with_header(&lines);
        let error = parse(path, &candidate).err().ok_or("a blessed invalid manifest must be rejected")?;
        let next = observed(&candidate, &error);
        if next == lines {
            break;
        }
        lines = next;
    }
    let blessed = with_header(&lines);
    std::fs::write(path, &blessed)?;
    Ok(blessed)
}

#[test]
fn every_invalid_manifest_is_rejected_with_its_codes_and_places() -> TestResult {
    let bless_mode = std::env::var_os("BLESS").is_some();
    let files = corpus("invalid")?;
    assert!(files.len() >= 25, "the corpus keeps at least 25 invalid manifests, has {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let mut text = std::fs::read_to_string(path)?;
        if bless_mode {
            text = bless(path, &text)?;
        }
        let expected: Vec<String> =
            text.lines().filter_map(|line| line.strip_prefix(EXPECT)).map(str::to_owned).collect();
        let Err(error) = parse(path, &text) else {
            failures.push(format!("{}: accepted", path.display()));
            continue;
        };
        let observed = observed(&text, &error);
        if expected.is_empty() || observed != expected {
            failures.push(format!("{}: expected {expected:?}, observed {observed:?}", path.display()));
        }
        let rendered = render(&error)?;
        let snapshot = path.with_extension("err");
        if bless_mode {
            std::fs::write(&snapshot, &rendered)?;
        } else if std::fs::read_to_string(&snapshot).ok().as_deref() != Some(rendered.as_str()) {
            failures.push(format!("{}: rendering differs from its .err snapshot:\n{rendered}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}

#[test]
fn every_valid_manifest_is_accepted_and_round_trips() -> TestResult {
    let files = corpus("valid")?;
    assert!(!files.is_empty());
    for path in &files {
        let text = std::fs::read_to_string(path)?;
        let manifest = parse(path, &text).map_err(|e| format!("{}: {e:?}", path.display()))?;
        let again: ComponentManifest = manifest.to_toml().parse()?;
        assert_eq!(again, manifest, "{}", path.display());
    }
    Ok(())
}
