//! `wasm-runtime inspect`: a component's size, function count and initial
//! memory beside the policy's limits, every exported function in the form
//! `--invoke` takes, its imports and exports as WIT, and whether it is in
//! the compile cache.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use runtime::{
    Allocation, LoadError, Runtime, RuntimeError, cli_support::component_binary, cli_support::declared_figures,
    loader::CacheState, loader::ContentHash,
};
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Function, Resolve, WorldItem};

/// Arguments of `wasm-runtime inspect`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectArgs {
    /// The component: a binary (.wasm) or its text form (.wat).
    component: PathBuf,
    /// The compile cache to look in (as given to `run --cache-dir`).
    #[arg(long, env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// The host policy whose limits the component is set beside.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

pub(crate) fn inspect(args: &InspectArgs) -> ExitCode {
    match describe(&args.component, args.cache_dir.as_deref(), args.policy.as_deref()) {
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

fn describe(path: &Path, cache_dir: Option<&Path>, policy: Option<&Path>) -> Result<String, RuntimeError> {
    let mut builder = Runtime::builder()
        // One process, one instance: a pool of slots it never reuses costs
        // milliseconds to reserve.
        .allocation(Allocation::OnDemand)
        .policy(crate::load_policy(policy)?);
    if let Some(dir) = cache_dir {
        builder = builder.disk_cache(dir);
    }
    let runtime = builder.build()?;
    // At most the loader's size cap, as `run` reads it (`inspect /dev/zero` stops there).
    let bytes = runtime.loader().read_file(path)?;
    // Validates and names the input the way `run` would before decoding it.
    let binary = component_binary(&bytes, runtime.policy())?;
    let cache = runtime.loader().cache_state(ContentHash::of(&binary));
    let (wit, functions) = component_wit(&binary)?;
    let cache = match cache {
        CacheState::InMemory => "compiled in this process".to_owned(),
        CacheState::OnDisk(entry) => format!("cached ({})", entry.display()),
        CacheState::NotCached => "not cached".to_owned(),
        _ => "no cache directory given (--cache-dir or WASM_RUNTIME_CACHE_DIR)".to_owned(),
    };
    let policy = runtime.policy();
    let budget = policy.compile_budget();
    let figures = declared_figures(&binary);
    let functions = if functions.is_empty() { "  (none)".to_owned() } else { functions.join("\n") };
    Ok(format!(
        "component: {}\nsize: {} bytes\nfunctions: {} (policy max-functions: {})\n\
         code: {} bytes (policy max-code: {} bytes)\n\
         initial memory: {} bytes, all memories summed (policy memory: at most {})\n\
         compile cache: {cache}\n\nexported functions (call with --invoke 'NAME(ARGS)'):\n{functions}\n\n{wit}\n",
        path.display(),
        binary.len(),
        figures.functions,
        budget.max_functions,
        figures.code_bytes,
        budget.max_code_bytes,
        figures.initial_memory_bytes,
        policy.memory().max,
    ))
}

/// The component's world (its imports and exports) as WIT text, and each
/// exported function as `NAME: func(...)`, with `NAME` as `--invoke` takes
/// it (`iface#func` inside an exported interface).
fn component_wit(binary: &[u8]) -> Result<(String, Vec<String>), RuntimeError> {
    let malformed = |reason: String| RuntimeError::from(LoadError::Malformed { reason });
    let decoded =
        wit_component::decode(binary).map_err(|e| malformed(format!("cannot decode the component: {e:#}")))?;
    let (resolve, package, world) = match decoded {
        DecodedWasm::Component(resolve, world) => {
            let package = resolve.worlds[world].package.ok_or_else(|| malformed("the world has no package".into()))?;
            (resolve, package, Some(world))
        }
        DecodedWasm::WitPackage(resolve, package) => (resolve, package, None),
    };
    let mut functions = Vec::new();
    for (key, item) in world.iter().flat_map(|world| resolve.worlds[*world].exports.iter()) {
        match item {
            WorldItem::Function(function) => functions.push(signature(&resolve, "", function)),
            WorldItem::Interface { id, .. } => {
                let name = resolve.name_world_key(key);
                for function in resolve.interfaces[*id].functions.values() {
                    functions.push(signature(&resolve, &format!("{name}#"), function));
                }
            }
            WorldItem::Type { .. } => {}
        }
    }
    let mut printer = WitPrinter::default();
    printer.print(&resolve, package, &[]).map_err(|e| malformed(format!("cannot print WIT: {e:#}")))?;
    Ok((printer.output.to_string(), functions))
}

/// `  PREFIXNAME: func(PARAMS) -> RESULT` in WIT (`async func` for a
/// component-model async function).
fn signature(resolve: &Resolve, prefix: &str, function: &Function) -> String {
    let type_name = |ty: &wit_parser::Type| {
        let mut printer = WitPrinter::default();
        match printer.print_type_name(resolve, ty) {
            Ok(()) => printer.output.to_string(),
            Err(_) => "?".to_owned(),
        }
    };
    let params: Vec<String> = function.params.iter().map(|p| format!("{}: {}", p.name, type_name(&p.ty))).collect();
    let result = function.result.as_ref().map(|ty| format!(" -> {}", type_name(ty))).unwrap_or_default();
    let kind = if function.kind.is_async() { "async func" } else { "func" };
    format!("  {prefix}{}: {kind}({}){result}", function.name, params.join(", "))
}
