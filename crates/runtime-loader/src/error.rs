//! [`LoadError`]: why a component could not be loaded.

use std::path::PathBuf;

use miette::Diagnostic;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum LoadError {
    /// The input is a core WebAssembly module.
    #[error("this is a core WebAssembly module, not a component")]
    #[diagnostic(
        code(runtime::load::not_a_component),
        help("wrap it with `wasm-tools component new`, or build with a component target such as wasm32-wasip2")
    )]
    NotAComponent,

    /// The input is neither a WebAssembly binary nor valid WAT text.
    #[error("malformed input: {reason}")]
    #[diagnostic(code(runtime::load::malformed), help("pass a component binary (.wasm) or its text form (.wat)"))]
    Malformed {
        /// What is wrong.
        reason: String,
    },

    /// The binary ends in the middle of a section.
    #[error("truncated component: the binary ends in the middle of a section ({size} bytes)")]
    #[diagnostic(code(runtime::load::truncated), help("the file was cut short; rebuild or copy it again"))]
    Truncated {
        /// Bytes present.
        size: usize,
    },

    /// A WebAssembly binary of a version or layer this runtime does not run.
    #[error("unsupported WebAssembly binary: version {version}, layer {layer}")]
    #[diagnostic(
        code(runtime::load::unsupported_version),
        help("this runtime runs components of the current component-model binary format (version 0x0d, layer 1)")
    )]
    UnsupportedVersion {
        /// The header's version field.
        version: u16,
        /// The header's layer field.
        layer: u16,
    },

    /// A compile worker passed the policy's hard compile limits and was
    /// stopped.
    #[error("compiling the component passed the policy's `{limit}` ({value}) and was stopped")]
    #[diagnostic(
        code(runtime::load::compile_limit_exceeded),
        help("if the component is trusted, raise `[compile] {limit}` in the host policy")
    )]
    CompileLimitExceeded {
        /// The policy key: `max-compile-time` or `max-compile-memory`.
        limit: &'static str,
        /// Its value, and what it bounds.
        value: String,
    },

    /// A compile worker ended without compiling and without passing a
    /// compile limit: killed from outside, or crashed.
    #[error("{what}")]
    #[diagnostic(
        code(runtime::load::compile_worker_failed),
        help("the component is not known to be at fault; try again, and see the host's logs if it recurs")
    )]
    CompileWorker {
        /// How it ended.
        what: String,
    },

    /// The input is larger than the loader accepts.
    #[error("the component is {size} bytes; the limit is {limit} bytes")]
    #[diagnostic(code(runtime::load::too_large), help("raise the loader's size limit if this component is trusted"))]
    TooLarge {
        /// The input size (or the cap plus one, for a file read up to the cap).
        size: u64,
        /// The loader's cap.
        limit: u64,
    },

    /// The component is within the size cap but past the compile budget.
    #[error("the component exceeds its compile budget: {}", describe_overs(.overs))]
    #[diagnostic(code(runtime::load::compile_budget), help("{}", widen_overs(.overs)))]
    ExceedsCompileBudget {
        /// Every limit it exceeds, each with the component's real figure.
        overs: Vec<BudgetOver>,
    },

    /// A memory's declared minimum is larger than any budget the policy grants.
    #[error("{memory} declares a minimum of {minimum} bytes; the host policy allows at most {limit} bytes of memory")]
    #[diagnostic(
        code(runtime::load::memory_limit_exceeded),
        help(
            "no manifest under this policy can instantiate it: lower the memory's minimum, or widen the policy's memory range"
        )
    )]
    MemoryMinimumTooLarge {
        /// Which memory, as `memory I of core module M`.
        memory: String,
        /// Its declared minimum, in bytes.
        minimum: u64,
        /// The policy's largest memory budget.
        limit: u64,
    },

    /// The component's memories declare more, at their minimums, than the
    /// memory budget it is loaded with: no instance of it could start.
    #[error(
        "the component's memories declare at least {minimum} bytes at their minimums; its memory budget (resources.memory) is {budget} bytes"
    )]
    #[diagnostic(
        code(runtime::load::memory_limit_exceeded),
        help(
            "give it a memory budget of at least {}MiB: `resources.memory` in its manifest, `--memory` on the command line (the policy's range bounds both)",
            minimum.div_ceil(1 << 20)
        )
    )]
    MemoryMinimumOverBudget {
        /// Its memories' declared minimums (summed when known before
        /// compiling; the largest when checked from a cached compile), in
        /// bytes.
        minimum: u64,
        /// The memory budget it was loaded with, in bytes.
        budget: u64,
    },

    /// The component's tables declare more elements at their minimums than
    /// its table budget: no instance of it could start.
    #[error(
        "the component's tables declare at least {minimum} elements at their minimums; its table budget (resources.table-elements) is {budget}"
    )]
    #[diagnostic(
        code(runtime::load::table_limit_exceeded),
        help(
            "give it a table budget of at least {minimum}: `table-elements` in its manifest's [resources] (the policy's range bounds it)"
        )
    )]
    TableMinimumOverBudget {
        /// Its tables' declared minimums (summed when known before
        /// compiling; the largest when checked from a cached compile), in
        /// elements.
        minimum: u64,
        /// The table budget it was loaded with.
        budget: u64,
    },

    /// A table's declared minimum is larger than any budget the policy grants.
    #[error("{table} declares a minimum of {minimum} elements; the host policy allows at most {limit}")]
    #[diagnostic(
        code(runtime::load::table_limit_exceeded),
        help(
            "no manifest under this policy can instantiate it: lower the table's minimum, or widen the policy's table-elements limit"
        )
    )]
    TableMinimumTooLarge {
        /// Which table, as `table I of core module M`.
        table: String,
        /// Its declared minimum, in elements.
        minimum: u64,
        /// The policy's largest table budget.
        limit: u64,
    },

    /// One instance of the component needs more of the instance pool than
    /// the runtime has.
    #[error(
        "one instance of the component defines {memories} memories and {tables} tables, which take {needed} of the instance pool's slots; the runtime has {slots}"
    )]
    #[diagnostic(
        code(runtime::load::pool_too_small),
        help(
            "a pool slot holds 2 memories and 2 tables: raise the policy's `[resources] concurrent-instances`, or load it into a runtime that allocates on demand"
        )
    )]
    PoolTooSmall {
        /// Memories one instance defines.
        memories: u32,
        /// Tables one instance defines.
        tables: u32,
        /// Pool slots one instance takes.
        needed: u32,
        /// Slots the runtime has.
        slots: u32,
    },

    /// Validation or compilation failed.
    #[error("the component failed to compile: {message}")]
    #[diagnostic(
        code(runtime::load::compile_failed),
        help("the binary is invalid or uses features this runtime disables")
    )]
    CompileFailed {
        /// wasmtime's message.
        message: String,
    },

    /// The component uses component-model async (a WASI 0.3 component:
    /// async functions, streams, futures) and the policy does not run it.
    #[error("the component uses component-model async (WASI 0.3), which this host's policy does not run")]
    #[diagnostic(
        code(runtime::load::needs_component_model_async),
        help(
            "set `[engine] component-model-async = true` in the policy file (--policy FILE): every call of every component then pays wasmtime's concurrency support"
        )
    )]
    NeedsComponentModelAsync,

    /// The component imports something the host does not provide.
    #[error("the host does not provide what the component imports: {message}")]
    #[diagnostic(code(runtime::load::link_failed))]
    LinkFailed {
        /// wasmtime's message, which names the first import it could not satisfy.
        message: String,
        /// Every import of the component, as help.
        #[help]
        imports: String,
    },

    /// The manifest names no component file and none was given.
    #[error("{} has no `component.wasm`", manifest.display())]
    #[diagnostic(
        code(runtime::load::no_component_path),
        help("add `wasm = \"component.wasm\"` to [component], or pass the component path explicitly")
    )]
    NoComponentPath {
        /// The manifest.
        manifest: PathBuf,
    },

    /// A preopened directory the manifest grants cannot be granted.
    #[error("cannot preopen {host} as `{guest}`: {reason}")]
    #[diagnostic(
        code(runtime::load::dir_grant),
        help(
            "a granted directory must exist, and a relative one must stay inside its base directory even through symlinks"
        )
    )]
    DirGrant {
        /// The directory as the guest would see it.
        guest: String,
        /// The host path as resolved.
        host: String,
        /// What is wrong.
        reason: String,
    },

    /// Another process holds this read-write directory: one process at a
    /// time may, so that N processes never hold more than one quota.
    #[error("cannot grant {host} read-write as `{guest}`: {holder} holds it read-write")]
    #[diagnostic(
        code(runtime::load::grant_busy),
        help(
            "a read-write directory belongs to one process at a time; stop the holder, give each process its own directory, or grant it read-only (`ro`) to all of them"
        )
    )]
    GrantBusy {
        /// The directory as the guest would see it.
        guest: String,
        /// The host path.
        host: String,
        /// The process holding it, as the OS tells (`process 1234 (wasm-runtime)`).
        holder: String,
    },

    /// The manifest grants what this runtime's policy refuses, whatever
    /// policy it was parsed or built with.
    #[error("`{grant}` asks for a grant this runtime's policy refuses (its `[grants] {policy_key}`)")]
    #[diagnostic(
        code(runtime::load::grant_refused),
        help(
            "every load checks the manifest against the runtime's own policy: remove the grant, or allow it in the policy the runtime was built with"
        )
    )]
    GrantRefused {
        /// The manifest key, e.g. `wasi.network`.
        grant: &'static str,
        /// The policy key that refuses it, e.g. `network`.
        policy_key: &'static str,
    },

    /// The disk cache's directory cannot be used (see
    /// [`check_cache_dir`](crate::check_cache_dir)): the component is not to blame.
    #[error("cannot use {} as the compile cache directory: {problem}", dir.display())]
    #[diagnostic(code(runtime::load::cache_dir), help("{fix}"))]
    CacheDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it (in the message already, so not a `source`).
        problem: crate::CacheDirProblem,
        /// How to fix it.
        fix: String,
    },

    /// The engine could not be created (wasmtime refused its configuration,
    /// or its epoch ticker could not start): the host's fault.
    #[error("cannot create the engine: {message}")]
    #[diagnostic(code(runtime::load::engine))]
    Engine {
        /// What failed.
        message: String,
    },

    /// The file could not be read.
    #[error("cannot read {}: {}", path.display(), source)]
    #[diagnostic(code(runtime::load::io))]
    Io {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl LoadError {
    /// The stable kind name: not-a-component, malformed, too-large,
    /// memory-limit-exceeded, table-limit-exceeded, compile-failed,
    /// compile-limit-exceeded, compile-worker-failed, link-failed, grant-invalid, grant-refused, grant-busy, io (or
    /// internal: the engine could not be created).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotAComponent => "not-a-component",
            Self::Malformed { .. } | Self::Truncated { .. } | Self::UnsupportedVersion { .. } => "malformed",
            Self::TooLarge { .. } | Self::ExceedsCompileBudget { .. } | Self::PoolTooSmall { .. } => "too-large",
            Self::MemoryMinimumTooLarge { .. } | Self::MemoryMinimumOverBudget { .. } => "memory-limit-exceeded",
            Self::TableMinimumTooLarge { .. } | Self::TableMinimumOverBudget { .. } => "table-limit-exceeded",
            Self::CompileFailed { .. } => "compile-failed",
            Self::NeedsComponentModelAsync => "component-model-async-disabled",
            Self::CompileLimitExceeded { .. } => "compile-limit-exceeded",
            Self::CompileWorker { .. } => "compile-worker-failed",
            Self::LinkFailed { .. } => "link-failed",
            Self::Io { .. } | Self::NoComponentPath { .. } | Self::CacheDir { .. } => "io",
            Self::DirGrant { .. } => "grant-invalid",
            Self::GrantRefused { .. } => "grant-refused",
            Self::GrantBusy { .. } => "grant-busy",
            Self::Engine { .. } => "internal",
        }
    }
}

