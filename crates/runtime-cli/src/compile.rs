//! `wasm-runtime compile`: compiles a component ahead of time into a cache
//! directory that `run` and `serve` (given the same `--cache-dir` and
//! policy) load from without compiling.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use runtime::{Allocation, RuntimeError, loader::CacheSource};

use crate::run::Failure;

/// Arguments of `wasm-runtime compile`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompileArgs {
    /// The component: a binary (.wasm) or its text form (.wat).
    component: PathBuf,
    /// The host policy whose compile budget the component must fit.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// The cache directory to fill.
    #[arg(long, value_name = "DIR", env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: PathBuf,
}

pub(crate) fn compile(args: &CompileArgs) -> ExitCode {
    crate::run::exit_code(execute(args))
}

fn execute(args: &CompileArgs) -> Result<(), Failure> {
    let policy = crate::load_policy(args.policy.as_deref())?;
    // Created and checked by the runtime: an unusable directory is an `io` error naming it.
    runtime::cli_support::check_cache_dir(&args.cache_dir).map_err(RuntimeError::from)?;
    // `run` compiles for an engine that allocates on demand, `serve` for a
    // pooled one; their compiled code is keyed apart when their settings
    // differ, so the cache gets what each will look for.
    for (allocation, command) in [(Allocation::OnDemand, "run"), (Allocation::Pooling, "serve")] {
        let started = Instant::now();
        let runtime = crate::runtime_builder()
            .policy(policy.clone())
            .allocation(allocation)
            .disk_cache(&args.cache_dir)
            .build()?;
        let compiled = runtime.loader().load_file(&args.component).map_err(RuntimeError::from)?;
        let how = match compiled.source {
            CacheSource::Compiled => format!("compiled in {} ms", started.elapsed().as_millis()),
            _ => String::from("already cached"),
        };
        crate::print::stderr_text(&format!(
            "{} for `{command}`: {how} ({})\n",
            args.component.display(),
            args.cache_dir.display()
        ));
    }
    Ok(())
}
