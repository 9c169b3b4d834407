//! [`CompileBudget`]: what a component may contain before it is compiled.

use crate::units::{ByteSize, Timeout};

/// Structural limits checked before Cranelift (or the WAT parser) sees a
/// component. The size cap alone does not bound compilation: a few hundred
/// kilobytes of nested components, aliases or one huge function take the
/// compiler seconds and hundreds of megabytes. The defaults admit only inputs
/// that load within 2 s and 300 MB on a 2-core machine (SECURITY.md has the
/// measurement); real toolchains' components (Python, JavaScript) need a
/// wider budget, which the host grants through its policy.
///
/// ```
/// use runtime_manifest::{CompileBudget, HostPolicy};
///
/// let wide = CompileBudget { max_functions: 50_000, max_code_bytes: 64 << 20, ..CompileBudget::default() };
/// let policy = HostPolicy::builder().compile_budget(wide).build()?;
/// assert_eq!(policy.compile_budget().max_functions, 50_000);
/// # Ok::<(), runtime_manifest::PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileBudget {
    /// Most functions across all core modules.
    pub max_functions: usize,
    /// Largest single function body, in bytes.
    pub max_function_body_bytes: usize,
    /// Most bytes of function bodies across all core modules.
    pub max_code_bytes: usize,
    /// Deepest nesting of blocks, loops and ifs in one function.
    pub max_control_depth: usize,
    /// Most instantiations once nested components are flattened: a component
    /// instantiated twice counts its own instantiations twice, so nesting
    /// cannot double the work at every level unseen.
    pub max_instantiations: u64,
    /// Most component-level definitions (canonical functions, aliases,
    /// instances) once nested components are flattened.
    pub max_definitions: u64,
    /// Largest WAT text accepted; the text parser's time grows faster than
    /// linearly in some constructs (inline aliases).
    pub max_wat_bytes: usize,
    /// Wall time a compile in a worker process may take (and CPU time per
    /// compiling thread); past it the worker is killed.
    pub max_compile_time: Timeout,
    /// Address space a compile worker may map; past it its allocations fail
    /// and it ends.
    pub max_compile_memory: ByteSize,
}

/// Functions of the default budget.
pub const DEFAULT_MAX_FUNCTIONS: usize = 10_000;
/// Largest function body of the default budget.
pub const DEFAULT_MAX_FUNCTION_BODY_BYTES: usize = 128 * 1024;
/// Code bytes of the default budget.
pub const DEFAULT_MAX_CODE_BYTES: usize = 2 << 20;
/// Block nesting of the default budget.
pub const DEFAULT_MAX_CONTROL_DEPTH: usize = 1_000;
/// Flattened instantiations of the default budget.
pub const DEFAULT_MAX_INSTANTIATIONS: u64 = 1_000;
/// Flattened component-level definitions of the default budget.
pub const DEFAULT_MAX_DEFINITIONS: u64 = 20_000;
/// WAT text size of the default budget.
pub const DEFAULT_MAX_WAT_BYTES: usize = 256 * 1024;
/// A compile worker's wall time by default: the 18 MB Python guest compiles
/// in about 25 s on one core.
pub const DEFAULT_MAX_COMPILE_TIME: Timeout = Timeout::from_secs(60);
/// A compile worker's address space by default.
pub const DEFAULT_MAX_COMPILE_MEMORY: ByteSize = ByteSize::mib(2048);

impl Default for CompileBudget {
    fn default() -> Self {
        Self {
            max_functions: DEFAULT_MAX_FUNCTIONS,
            max_function_body_bytes: DEFAULT_MAX_FUNCTION_BODY_BYTES,
            max_code_bytes: DEFAULT_MAX_CODE_BYTES,
            max_control_depth: DEFAULT_MAX_CONTROL_DEPTH,
            max_instantiations: DEFAULT_MAX_INSTANTIATIONS,
            max_definitions: DEFAULT_MAX_DEFINITIONS,
            max_wat_bytes: DEFAULT_MAX_WAT_BYTES,
            max_compile_time: DEFAULT_MAX_COMPILE_TIME,
            max_compile_memory: DEFAULT_MAX_COMPILE_MEMORY,
        }
    }
}