/// One compile-budget limit a component exceeds, with the component's real
/// figure (counted to the end of the binary) and the policy key that would
/// admit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetOver {
    /// What was counted.
    pub what: &'static str,
    /// How many the component has.
    pub found: u64,
    /// The budget.
    pub limit: u64,
    /// The `[compile]` key of a policy file that sets this budget.
    pub key: &'static str,
    /// Whether the key takes a size (`"7MiB"`) rather than a count.
    pub size: bool,
}

fn describe_overs(overs: &[BudgetOver]) -> String {
    let each: Vec<String> =
        overs.iter().map(|over| format!("{} {} (the budget allows {})", over.found, over.what, over.limit)).collect();
    each.join("; ")
}

fn widen_overs(overs: &[BudgetOver]) -> String {
    let keys: Vec<String> = overs
        .iter()
        .map(|over| match over.size {
            // Rounded up to a whole MiB, so the figure always admits it.
            true => format!("{} = \"{}MiB\"", over.key, over.found.div_ceil(1 << 20)),
            false => format!("{} = {}", over.key, over.found),
        })
        .collect();
    format!(
        "such a component takes the compiler long and much memory; a host that trusts it admits it with a policy file (wasm-runtime --policy FILE) whose [compile] table says {} (examples/policy/wide.toml is one)",
        keys.join(", ")
    )
}
