//! [`Error`]: why a manifest could not be read or was rejected.

use std::fmt;
use std::path::PathBuf;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::problem::ManifestProblem;

/// Why a manifest could not be read or was rejected.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read manifest {}", path.display())]
    #[diagnostic(code(runtime::manifest::io), help("check that the file exists and is readable"))]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The file is larger than any manifest needs to be.
    #[error("manifest {name} is {size} bytes; the limit is {limit} bytes")]
    #[diagnostic(
        code(runtime::manifest::too_large),
        help("a Component.toml is a few hundred bytes; check that the right file was passed")
    )]
    TooLarge {
        /// The file name, or `<string>` for text parsed from memory.
        name: String,
        /// The size of the input.
        size: u64,
        /// [`crate::MAX_MANIFEST_BYTES`].
        limit: u64,
    },

    /// A policy file could not be read.
    #[error("cannot read policy file {}", path.display())]
    #[diagnostic(code(runtime::policy::io), help("check that the file exists and is readable"))]
    ReadPolicy {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A policy file is larger than any needs to be.
    #[error("policy file {name} is {size} bytes; the limit is {limit} bytes")]
    #[diagnostic(
        code(runtime::policy::too_large),
        help("a policy file is a few hundred bytes; check that the right file was passed")
    )]
    PolicyTooLarge {
        /// The file name, or `<string>` for text parsed from memory.
        name: String,
        /// The size of the input.
        size: u64,
        /// [`crate::MAX_MANIFEST_BYTES`].
        limit: u64,
    },

    /// The file was read and has one or more problems.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(#[from] InvalidManifest),
}

impl Error {
    /// The stable diagnostic code of the first problem.
    pub fn code_str(&self) -> String {
        self.code().map(|code| code.to_string()).unwrap_or_default()
    }

    /// The problems found in the file, in file order; empty when the file
    /// could not be read at all.
    pub fn problems(&self) -> &[ManifestProblem] {
        match self {
            Self::Invalid(invalid) => invalid.problems(),
            Self::Read { .. } | Self::TooLarge { .. } | Self::ReadPolicy { .. } | Self::PolicyTooLarge { .. } => &[],
        }
    }
}

/// A manifest with one or more problems, together with its text so that a
/// report can show each problem in place.
///
/// As a [`Diagnostic`], the first problem is the main one and the others are
/// `related`, so one report lists everything to fix.
#[derive(Debug)]
pub struct InvalidManifest {
    source: NamedSource<String>,
    /// In file order; never empty when built by the parser.
    problems: Vec<ManifestProblem>,
    /// A host policy file rather than a manifest: its report says so.
    policy: bool,
}

/// The most problems one report lists; the rest are counted in one line,
/// so a hostile file of 10,000 bad keys prints a screen, not megabytes.
pub const MAX_REPORTED_PROBLEMS: usize = 50;

impl InvalidManifest {
    /// Wraps `problems`, which the parser never leaves empty: the first
    /// [`MAX_REPORTED_PROBLEMS`] in file order, then one that counts the rest.
    pub(crate) fn new(name: &str, text: String, mut problems: Vec<ManifestProblem>) -> Self {
        problems.sort_by_key(|p| p.span().offset());
        if problems.len() > MAX_REPORTED_PROBLEMS {
            let count = problems.len() - MAX_REPORTED_PROBLEMS;
            let span = problems[MAX_REPORTED_PROBLEMS].span();
            problems.truncate(MAX_REPORTED_PROBLEMS);
            problems.push(ManifestProblem::MoreProblems { count, span });
        }
        Self { source: NamedSource::new(name, text).with_language("TOML"), problems, policy: false }
    }

    /// [`new`](Self::new) for a host policy file.
    pub(crate) fn of_policy(name: &str, text: String, problems: Vec<ManifestProblem>) -> Self {
        Self { policy: true, ..Self::new(name, text, problems) }
    }

    /// Every problem, in file order. Never empty.
    pub fn problems(&self) -> &[ManifestProblem] {
        &self.problems
    }

    fn first(&self) -> Option<&ManifestProblem> {
        self.problems.first()
    }
}

impl fmt::Display for InvalidManifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.policy {
            write!(f, "policy file ")?;
        }
        write!(f, "{}", self.source.name())?;
        if let Some(first) = self.first() {
            write!(f, ": {first}")?;
        }
        match self.problems.len() {
            0 | 1 => Ok(()),
            2 => write!(f, " (and 1 more problem)"),
            n => write!(f, " (and {} more problems)", n - 1),
        }
    }
}

impl std::error::Error for InvalidManifest {}

impl Diagnostic for InvalidManifest {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = self.first()?.code()?;
        match self.policy {
            true => Some(Box::new(code.to_string().replacen("runtime::manifest::", "runtime::policy::", 1))),
            false => Some(code),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.first()?.help()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.first()?.labels()
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.source)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        let rest = self.problems.get(1..).filter(|rest| !rest.is_empty())?;
        Some(Box::new(rest.iter().map(|p| p as &dyn Diagnostic)))
    }
}
