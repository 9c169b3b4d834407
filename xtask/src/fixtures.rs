//! `cargo xtask fixtures`: rebuilds the guest fixtures from source: the Rust
//! guests where the `wasm32-wasip2` target is installed, the Python guest
//! with componentize-py (PyPI) and the JavaScript guest with componentize-js
//! (npm), both installed under `target/toolchains` on first use. Tests never
//! need this: the built `.wasm` files are committed beside their source.

use std::path::Path;
use std::process::Command;

/// Each Rust guest: its source directory under `fixtures/guests`, and the built file.
const RUST_GUESTS: &[(&str, &str)] = &[
    ("rust-guest", "release/rust_guest.wasm"),
    ("rust-command", "release/rust-command.wasm"),
    ("rust-http", "release/rust_http.wasm"),
    ("hello-http", "release/hello_http.wasm"),
    ("rust-p3-command", "release/rust-p3-command.wasm"),
    ("rust-p3-http", "release/rust_p3_http.wasm"),
    ("rust-p3-actor", "release/rust_p3_actor.wasm"),
];
/// The toolchain versions the committed components were built with.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.0";
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23";

/// Builds every guest and copies it to `fixtures/guests/<name>.wasm`.
pub(crate) fn rebuild() -> Result<(), String> {
    let root = crate::workspace_root();
    let guests = root.join("fixtures/guests");
    for (name, artifact) in RUST_GUESTS {
        let dir = guests.join(name);
        eprintln!("building {}", dir.display());
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo).args(["build", "--release", "--target", "wasm32-wasip2"]).current_dir(&dir))
            .map_err(|e| format!("{e}; is the target installed? (rustup target add wasm32-wasip2)"))?;
        copy(&dir.join("target/wasm32-wasip2").join(artifact), &guests.join(format!("{name}.wasm")))?;
    }
    let toolchains = root.join("target/toolchains");
    python_guest(&guests, &toolchains)?;
    javascript_guest(&guests, &toolchains)?;
    Ok(())
}

fn python_guest(guests: &Path, toolchains: &Path) -> Result<(), String> {
    let venv = toolchains.join("python");
    let componentize = venv.join("bin/componentize-py");
    if !componentize.exists() {
        eprintln!("installing {COMPONENTIZE_PY} into {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY]))?;
    }
    let dir = guests.join("python-guest");
    let out = guests.join("python-guest.wasm");
    eprintln!("building {}", dir.display());
    run(Command::new(&componentize)
        .args(["-d", "wit", "-w", "adder", "componentize", "app", "-o"])
        .arg(&out)
        .current_dir(&dir))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn javascript_guest(guests: &Path, toolchains: &Path) -> Result<(), String> {
    let dir = toolchains.join("js");
    if !dir.join("node_modules/@bytecodealliance/componentize-js").exists() {
        eprintln!("installing {COMPONENTIZE_JS} into {}", dir.display());
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        std::fs::write(dir.join("package.json"), "{\"private\": true, \"type\": \"module\"}\n")
            .map_err(|e| format!("cannot write package.json: {e}"))?;
        run(Command::new("npm").args(["install", "--silent", COMPONENTIZE_JS]).current_dir(&dir))?;
    }
    let script = dir.join("build.mjs");
    std::fs::write(&script, BUILD_JS).map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    // The adder world, and a `wasi:http/proxy` fetch handler.
    for (name, world) in [("js-guest", "adder"), ("js-http", "http-guest")] {
        let source = guests.join(name);
        let out = guests.join(format!("{name}.wasm"));
        eprintln!("building {}", source.display());
        run(Command::new("node").arg(&script).args(["guest.js", "wit", world]).arg(&out).current_dir(&source))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// `node build.mjs SOURCE WIT_DIR WORLD OUT`: componentize-js's API, as its README shows.
const BUILD_JS: &str = r"import { componentize } from '@bytecodealliance/componentize-js';
import { readFile, writeFile } from 'node:fs/promises';
const [source, witPath, worldName, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(source, 'utf8'), { witPath, worldName });
await writeFile(out, component);
";

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command.status().map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("{shown} failed with {status}")) }
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    eprintln!("wrote {}", to.display());
    Ok(())
}
