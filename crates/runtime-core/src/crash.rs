//! [`CrashKind`] and [`CrashReport`]: what a guest did, in stable words.

use std::fmt;

use crate::CallReport;

/// When a deadline struck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadlinePhase {
    /// While instantiating (start functions, data segments).
    Instantiation,
    /// While the guest ran its own code.
    Guest,
    /// While the guest waited in a host function.
    HostCall,
}

impl DeadlinePhase {
    /// `instantiation`, `guest` or `host-call`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Instantiation => "instantiation",
            Self::Guest => "guest",
            Self::HostCall => "host-call",
        }
    }
}

/// Why a guest's call ended without a result. Every wasmtime trap maps to a
/// kind; the runtime adds its own (fuel, deadline, budgets, host functions).
/// Names from [`CrashKind::as_str`] are stable, for logs and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashKind {
    /// The call used all the fuel it was given.
    OutOfFuel,
    /// The wall-clock deadline passed.
    DeadlineExceeded {
        /// What the call was doing when it struck.
        during: DeadlinePhase,
    },
    /// The memory budget refused a growth the guest needed.
    MemoryLimitExceeded,
    /// The table budget refused a growth the guest needed.
    TableLimitExceeded,
    /// The guest made the host hold more for it than the host-side memory
    /// budget allows (e.g. a `wasi:http/types` `fields` past its share).
    HostMemoryLimitExceeded,
    /// The guest exhausted its call stack.
    StackOverflow,
    /// An out-of-bounds linear memory access.
    MemoryOutOfBounds,
    /// An out-of-bounds table access.
    TableOutOfBounds,
    /// An indirect call through a null table entry.
    IndirectCallToNull,
    /// An indirect call with the wrong signature.
    BadSignature,
    /// Integer overflow (e.g. `i32.div_s` of `INT_MIN` by -1).
    IntegerOverflow,
    /// Integer division by zero.
    IntegerDivisionByZero,
    /// A float that does not fit the target integer.
    BadConversionToInteger,
    /// The guest executed `unreachable` (a Rust guest's panic or abort).
    Unreachable,
    /// A misaligned atomic memory access.
    HeapMisaligned,
    /// Component-model async: every task waits on something no task or host
    /// call can ever complete (a future nobody will resolve, say).
    Deadlock,
    /// The component was entered when the component model forbids it.
    CannotEnterComponent,
    /// A component-model rule was broken while passing values (bad string,
    /// list, pointer, discriminant or char, async misuse).
    ComponentModelViolation,
    /// One transfer out of the guest (an export's results, or one host
    /// call's arguments) would make the host hold more than the copy limit.
    CopyLimitExceeded,
    /// The guest held more resource handles than the host allows.
    HandleLimitExceeded,
    /// The guest called into a WASI or HTTP interface that no grant of its
    /// manifest links (the message names the interface and the grant).
    CapabilityDenied,
    /// The guest called `wasi:cli/exit`: the call did not return.
    Exited {
        /// The exit status: 0 for `exit(ok)`, 1 for `exit(err)`, or the
        /// code of `exit-with-code`.
        status: i32,
    },
    /// A host function panicked.
    HostPanic,
    /// A host function returned an error.
    HostError,
    /// Anything else, including traps this version does not know.
    Unknown,
}

