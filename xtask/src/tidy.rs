//! The dependency rules of ARCHITECTURE.md, checked over `cargo metadata`:
//! internal dependencies point one way, and each layer keeps out the crates it
//! must not name (no wasmtime in the manifest crate, tokio only from the async
//! layer up).

use std::collections::BTreeMap;
use std::process::Command;

use serde::Deserialize;

/// For each workspace crate: the internal crates it may depend on, and external
/// crates it must not depend on.
const RULES: &[(&str, &[&str], &[&str])] = &[
    ("runtime-manifest", &[], &["wasmtime", "wasmtime-wasi", "tokio"]),
    ("runtime-limits", &["runtime-manifest"], &["tokio"]),
    // The loader knows no store, call or WASI; the call kernel no WASI,
    // file cache, compile process or temporary file; WASI no executor.
    ("runtime-loader", &["runtime-manifest", "runtime-limits"], &["tokio", "wasmtime-wasi", "wasmtime-wasi-http"]),
    ("runtime-core", &["runtime-manifest", "runtime-limits", "runtime-loader"], CORE_MUST_NOT_NAME),
    ("runtime-wasi", &["runtime-manifest", "runtime-limits", "runtime-core"], &[]),
    ("runtime-async", &["runtime-manifest", "runtime-limits", "runtime-loader", "runtime-core"], &[]),
    (
        "runtime",
        &["runtime-manifest", "runtime-limits", "runtime-loader", "runtime-core", "runtime-wasi", "runtime-async"],
        &[],
    ),
    // The serving layer sits above the facade and below the CLI.
    ("runtime-http", &["runtime", "workspace-hack"], &[]),
    ("runtime-cli", &["runtime", "runtime-http", "workspace-hack"], &[]),
    // The tools measure below the facade too: the engine configuration the
    // bare-wasmtime baselines share, the loader on its own.
    // The task runner: the attack suite and the bench harness are crates of their own.
    ("xtask", &["attacks", "benches", "workspace-hack"], &[]),
    // The attack suite attacks through the facade, the server and the CLI.
    ("attacks", &["runtime", "runtime-http", "workspace-hack"], &[]),
    ("benches", &["runtime", "runtime-core", "runtime-http", "attacks", "workspace-hack"], &[]),
    ("workspace-hack", &[], &["wasmtime"]),
];

/// Dependencies a crate may name only with these features: runtime-wasi
/// uses tokio's I/O traits (WASI 0.3 output is an `AsyncWrite`) and its
/// channels (`sync`), never its executor, timers or I/O drivers.
const FEATURES_ONLY: &[(&str, &str, &[&str])] = &[("runtime-wasi", "tokio", &["sync"])];

/// The call kernel knows no WASI, no process and no file cache.
const CORE_MUST_NOT_NAME: &[&str] =
    &["tokio", "wasmtime-wasi", "wasmtime-wasi-http", "http", "rustix", "tempfile", "wait-timeout", "rlimit", "blake3"];

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
}

#[derive(Deserialize)]
struct Package {
    id: String,
    name: String,
    dependencies: Vec<Dependency>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    /// `null` for normal dependencies, `"dev"` or `"build"` otherwise.
    kind: Option<String>,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default = "default_features")]
    uses_default_features: bool,
}

fn default_features() -> bool {
    true
}

/// Checks every rule and the one feature set; the error lists every broken one.
pub(crate) fn check() -> Result<(), String> {
    dependency_rules()?;
    narrow_facade()?;
    one_feature_set()
}

/// The most top-level names (types, functions, modules) the facade may
/// export: one rustdoc screen; the rest lives in its modules.
const MAX_FACADE_NAMES: usize = 45;

/// The facade's top-level names, read from `crates/runtime/src/lib.rs`:
/// each `pub use` item and each `pub` item at the crate root, the bodies of
/// its `pub mod` blocks left out.
fn facade_names(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut statement = String::new();
    for line in source.lines() {
        let trimmed = line.trim_start();
        if depth == 0 && (trimmed.starts_with("pub use ") || !statement.is_empty()) {
            statement.push_str(trimmed);
            statement.push(' ');
            if trimmed.ends_with(';') {
                names.extend(used_names(&statement));
                statement.clear();
            }
        } else if depth == 0
            && let Some(rest) =
                ["pub fn ", "pub struct ", "pub enum ", "pub type ", "pub const ", "pub trait ", "pub mod "]
                    .iter()
                    .find_map(|item| trimmed.strip_prefix(item))
        {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            names.push(name);
        }
        depth = (depth + line.matches('{').count()).saturating_sub(line.matches('}').count());
    }
    names
}

/// The names a `pub use ...;` statement brings in (the last segment, or the
/// alias).
fn used_names(statement: &str) -> Vec<String> {
    let body = statement.trim().trim_start_matches("pub use").trim().trim_end_matches(';');
    let items = match (body.find('{'), body.rfind('}')) {
        (Some(open), Some(close)) => body[open + 1..close].split(',').map(str::trim).collect::<Vec<_>>(),
        _ => vec![body],
    };
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .map(|item| {
            let name = item.rsplit(" as ").next().unwrap_or(item);
            name.rsplit("::").next().unwrap_or(name).trim().to_owned()
        })
        .collect()
}

fn narrow_facade() -> Result<(), String> {
    let path = crate::workspace_root().join("crates/runtime/src/lib.rs");
    let source = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let names = facade_names(&source);
    if names.len() > MAX_FACADE_NAMES {
        return Err(format!(
            "the facade exports {} top-level names, more than {MAX_FACADE_NAMES}: move some into a module ({})",
            names.len(),
            names.join(", ")
        ));
    }
    Ok(())
}

