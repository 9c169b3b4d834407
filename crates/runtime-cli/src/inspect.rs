//! `wasm-runtime inspect`: a component's imports and exports as WIT, its
//! size, and whether it is in the compile cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runtime::{CacheState, ContentHash, LoadError, Runtime, RuntimeError, component_binary};
use wit_component::{DecodedWasm, WitPrinter};

/// Arguments of `wasm-runtime inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The component: a binary (.wasm) or its text form (.wat).
    component: PathBuf,
    /// The compile cache to look in (as given to `run --cache-dir`).
    #[arg(long, env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(crate) fn inspect(args: &InspectArgs) -> ExitCode {
    match describe(&args.component, args.cache_dir.as_deref()) {
        Ok(text) => {
            crate::print::stdout_line(text.trim_end_matches('\n'));
            ExitCode::SUCCESS
        }
        Err(error) => {
            let code = if matches!(error, RuntimeError::Load(_)) { crate::EXIT_LOAD } else { crate::EXIT_INVALID };
            crate::report_error(error);
            ExitCode::from(code)
        }
    }
}

fn describe(path: &Path, cache_dir: Option<&Path>) -> Result<String, RuntimeError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    let mut builder = Runtime::builder();
    if let Some(dir) = cache_dir {
        builder = builder.disk_cache(dir);
    }
    let runtime = builder.build()?;
    // Validates and names the input the way `run` would before decoding it.
    let binary = component_binary(&bytes, runtime.engine().policy())?;
    let cache = runtime.loader().cache_state(ContentHash::of(&binary));
    let wit = component_wit(&binary)?;
    let cache = match cache {
        CacheState::InMemory => "compiled in this process".to_owned(),
        CacheState::OnDisk(entry) => format!("cached ({})", entry.display()),
        CacheState::NotCached => "not cached".to_owned(),
        _ => "no cache directory given (--cache-dir or WASM_RUNTIME_CACHE_DIR)".to_owned(),
    };
    Ok(format!("component: {}\nsize: {} bytes\ncompile cache: {cache}\n\n{wit}\n", path.display(), binary.len()))
}

/// The component's world (its imports and exports) as WIT text.
fn component_wit(binary: &[u8]) -> Result<String, RuntimeError> {
    let malformed = |reason: String| RuntimeError::from(LoadError::Malformed { reason });
    let decoded =
        wit_component::decode(binary).map_err(|e| malformed(format!("cannot decode the component: {e:#}")))?;
    let (resolve, package) = match decoded {
        DecodedWasm::Component(resolve, world) => {
            let package = resolve.worlds[world].package.ok_or_else(|| malformed("the world has no package".into()))?;
            (resolve, package)
        }
        DecodedWasm::WitPackage(resolve, package) => (resolve, package),
    };
    let mut printer = WitPrinter::default();
    printer.print(&resolve, package, &[]).map_err(|e| malformed(format!("cannot print WIT: {e:#}")))?;
    Ok(printer.output.to_string())
}