impl CrashKind {
    /// The stable kebab-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OutOfFuel => "out-of-fuel",
            Self::DeadlineExceeded { .. } => "deadline-exceeded",
            Self::MemoryLimitExceeded => "memory-limit-exceeded",
            Self::TableLimitExceeded => "table-limit-exceeded",
            Self::HostMemoryLimitExceeded => "host-memory-limit-exceeded",
            Self::StackOverflow => "stack-overflow",
            Self::MemoryOutOfBounds => "memory-out-of-bounds",
            Self::TableOutOfBounds => "table-out-of-bounds",
            Self::IndirectCallToNull => "indirect-call-to-null",
            Self::BadSignature => "bad-signature",
            Self::IntegerOverflow => "integer-overflow",
            Self::IntegerDivisionByZero => "integer-division-by-zero",
            Self::BadConversionToInteger => "bad-conversion-to-integer",
            Self::Unreachable => "unreachable",
            Self::HeapMisaligned => "heap-misaligned",
            Self::Deadlock => "deadlock",
            Self::CannotEnterComponent => "cannot-enter-component",
            Self::ComponentModelViolation => "component-model-violation",
            Self::CopyLimitExceeded => "copy-limit-exceeded",
            Self::HandleLimitExceeded => "handle-limit-exceeded",
            Self::CapabilityDenied => "capability-denied",
            Self::Exited { .. } => "exited",
            Self::HostPanic => "host-panic",
            Self::HostError => "host-error",
            Self::Unknown => "unknown",
        }
    }

    /// The kind of a wasmtime trap. `Interrupt` is only ever raised by our
    /// deadline callback, so it is a deadline here; the caller knows the phase.
    pub fn from_trap(trap: wasmtime::Trap, during: DeadlinePhase) -> Self {
        use wasmtime::Trap;
        match trap {
            Trap::OutOfFuel => Self::OutOfFuel,
            Trap::Interrupt => Self::DeadlineExceeded { during },
            Trap::StackOverflow => Self::StackOverflow,
            Trap::MemoryOutOfBounds => Self::MemoryOutOfBounds,
            Trap::TableOutOfBounds => Self::TableOutOfBounds,
            Trap::IndirectCallToNull => Self::IndirectCallToNull,
            Trap::BadSignature => Self::BadSignature,
            Trap::IntegerOverflow => Self::IntegerOverflow,
            Trap::IntegerDivisionByZero => Self::IntegerDivisionByZero,
            Trap::BadConversionToInteger => Self::BadConversionToInteger,
            Trap::UnreachableCodeReached => Self::Unreachable,
            Trap::HeapMisaligned => Self::HeapMisaligned,
            Trap::AsyncDeadlock => Self::Deadlock,
            Trap::CannotEnterComponent => Self::CannotEnterComponent,
            Trap::CannotLeaveComponent
            | Trap::InvalidChar
            | Trap::StringOutOfBounds
            | Trap::ListOutOfBounds
            | Trap::InvalidDiscriminant
            | Trap::UnalignedPointer
            | Trap::NoAsyncResult
            | Trap::CannotBlockSyncTask => Self::ComponentModelViolation,
            // `Trap` is non-exhaustive and grows with wasmtime: what we do not
            // know is reported as unknown, with wasmtime's message kept.
            _ => Self::Unknown,
        }
    }

    /// A help line naming the manifest key to raise or what the guest did.
    pub fn help(self) -> &'static str {
        match self {
            Self::OutOfFuel => {
                "the call ran out of fuel: raise `resources.fuel` in Component.toml if the work is legitimate, or look for a loop in the guest"
            }
            Self::DeadlineExceeded { during: DeadlinePhase::Instantiation } => {
                "instantiation (start functions) did not finish before the deadline: raise `resources.timeout`, or look for a loop in the start function"
            }
            Self::DeadlineExceeded { during: DeadlinePhase::HostCall } => {
                "the call waited in a host function past the deadline: raise `resources.timeout`, or make the host call faster"
            }
            Self::DeadlineExceeded { .. } => {
                "the call did not finish before the deadline: raise `resources.timeout` if the work is legitimate, or look for a loop in the guest"
            }
            Self::MemoryLimitExceeded => {
                "the guest needed more linear memory than its budget: raise `resources.memory` (the sum of all memories). A Rust wasm32-wasip2 guest reserves a 1 MiB stack in its memory and needs about 1.4 MiB to start: give it more, or link it with `-C link-arg=-zstack-size=65536`"
            }
            Self::TableLimitExceeded => {
                "the guest needed more table elements than its budget: raise `resources.table-elements`"
            }
            Self::HostMemoryLimitExceeded => {
                "the guest made the host hold more for it than the host-side budget (an HTTP `fields` past its share of it): the budget is `resources.memory` times the host policy's `[resources] host-memory-factor` (4 by default), one 1,024th of it per host object; raise either, or have the guest hold less at once"
            }
            Self::StackOverflow => "the guest exhausted its call stack: look for unbounded recursion",
            Self::MemoryOutOfBounds => "the guest accessed linear memory out of bounds: a bug in the guest",
            Self::TableOutOfBounds => "the guest accessed a table out of bounds: a bug in the guest",
            Self::IndirectCallToNull => "the guest called through a null function pointer: a bug in the guest",
            Self::BadSignature => "the guest called a function pointer with the wrong signature: a bug in the guest",
            Self::IntegerOverflow => "the guest overflowed an integer operation that traps: a bug in the guest",
            Self::IntegerDivisionByZero => "the guest divided an integer by zero: a bug in the guest",
            Self::BadConversionToInteger => {
                "the guest converted a float that does not fit an integer: a bug in the guest"
            }
            Self::Unreachable => {
                "the guest executed `unreachable`, which is how Rust guests panic or abort: check the guest's own error output"
            }
            Self::HeapMisaligned => "the guest made a misaligned atomic access: a bug in the guest",
            Self::Deadlock => {
                "every task of the guest waits on something nothing can complete (a future no task or host call will resolve): a bug in the guest"
            }
            Self::CannotEnterComponent => {
                "the component cannot be entered again, usually because an earlier call on the same instance trapped: use a new instance"
            }
            Self::ComponentModelViolation => {
                "the guest passed a value that breaks the component model's rules (bad pointer, string, list or discriminant): a bug in the guest or its bindings"
            }
            Self::CopyLimitExceeded => {
                "the guest tried to make the host copy more than its copy limit in one transfer (an export's results or one host call's arguments, as host values; a list element costs about 40 bytes): the limit is `resources.memory` times the host policy's copy-limit factor (8 by default); raise `resources.memory`, or return less at once"
            }
            Self::HandleLimitExceeded => {
                "the guest held more resource handles at once than the host policy allows (10,000 by default): drop handles it no longer needs, or ask the host to raise its handle limit"
            }
            Self::CapabilityDenied => {
                "the guest called an interface its manifest grants nothing in: add the grant the message names (and have the host policy allow it), or keep the guest from calling it"
            }
            Self::Exited { .. } => {
                "the guest called `wasi:cli/exit`, so the function did not return a result; the exit status is in the report"
            }
            Self::HostPanic => "a host function panicked: a bug in the host; the instance was discarded",
            Self::HostError => "a host function returned an error: see the message",
            Self::Unknown => "an unexpected failure: see the message and the backtrace",
        }
    }
}