/// The build roots of the README's commands, as `cargo tree` arguments.
const ROOTS: &[&[&str]] = &[
    &["--workspace", "-e", "normal,build,dev"],
    &["-p", "xtask", "-e", "normal,build"],
    &["-p", "runtime-cli", "-e", "normal,build"],
    &["-p", "runtime", "-e", "normal,build,dev"],
];

/// Every README command sees the same features on every crate the facade
/// builds on (wasmtime and its dependencies): otherwise each command
/// compiles wasmtime again. `crates/workspace-hack` is where a difference is
/// mended.
fn one_feature_set() -> Result<(), String> {
    let closure: std::collections::BTreeSet<String> = cargo_tree(&["-p", "runtime", "-e", "normal,build"], "{p}")?
        .iter()
        .filter_map(|line| package_key(line))
        .collect();
    let features_of = |root: &[&str]| -> Result<BTreeMap<String, String>, String> {
        Ok(cargo_tree(root, "{p}|{f}")?
            .iter()
            .filter_map(|line| {
                let (package, features) = line.split_once('|')?;
                let key = package_key(package)?;
                closure.contains(&key).then(|| (key, features.to_owned()))
            })
            .collect())
    };
    let reference = features_of(ROOTS[0])?;
    let mut found = Vec::new();
    for root in &ROOTS[1..] {
        for (package, features) in features_of(root)? {
            let wanted = reference.get(&package).map_or("(absent)", String::as_str);
            if *wanted != features {
                found.push(format!(
                    "`cargo tree {}` builds {package} with [{features}], `cargo test --workspace` with [{wanted}]: add the difference to crates/workspace-hack",
                    root.join(" ")
                ));
            }
        }
    }
    if found.is_empty() { Ok(()) } else { Err(found.join("\n")) }
}

/// `name vX.Y.Z` of a `cargo tree` package line (which may end in `(proc-macro)`).
fn package_key(package: &str) -> Option<String> {
    let mut words = package.split_whitespace();
    Some(format!("{} {}", words.next()?, words.next()?))
}

/// The distinct lines `cargo tree` prints for `root` in `format`.
fn cargo_tree(root: &[&str], format: &str) -> Result<std::collections::BTreeSet<String>, String> {
    let mut args = vec!["tree"];
    args.extend_from_slice(root);
    args.extend_from_slice(&["--prefix", "none", "--no-dedupe", "--format", format]);
    let stdout = cargo_stdout(&args)?;
    Ok(String::from_utf8_lossy(&stdout).lines().map(|line| line.trim_end().to_owned()).collect())
}

/// The stdout of `cargo ARGS --manifest-path <workspace>/Cargo.toml`.
fn cargo_stdout(args: &[&str]) -> Result<Vec<u8>, String> {
    let command = args.first().copied().unwrap_or("cargo");
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(crate::workspace_root().join("Cargo.toml"))
        .output()
        .map_err(|e| format!("cannot run cargo {command}: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo {command} failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(output.stdout)
}

fn dependency_rules() -> Result<(), String> {
    let stdout = cargo_stdout(&["metadata", "--format-version", "1", "--no-deps"])?;
    let metadata: Metadata = serde_json::from_slice(&stdout).map_err(|e| e.to_string())?;
    let violations = violations(&metadata);
    if violations.is_empty() { Ok(()) } else { Err(violations.join("\n")) }
}

fn violations(metadata: &Metadata) -> Vec<String> {
    let rules: BTreeMap<&str, (&[&str], &[&str])> =
        RULES.iter().map(|(name, allowed, forbidden)| (*name, (*allowed, *forbidden))).collect();
    let mut found = Vec::new();
    for package in metadata.packages.iter().filter(|p| metadata.workspace_members.contains(&p.id)) {
        let Some((allowed, forbidden)) = rules.get(package.name.as_str()) else {
            found.push(format!("{}: no dependency rule; add it to xtask's tidy RULES", package.name));
            continue;
        };
        for dependency in package.dependencies.iter().filter(|d| d.kind.as_deref() != Some("dev")) {
            let name = dependency.name.as_str();
            let internal = rules.contains_key(name);
            if internal && !allowed.contains(&name) {
                found.push(format!("{} depends on {name}, against the one-way rule", package.name));
            }
            if forbidden.contains(&name) {
                found.push(format!("{} depends on {name}, which its layer must not name", package.name));
            }
            let limited = FEATURES_ONLY.iter().find(|(crate_name, dep, _)| *crate_name == package.name && *dep == name);
            if let Some((_, _, allowed)) = limited
                && (dependency.uses_default_features
                    || dependency.features.iter().any(|f| !allowed.contains(&f.as_str())))
            {
                found.push(format!("{} may depend on {name} only with the features {allowed:?}", package.name));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_facade_names_are_counted_from_its_source() {
        let source = "pub use a::{B, C as D, e::F};\npub use g::H;\npub mod m {\n    pub use x::Y;\n}\npub fn f() {}\nfn private() {}\n";
        assert_eq!(super::facade_names(source), ["B", "D", "F", "H", "m", "f"]);
    }

    #[test]
    fn the_facade_stays_narrow() -> Result<(), String> {
        super::narrow_facade()
    }

    #[test]
    fn crate_dependencies_point_one_way() -> Result<(), String> {
        super::dependency_rules()
    }

    #[test]
    fn every_readme_command_reuses_one_build_of_wasmtime() -> Result<(), String> {
        super::one_feature_set()
    }
}
