//! [`ManifestProblem`]: one thing wrong with a manifest, pointing at its place.

use miette::{Diagnostic, SourceSpan};

/// One problem found in a manifest. Each variant has a stable diagnostic code
/// (`runtime::manifest::...`), a label on the exact span in the file, and a
/// help line saying how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// The file is not valid TOML.
    #[error("invalid TOML: {message}")]
    #[diagnostic(
        code(runtime::manifest::syntax),
        help("fix the TOML syntax (https://toml.io); strings need double quotes, tables a [header]")
    )]
    Syntax {
        /// The TOML parser's description.
        message: String,
        /// Where the parser stopped.
        #[label("here")]
        span: SourceSpan,
    },

    /// The file is not UTF-8 text.
    #[error("the manifest is not UTF-8 text")]
    #[diagnostic(
        code(runtime::manifest::not_utf8),
        help("a Component.toml is UTF-8 text; was a binary file (the .wasm?) passed instead?")
    )]
    NotUtf8 {
        /// The first byte that is not UTF-8.
        #[label("not UTF-8")]
        span: SourceSpan,
    },

    /// A required table is missing.
    #[error("missing required table `[{table}]`")]
    #[diagnostic(code(runtime::manifest::missing_table))]
    MissingTable {
        /// The missing table.
        table: &'static str,
        /// Where to add it (the end of the file).
        #[label("add [{table}] here")]
        span: SourceSpan,
        /// The table to add.
        #[help]
        help: String,
    },

    /// A required limit is missing from `[resources]`.
    #[error("missing required limit `resources.{key}`")]
    #[diagnostic(code(runtime::manifest::missing_limit))]
    MissingLimit {
        /// The missing key.
        key: &'static str,
        /// Where to add it.
        #[label("add `{key}` to this table")]
        span: SourceSpan,
        /// A line to add.
        #[help]
        help: String,
    },

    /// A required key other than a limit is missing.
    #[error("missing required key `{key}`")]
    #[diagnostic(code(runtime::manifest::missing_key))]
    MissingKey {
        /// The missing key, as a dotted path.
        key: String,
        /// Where to add it.
        #[label("expected `{key}` here")]
        span: SourceSpan,
        /// A line to add.
        #[help]
        help: String,
    },

    /// A key that the manifest format does not have.
    #[error("unknown key `{key}` in {table}")]
    #[diagnostic(code(runtime::manifest::unknown_key))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The table it appears in (`[resources]`, or `the top level`).
        table: String,
        /// Where it is.
        #[label("unknown key")]
        span: SourceSpan,
        /// A "did you mean" or the list of known keys.
        #[help]
        help: String,
    },

    /// A value of the wrong TOML type.
    #[error("`{key}` must be {expected}, found {found}")]
    #[diagnostic(code(runtime::manifest::wrong_type))]
    WrongType {
        /// The key, as a dotted path.
        key: String,
        /// What the key takes.
        expected: &'static str,
        /// What the file has.
        found: &'static str,
        /// Where the value is.
        #[label("expected {expected}")]
        span: SourceSpan,
        /// An example of a correct value.
        #[help]
        help: String,
    },

    /// `component.name` is not a valid name.
    #[error("invalid component name `{value}`: {reason}")]
    #[diagnostic(
        code(runtime::manifest::invalid_name),
        help("use 1 to 64 characters of a-z, 0-9 and `-`, e.g. name = \"hello-world\"")
    )]
    InvalidName {
        /// The name as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
        /// Where it is.
        #[label("invalid name")]
        span: SourceSpan,
    },

    /// `component.version` is not a semantic version.
    #[error("invalid component version `{value}`: {reason}")]
    #[diagnostic(
        code(runtime::manifest::invalid_version),
        help("use a semantic version MAJOR.MINOR.PATCH, e.g. version = \"0.1.0\"")
    )]
    InvalidVersion {
        /// The version as written.
        value: String,
        /// What the semver parser said.
        reason: String,
        /// Where it is.
        #[label("not a semantic version")]
        span: SourceSpan,
    },

    /// `component.wasm` is not a path inside the manifest's directory.
    #[error("invalid wasm path `{value}`: {reason}")]
    #[diagnostic(
        code(runtime::manifest::invalid_wasm_path),
        help("give a path relative to the manifest that stays inside its directory, e.g. wasm = \"hello.wasm\"")
    )]
    InvalidWasmPath {
        /// The path as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
        /// Where it is.
        #[label("path escapes or is invalid")]
        span: SourceSpan,
    },

    /// A size or duration without a unit, which could mean several things.
    #[error("`{key}` = \"{value}\" has no unit")]
    #[diagnostic(code(runtime::manifest::ambiguous_unit))]
    MissingUnit {
        /// The key, as a dotted path.
        key: String,
        /// The value as written.
        value: String,
        /// Where it is.
        #[label("which unit?")]
        span: SourceSpan,
        /// The units to choose from.
        #[help]
        help: String,
    },

    /// A unit that is not accepted for this key.
    #[error("`{key}` uses unknown unit `{unit}`")]
    #[diagnostic(code(runtime::manifest::unknown_unit))]
    UnknownUnit {
        /// The key, as a dotted path.
        key: String,
        /// The unit as written.
        unit: String,
        /// Where the value is.
        #[label("unknown unit")]
        span: SourceSpan,
        /// The accepted units, and the closest one.
        #[help]
        help: String,
    },

    /// A value that is not a whole number where one is needed.
    #[error("`{key}` = {value} is not a valid value: {reason}")]
    #[diagnostic(code(runtime::manifest::invalid_value))]
    InvalidValue {
        /// The key, as a dotted path.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// Where it is.
        #[label("invalid value")]
        span: SourceSpan,
        /// An example of a correct value.
        #[help]
        help: String,
    },

    /// A limit of zero: it would forbid everything, or read as "unlimited".
    #[error("`{key}` is zero")]
    #[diagnostic(
        code(runtime::manifest::zero_value),
        help("a limit must be greater than zero; nothing is ever unlimited, so give the real bound")
    )]
    ZeroValue {
        /// The key, as a dotted path.
        key: String,
        /// Where it is.
        #[label("zero")]
        span: SourceSpan,
    },

    /// A negative limit.
    #[error("`{key}` is negative")]
    #[diagnostic(code(runtime::manifest::negative_value), help("limits are positive whole numbers"))]
    NegativeValue {
        /// The key, as a dotted path.
        key: String,
        /// Where it is.
        #[label("negative")]
        span: SourceSpan,
    },

    /// A value too large to represent at all.
    #[error("`{key}` is too large to represent")]
    #[diagnostic(code(runtime::manifest::overflow))]
    Overflow {
        /// The key, as a dotted path.
        key: String,
        /// Where it is.
        #[label("too large")]
        span: SourceSpan,
        /// The largest value the host accepts.
        #[help]
        help: String,
    },

    /// A limit outside the range the host policy accepts.
    #[error("`resources.{key}` = {value} is outside the host policy ({min}..={max})")]
    #[diagnostic(code(runtime::manifest::out_of_range))]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value asked for.
        value: String,
        /// The smallest accepted value.
        min: String,
        /// The largest accepted value.
        max: String,
        /// Where it is.
        #[label("allowed: {min}..={max}")]
        span: SourceSpan,
        /// How to get within range.
        #[help]
        help: String,
    },

    /// Problems past the first [`crate::MAX_REPORTED_PROBLEMS`], counted.
    #[error("{count} more problems not shown")]
    #[diagnostic(code(runtime::manifest::more_problems), help("fix the problems above and check again"))]
    MoreProblems {
        /// How many were left out.
        count: usize,
        /// Where the first of them is.
        #[label("the next problem is here")]
        span: SourceSpan,
    },

    /// A grant's quota above the maximum the host policy allows.
    #[error("`{key}` = {value} is above the host policy's maximum ({max})")]
    #[diagnostic(code(runtime::manifest::quota_above_policy))]
    QuotaAbovePolicy {
        /// The quota, as a dotted path.
        key: String,
        /// The value asked for.
        value: String,
        /// The policy's maximum.
        max: String,
        /// Where it is.
        #[label("at most {max}")]
        span: SourceSpan,
        /// How to get within it.
        #[help]
        help: String,
    },

    /// A grant the host's policy does not allow.
    #[error("`{key}` asks for a grant the host policy refuses (`[grants] {policy_key} = false`)")]
    #[diagnostic(code(runtime::manifest::grant_refused))]
    GrantRefused {
        /// The grant, as a dotted path.
        key: String,
        /// The policy's key that refuses it.
        policy_key: &'static str,
        /// Where it is.
        #[label("refused by the host policy")]
        span: SourceSpan,
        /// How a host allows it.
        #[help]
        help: String,
    },
}

impl ManifestProblem {
    /// The stable diagnostic code, e.g. `runtime::manifest::missing_limit`.
    pub fn code_str(&self) -> String {
        self.code().map(|code| code.to_string()).unwrap_or_default()
    }

    /// The byte range in the file that the problem points at.
    pub fn span(&self) -> SourceSpan {
        match self {
            Self::Syntax { span, .. }
            | Self::NotUtf8 { span }
            | Self::MissingTable { span, .. }
            | Self::MissingLimit { span, .. }
            | Self::MissingKey { span, .. }
            | Self::UnknownKey { span, .. }
            | Self::WrongType { span, .. }
            | Self::InvalidName { span, .. }
            | Self::InvalidVersion { span, .. }
            | Self::InvalidWasmPath { span, .. }
            | Self::MissingUnit { span, .. }
            | Self::UnknownUnit { span, .. }
            | Self::InvalidValue { span, .. }
            | Self::ZeroValue { span, .. }
            | Self::NegativeValue { span, .. }
            | Self::Overflow { span, .. }
            | Self::OutOfRange { span, .. }
            | Self::GrantRefused { span, .. }
            | Self::QuotaAbovePolicy { span, .. }
            | Self::MoreProblems { span, .. } => *span,
        }
    }
}
