//! From a wasmtime error to a [`CrashKind`], with budget attribution.

use runtime_limits::LimitedResource;
use wasmtime::{Trap, WasmBacktrace};

use crate::store::HostStage;
use crate::{
    CapabilityDenied, CrashKind, DeadlinePhase, HostFunction, HostFunctionError, HostMemoryExceeded, StoreState,
};

/// How a failed call is explained.
pub(crate) struct Classification {
    pub(crate) kind: CrashKind,
    /// The raw kind when a budget denial took precedence over it.
    pub(crate) detail: Option<String>,
    pub(crate) backtrace: Option<String>,
    /// The host function that failed, when one did.
    pub(crate) function: Option<HostFunction>,
}

/// Classifies `error`, raised while `phase`, in a store whose data is `state`.
///
/// In order: a call into an ungranted interface; a registered host function's own error or panic; a wasm trap;
/// `wasi:cli/exit`; wasmtime's copy and handle limits; a host resource
/// table's refusal; a host-side budget the guest overdrew
/// ([`host_budget`]); a WASI interface's trap on a broken contract (a bare
/// message from wasmtime-wasi); an error raised while a host function (WASI
/// included) was doing its own work, which is that function's; an error of
/// the import's own type raised in an import that never marked its work
/// ([`raised_by_the_body`]); and everything else wasmtime refuses at the
/// boundary (bad strings, lists, pointers, discriminants, handles,
/// `cabi_realloc` results), which is a component-model violation. Types
/// and the call hook's stages decide, never message text. Nothing a guest
/// does ends as `unknown` or as `host-error`.
///
/// Then attribution: a failure that follows a refused growth in the same
/// failing path is the budget's doing ([`follows_a_refused_growth`]).
pub(crate) fn classify<T>(error: &wasmtime::Error, phase: DeadlinePhase, state: &StoreState<T>) -> Classification {
    let trap = error.downcast_ref::<Trap>().copied();
    let backtrace = error.downcast_ref::<WasmBacktrace>();
    let mut function = None;
    let base = if error.downcast_ref::<CapabilityDenied>().is_some() {
        CrashKind::CapabilityDenied
    } else if error.downcast_ref::<HostMemoryExceeded>().is_some() {
        // An import refused to keep more for the guest: the guest's asking.
        if let HostStage::Body(failed) = state.last_host_exit() {
            function = Some(failed.clone());
        }
        CrashKind::HostMemoryLimitExceeded
    } else if let Some(host) = error.downcast_ref::<HostFunctionError>() {
        if host.panicked { CrashKind::HostPanic } else { CrashKind::HostError }
    } else if let Some(trap) = trap {
        CrashKind::from_trap(trap, phase)
    } else if let Some(status) = exit_status(error, state) {
        CrashKind::Exited { status }
    } else if let Some(kind) = wasmtime_limit(error) {
        kind
    } else if let Some(kind) = table_error(error) {
        kind
    } else if let Some(kind) = host_budget(error, state) {
        if let HostStage::Body(failed) = state.last_host_exit() {
            function = Some(failed.clone());
        }
        kind
    } else if let (Some(_), HostStage::Body(failed @ HostFunction::Wasi(_))) = (backtrace, state.last_host_exit())
        && bare_message(error)
    {
        // wasmtime-wasi traps with a bare message only where the interface
        // says a call traps (a write past its `check-write` permit, an empty
        // `poll` list, more random bytes than the guest's budget): the
        // guest broke the interface's contract. Its own failures (I/O, a
        // full table) are typed.
        function = Some(failed.clone());
        CrashKind::ComponentModelViolation
    } else if let (Some(_), HostStage::Body(failed)) = (backtrace, state.last_host_exit()) {
        // Raised inside a guest's call (there is a wasm backtrace) while the
        // last host call was doing its own work: that host function failed.
        function = Some(failed.clone());
        CrashKind::HostError
    } else if let (Some(_), HostStage::Lifting) = (backtrace, state.last_host_exit())
        && raised_by_the_body(error)
    {
        // Raised in a host call that never marked its body (an import the
        // embedder linked without `import_host` that never reached its
        // state), with a type wasmtime never refuses a guest's values with:
        // the import's own error.
        state.count_unmarked_host_call();
        function = Some(HostFunction::Linked);
        CrashKind::HostError
    } else {
        CrashKind::ComponentModelViolation
    };
    let backtrace = backtrace.map(ToString::to_string);
    let budget = &state.budget;
    let budget_kind = if budget.was_denied(LimitedResource::Memory) {
        Some(CrashKind::MemoryLimitExceeded)
    } else if budget.was_denied(LimitedResource::TableElements) {
        Some(CrashKind::TableLimitExceeded)
    } else {
        None
    };
    match budget_kind {
        Some(kind) if follows_a_refused_growth(&base) => Classification {
            kind,
            // The raw trap kind; a failure that was no trap (an instantiation
            // refused by the budget) is already the report's message.
            detail: trap.map(|_| base.to_string()),
            backtrace,
            function,
        },
        _ => Classification { kind: base, detail: None, backtrace, function },
    }
}

