//! [`HostFunctionError`]: how a host function's failure crosses into a crash report.

/// The error a host function returns to end the guest's call: either its own
/// error (`host-error`) or a panic the runtime caught (`host-panic`). Host
/// functions return it as a `wasmtime::Error`; the classifier finds it there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host function `{function}` {}: {message}", if *.panicked { "panicked" } else { "failed" })]
pub struct HostFunctionError {
    /// The host function, as `interface#name`.
    pub function: String,
    /// Whether the function panicked rather than returned an error.
    pub panicked: bool,
    /// The error message or the panic payload.
    pub message: String,
}

/// The message of a caught panic's payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
