//! [`RuntimeError`]: every way a runtime operation can fail.

use std::time::Duration;

use miette::Diagnostic;

use crate::{CallReport, CrashKind, CrashReport, LoadError};

/// Every way a runtime operation can fail.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The manifest is invalid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] runtime_manifest::Error),

    /// The component could not be loaded.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Load(#[from] LoadError),

    /// The limits exceed the host policy.
    #[error(transparent)]
    #[diagnostic(code(runtime::limits::policy))]
    Limits(#[from] runtime_limits::Error),

    /// The guest crashed.
    #[error("{0}")]
    #[diagnostic(transparent)]
    Crash(Box<CrashReport>),

    /// The call was cancelled before it finished.
    #[error("the call was cancelled")]
    #[diagnostic(code(runtime::cancelled))]
    Cancelled {
        /// Resources used until the cancellation.
        report: Box<CallReport>,
    },

    /// The runtime is at its concurrency limit and the call waited too long.
    #[error("the runtime is busy: no instance slot became free within {waited:?}")]
    #[diagnostic(code(runtime::busy), help("retry later, or raise the host's instance limit"))]
    Busy {
        /// How long the call waited for a slot.
        waited: Duration,
    },

    /// The component has as many instances as its manifest's
    /// `resources.instances` allows, and none ended within the queue's wait.
    #[error(
        "component `{component}` is at its quota of {instances} concurrent instances (`resources.instances`): none became free within {waited:?}"
    )]
    #[diagnostic(
        code(runtime::busy),
        help("retry later, or raise `resources.instances` in the manifest (the host policy caps it)")
    )]
    QuotaReached {
        /// The component's name.
        component: String,
        /// Its quota.
        instances: u32,
        /// How long the call waited in the component's queue.
        waited: Duration,
    },

    /// A reusable instance was stopped mid-call earlier and refuses
    /// further calls.
    #[error("the instance was stopped earlier ({by}) and refuses further calls")]
    #[diagnostic(
        code(runtime::poisoned),
        help("create a new instance; a call stopped mid-way leaves an instance in an unknown state")
    )]
    Poisoned {
        /// What stopped it.
        by: PoisonCause,
    },

    /// The component exports no function of that name.
    #[error("the component has no exported function `{name}`")]
    #[diagnostic(code(runtime::no_such_export))]
    NoSuchExport {
        /// The name asked for.
        name: String,
        /// The functions it does export.
        #[help]
        available: String,
    },

    /// The arguments do not fit the function's parameters.
    #[error("invalid arguments for `{export}`: {reason}")]
    #[diagnostic(code(runtime::invalid_arguments))]
    InvalidArguments {
        /// The export called.
        export: String,
        /// What does not fit.
        reason: String,
    },

    /// The embedder's own code given to `run` failed before it entered the
    /// guest: a `bindgen!` world that does not match the component, a
    /// synchronous wrapper on an async store. Nothing ran, nothing is
    /// poisoned.
    #[error("the embedder's call failed before it entered the guest: {message}")]
    #[diagnostic(
        code(runtime::usage),
        help(
            "check that the `bindgen!` world matches the component's exports, and that async stores get async wrappers"
        )
    )]
    Usage {
        /// wasmtime's message.
        message: String,
    },

    /// The component imports async host functions (or WASI), so it must be
    /// called through the async entry points.
    #[error(
        "this component imports host functions or WASI, which run asynchronously; a synchronous call cannot run it"
    )]
    #[diagnostic(code(runtime::async_required), help("call it through the async entry points, on a Tokio runtime"))]
    AsyncRequired,

    /// A failure of the runtime itself, not of the guest.
    #[error("internal error: {message}")]
    #[diagnostic(code(runtime::internal))]
    Internal {
        /// What failed.
        message: String,
    },
}

impl miette::Diagnostic for CrashReport {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(format!("runtime::crash::{}", self.kind)))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.kind.help()))
    }
}

impl std::error::Error for CrashReport {}

/// Why an instance refuses further calls: its guest stopped at a point
/// nobody chose, so its state is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PoisonCause {
    /// A call crashed (a trap, fuel, a deadline, a budget, a host error...).
    Crash(CrashKind),
    /// A call in progress was cancelled (through the instance's token, or
    /// the call's own).
    Cancelled,
    /// The future of a call in progress was dropped before it ended.
    DroppedMidCall,
}

impl PoisonCause {
    /// A stable name: the crash's kind, `cancelled` or `dropped-mid-call`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Crash(kind) => kind.as_str(),
            Self::Cancelled => "cancelled",
            Self::DroppedMidCall => "dropped-mid-call",
        }
    }
}

impl std::fmt::Display for PoisonCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RuntimeError {
    /// The crash report, if the guest crashed.
    pub fn crash(&self) -> Option<&CrashReport> {
        match self {
            Self::Crash(report) => Some(report),
            _ => None,
        }
    }

    /// What the call used, when it ran (a crash or a cancellation).
    pub fn report(&self) -> Option<&CallReport> {
        match self {
            Self::Crash(crash) => Some(&crash.report),
            Self::Cancelled { report } => Some(report),
            _ => None,
        }
    }

    /// [`report`](Self::report), mutably: for the layer that adds what it
    /// measured (the queue wait).
    pub fn report_mut(&mut self) -> Option<&mut CallReport> {
        match self {
            Self::Crash(crash) => Some(&mut crash.report),
            Self::Cancelled { report } => Some(report),
            _ => None,
        }
    }

    /// The stable name of what went wrong: a crash kind (`out-of-fuel`), a
    /// load kind (`not-a-component`) or the variant (`busy`, `cancelled`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Manifest(_) => "invalid-manifest",
            Self::Load(error) => error.kind(),
            Self::Limits(_) => "limits-exceed-policy",
            Self::Crash(report) => report.kind.as_str(),
            Self::Cancelled { .. } => "cancelled",
            Self::Busy { .. } | Self::QuotaReached { .. } => "busy",
            Self::Poisoned { .. } => "poisoned",
            Self::NoSuchExport { .. } => "no-such-export",
            Self::InvalidArguments { .. } => "invalid-arguments",
            Self::Usage { .. } => "usage",
            Self::AsyncRequired => "async-required",
            Self::Internal { .. } => "internal",
        }
    }
}