/// Whether a failure of kind `raw` is how a guest fails when a growth it
/// needed was refused: a Rust guest aborts (`unreachable`), a C guest uses
/// the null pointer `malloc` gave it (out of bounds), a `cabi_realloc` that
/// could not allocate returns a bad pointer (a component-model violation),
/// an instantiation whose initial memory does not fit fails without a trap.
/// A guest that survived the refusal and then divided by zero, overflowed
/// its stack or ran out of fuel failed for its own reason; so did one whose
/// later growth succeeded (the budget forgets the denial then).
fn follows_a_refused_growth(raw: &CrashKind) -> bool {
    matches!(
        raw,
        CrashKind::Unreachable
            | CrashKind::MemoryOutOfBounds
            | CrashKind::TableOutOfBounds
            | CrashKind::IndirectCallToNull
            | CrashKind::ComponentModelViolation
    )
}

/// Whether `error`, raised in a host call whose body the runtime never saw
/// begin (an import linked by hand that neither called
/// [`StoreState::import_host`] nor reached its state through
/// [`StoreState::host_mut`]), came from that body. wasmtime 48 refuses what
/// a guest passed (lifting arguments, lowering results: bad pointers,
/// lengths, alignment, discriminants, flags, handles, `cabi_realloc`
/// results) with bare messages (`bail!`, `format_err!`), and bad encodings
/// and out-of-range values with the standard library's conversion errors
/// (`str::from_utf8`, `char::decode_utf16`, `char::try_from`,
/// `usize::try_from`). An error of any other type can only be the
/// import's own. A bare message from such an import cannot be told from
/// wasmtime's refusal of the guest's arguments and is the guest's: no guest
/// can make its refusal read as the host's failure (an import marks its
/// work, or returns a typed error, to be blamed for its failures).
fn raised_by_the_body(error: &wasmtime::Error) -> bool {
    !(bare_message(error)
        || error.is::<std::str::Utf8Error>()
        || error.is::<std::char::DecodeUtf16Error>()
        || error.is::<std::char::CharTryFromError>()
        || error.is::<std::num::TryFromIntError>()
        || error.is::<wasmtime::OutOfMemory>())
}

/// Whether `error`'s root cause is a bare message (`Error::msg`, `bail!`,
/// `format_err!`): a `String` or `&'static str` that is the root itself,
/// not a context wrapped around an error of some other type.
fn bare_message(error: &wasmtime::Error) -> bool {
    // The message found must be the root's own (the same value printed
    // twice), not a `context` some other error was given.
    let root = || error.root_cause().to_string();
    match (error.downcast_ref::<String>(), error.downcast_ref::<&'static str>()) {
        (Some(message), _) => root() == *message,
        (None, Some(message)) => root() == *message,
        (None, None) => false,
    }
}

/// A host-side budget the guest overdrew, as the store's host layer tells
/// (wasmtime-wasi-http traps when a `fields` would outgrow its share of the
/// host-memory budget): what the guest asked the host to hold.
fn host_budget<T>(error: &wasmtime::Error, state: &StoreState<T>) -> Option<CrashKind> {
    let extension = state.store_extension()?;
    extension.overdrew_host_budget(error).then_some(CrashKind::HostMemoryLimitExceeded)
}

/// A host resource table's refusal: full is the handle limit (the WASI
/// table holds at most `MAX_WASI_OBJECTS`); a handle that is not there, of
/// the wrong type, or dropped while its children live is the guest's misuse,
/// whichever host function noticed it.
fn table_error(error: &wasmtime::Error) -> Option<CrashKind> {
    use wasmtime::component::ResourceTableError;
    match error.downcast_ref::<ResourceTableError>()? {
        ResourceTableError::Full => Some(CrashKind::HandleLimitExceeded),
        _ => Some(CrashKind::ComponentModelViolation),
    }
}

/// The status of a guest's own exit (`wasi:cli/exit`), as the store's host
/// layer tells.
fn exit_status<T>(error: &wasmtime::Error, state: &StoreState<T>) -> Option<i32> {
    state.store_extension()?.exit_status(error)
}

/// wasmtime 48 reports its per-store copy limit (hostcall fuel) and handle
/// limit as errors without a public type: the copy limit as a private unit
/// struct, the handle limit as a plain message. They are recognised here and
/// only here, by the struct's name and the message's fixed text; the
/// runtime's tests provoke both through real guests, so a wasmtime upgrade
/// that changes either fails those tests instead of reporting a
/// component-model violation silently.
fn wasmtime_limit(error: &wasmtime::Error) -> Option<CrashKind> {
    let root = error.root_cause();
    if format!("{root:?}") == "HostcallFuelExhausted" {
        return Some(CrashKind::CopyLimitExceeded);
    }
    let message = root.to_string();
    if message.contains("store handle limit exceeded") {
        return Some(CrashKind::HandleLimitExceeded);
    }
    None
}

#[cfg(test)]
mod tests {
    use wasmtime::component::ResourceTableError;

    use super::*;

    #[test]
    fn a_handle_that_is_gone_or_of_another_type_is_the_guests_misuse_and_a_full_table_its_limit() {
        // A response-outparam set twice (gone) or forged from another
        // resource's index (wrong type), as wasmtime-wasi-http's `delete` fails.
        for misuse in [ResourceTableError::NotPresent, ResourceTableError::WrongType, ResourceTableError::HasChildren] {
            let error = wasmtime::Error::new(misuse).context("response-outparam.set");
            assert_eq!(table_error(&error), Some(CrashKind::ComponentModelViolation));
        }
        let full = wasmtime::Error::new(ResourceTableError::Full);
        assert_eq!(table_error(&full), Some(CrashKind::HandleLimitExceeded));
        assert_eq!(table_error(&wasmtime::Error::msg("an I/O failure")), None);
    }
}