impl fmt::Display for CrashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A guest's call that crashed: the kind, wasmtime's message, the raw trap
/// when a budget denial took precedence, the wasm backtrace and the resource
/// figures of the call.
#[derive(Debug, Clone)]
pub struct CrashReport {
    /// What happened.
    pub kind: CrashKind,
    /// wasmtime's description of the failure.
    pub message: String,
    /// The underlying trap when the kind was attributed to a budget denial
    /// (e.g. `unreachable` after a refused `memory.grow`).
    pub detail: Option<String>,
    /// The wasm call stack at the trap, one frame per line, if any.
    pub wasm_backtrace: Option<String>,
    /// The host function that failed (its interface and name), when one did.
    pub function: Option<String>,
    /// A `host-error`'s own error as the host function returned it, for
    /// the embedder to downcast to its own type
    /// (`crash.source.as_deref().and_then(|e| e.downcast_ref::<MyError>())`).
    pub source: Option<std::sync::Arc<wasmtime::Error>>,
    /// Resources used up to the crash.
    pub report: CallReport,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest crashed: {}", self.kind)?;
        match self.kind {
            CrashKind::DeadlineExceeded { during } => write!(f, " (during {})", during.as_str())?,
            CrashKind::Exited { status } => write!(f, " (status {status})")?,
            _ => {}
        }
        write!(f, ": {}", self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (then: {detail})")?;
        }
        Ok(())
    }
}
