//! The Rust guest's cached cold start, through the runtime and bare: the
//! component is compiled already (in the runtime's disk cache; for bare
//! wasmtime, precompiled to a `.cwasm`), not in memory, and is loaded,
//! linked against WASI, instantiated and called once.

use std::path::{Path, PathBuf};

use runtime::{Runtime, Val};

use super::bare::BareColdStart;
use super::{Row, interleaved, limits, row};

/// The committed build of `fixtures/guests/rust-guest`.
const RUST_GUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/guests/rust-guest.wasm");

pub(super) fn cached_cold_start(tokio: &tokio::runtime::Runtime) -> Result<Row, String> {
    let dir = std::env::temp_dir().join(format!("wasm-runtime-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let measured = measure(tokio, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, bare) = measured?;
    Ok(row("cached cold start, Rust guest (disk cache)", ours, Some(bare), "<= 1.5x bare", |ratio| ratio <= 1.5))
}

fn measure(tokio: &tokio::runtime::Runtime, dir: &Path) -> Result<(f64, f64), String> {
    let runtime = Runtime::builder().disk_cache(dir.join("cache")).build().map_err(|e| e.to_string())?;
    let manifest = limits("4MiB", "1_000_000_000", "1s")?;
    let path = PathBuf::from(RUST_GUEST);
    runtime.load_file(&path, &manifest, ".").map_err(|e| e.to_string())?;
    // Let the entry settle, as one written minutes ago has: the first load
    // after that verifies it in full and stamps it (see the disk cache).
    #[expect(clippy::disallowed_methods, reason = "the cache entry must really age: a ctime cannot be set back")]
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    runtime.loader().evict_from_memory(None);
    runtime.load_file(&path, &manifest, ".").map_err(|e| e.to_string())?;
    let wasm = std::fs::read(&path).map_err(|e| e.to_string())?;
    let cwasm = dir.join("rust-guest.cwasm");
    let bare = BareColdStart::prepare(&runtime::HostPolicy::default(), &wasm, &cwasm)?;
    let args = [Val::String("world".into())];
    let expected = [Val::String("hello, world!".into())];

    let ours = || async {
        runtime.loader().evict_from_memory(None);
        let guest = runtime.load_file(&path, &manifest, ".").map_err(|e| e.to_string())?;
        guest.call_async("greet", &args).await.map(|outcome| outcome.results).map_err(|e| e.to_string())
    };
    // Both must work before their times mean anything.
    if tokio.block_on(ours())? != expected || tokio.block_on(bare.run(&cwasm, &["greet"], &args))? != expected {
        return Err("the cold-start call returned something else than `hello, world!`".into());
    }
    Ok(interleaved(
        11,
        10,
        || drop(tokio.block_on(ours())),
        || drop(tokio.block_on(bare.run(&cwasm, &["greet"], &args))),
    ))
}
