//! From a wasmtime error to a [`CrashKind`], with budget attribution.

use runtime_limits::{InstanceBudget, LimitedResource};
use wasmtime::{Trap, WasmBacktrace};

use crate::{CrashKind, DeadlinePhase, HostFunctionError};

/// How a failed call is explained.
pub(crate) struct Classification {
    pub(crate) kind: CrashKind,
    /// The raw kind when a budget denial took precedence over it.
    pub(crate) detail: Option<String>,
    pub(crate) backtrace: Option<String>,
}

/// Classifies `error`, raised while `phase`.
///
/// Fuel and deadline traps stand as they are. Any other failure after the
/// budget refused a growth is attributed to that budget: a Rust guest aborts
/// with `unreachable` when an allocation fails, and an instantiation fails
/// when the initial memory does not fit; either way the cause is the budget.
pub(crate) fn classify(error: &wasmtime::Error, phase: DeadlinePhase, budget: &InstanceBudget) -> Classification {
    let trap = error.downcast_ref::<Trap>().copied();
    let base = match (error.downcast_ref::<HostFunctionError>(), trap) {
        (Some(host), _) if host.panicked => CrashKind::HostPanic,
        (Some(_), _) => CrashKind::HostError,
        (None, Some(trap)) => CrashKind::from_trap(trap, phase),
        (None, None) => CrashKind::Unknown,
    };
    let backtrace = error.downcast_ref::<WasmBacktrace>().map(ToString::to_string);
    let budget_kind = if budget.was_denied(LimitedResource::Memory) {
        Some(CrashKind::MemoryLimitExceeded)
    } else if budget.was_denied(LimitedResource::TableElements) {
        Some(CrashKind::TableLimitExceeded)
    } else {
        None
    };
    match (base, budget_kind) {
        (
            CrashKind::OutOfFuel | CrashKind::DeadlineExceeded { .. } | CrashKind::HostPanic | CrashKind::HostError,
            _,
        )
        | (_, None) => Classification { kind: base, detail: None, backtrace },
        (raw, Some(kind)) => Classification {
            kind,
            // The raw trap kind; a failure that was no trap (an instantiation
            // refused by the budget) is already the report's message.
            detail: trap.map(|_| raw.to_string()),
            backtrace,
        },
    }
}
