//! Runs one guest through the facade, the way an embedder would (load, then
//! `call_async` on Tokio), and measures what it cost the host: the peak of
//! resident memory above the baseline and the wall time, as well as the kind.

use std::time::{Duration, Instant};

use runtime::{AsyncHostRegistry, ComponentManifest, HostPolicy, Runtime, RuntimeError, Val};

use super::{Figures, Outcome, Verdict};

/// What the host may spend on one attack: above this, it escaped, whatever
/// kind it was reported as.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostBound {
    pub(crate) rss_mib: u64,
    pub(crate) wall: Duration,
}

/// Most attacks: a few megabytes and a deadline's worth of time, with room
/// for a shared, noisy 2-core machine.
pub(crate) const SMALL: HostBound = HostBound { rss_mib: 48, wall: Duration::from_millis(1_500) };

/// One guest, its limits, the call and the expected outcome.
pub(crate) struct Probe {
    /// WAT text or a binary.
    pub(crate) input: Vec<u8>,
    /// The manifest's `[resources]` and `[wasi]` lines.
    pub(crate) manifest: String,
    pub(crate) export: &'static str,
    pub(crate) args: Vec<Val>,
    /// A kind (`copy-limit-exceeded`), `deadline-exceeded/host-call` for a
    /// deadline in a phase, `exited/0`, a load kind, or `ok`.
    pub(crate) expected: &'static str,
    pub(crate) bound: HostBound,
    /// Host functions beyond the reference ones.
    pub(crate) registry: Option<fn() -> AsyncHostRegistry>,
}

/// A manifest with `memory`, `fuel` and `timeout`, and `extra` lines after them.
pub(crate) fn manifest(memory: &str, fuel: &str, timeout: &str, extra: &str) -> String {
    format!(
        "[component]\nname = \"attack\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"{memory}\"\nfuel = {fuel}\ntimeout = \"{timeout}\"\n{extra}"
    )
}

impl Probe {
    pub(crate) fn new(wat: String, manifest: String, export: &'static str, expected: &'static str) -> Self {
        Self { input: wat.into_bytes(), manifest, export, args: Vec::new(), expected, bound: SMALL, registry: None }
    }

    /// The same probe loading `binary` instead of its WAT.
    pub(crate) fn binary(mut self, binary: Vec<u8>) -> Self {
        self.input = binary;
        self
    }

    pub(crate) fn args(mut self, args: Vec<Val>) -> Self {
        self.args = args;
        self
    }

    pub(crate) fn bound(mut self, bound: HostBound) -> Self {
        self.bound = bound;
        self
    }

    pub(crate) fn registry(mut self, registry: fn() -> AsyncHostRegistry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Runs the probe and judges it on the kind, the host's peak RSS and the wall time.
    pub(crate) fn run(self) -> Outcome {
        let baseline = match HostMemory::reset() {
            Ok(baseline) => baseline,
            Err(error) => return host_failure(error),
        };
        let started = Instant::now();
        let (observed, figures) = match self.execute() {
            Ok(result) => result,
            Err(error) => return host_failure(error),
        };
        let wall = started.elapsed();
        let peak = HostMemory::peak_above(baseline).unwrap_or(u64::MAX);
        judge(self.expected, observed, figures, peak, wall, self.bound)
    }

    fn execute(&self) -> Result<(String, Option<Figures>), String> {
        let mut builder = Runtime::builder().policy(HostPolicy::default());
        if let Some(registry) = self.registry {
            builder = builder.host_functions(registry());
        }
        let runtime = builder.build().map_err(|e| e.to_string())?;
        let manifest: ComponentManifest = self.manifest.parse().map_err(|e: runtime::manifest::Error| e.to_string())?;
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let component = match runtime.load_bytes(&self.input, &manifest) {
            Ok(component) => component,
            Err(error) => return Ok((error.kind().to_owned(), None)),
        };
        let result = tokio.block_on(component.call_async(self.export, &self.args));
        // A call abandoned in a blocking host task must not hold the suite up.
        tokio.shutdown_background();
        Ok(match result {
            Ok(outcome) => ("ok".to_owned(), Some(Figures::from(&outcome.report))),
            Err(error) => (observed_kind(&error), error.crash().map(|crash| Figures::from(&crash.report))),
        })
    }
}

/// The kind, with the phase of a deadline and the status of an exit.
pub(crate) fn observed_kind(error: &RuntimeError) -> String {
    match error.crash().map(|crash| crash.kind) {
        Some(runtime::CrashKind::DeadlineExceeded { during }) => format!("deadline-exceeded/{}", during.as_str()),
        Some(runtime::CrashKind::Exited { status }) => format!("exited/{status}"),
        _ => error.kind().to_owned(),
    }
}

/// Pass only when the kind matches and the host stayed within `bound`.
pub(crate) fn judge(
    expected: &str,
    kind: String,
    figures: Option<Figures>,
    peak: u64,
    wall: Duration,
    bound: HostBound,
) -> Outcome {
    let within = peak <= bound.rss_mib << 20 && wall <= bound.wall;
    let observed = format!("{kind} (host +{} MiB, {} ms)", peak >> 20, wall.as_millis());
    let verdict = match (kind == expected, within) {
        (true, true) => Verdict::Pass,
        (_, false) => Verdict::Escaped,
        (false, true) if kind == "ok" => Verdict::Escaped,
        (false, true) => Verdict::Misclassified,
    };
    Outcome { observed, verdict, figures }
}

pub(crate) fn host_failure(error: String) -> Outcome {
    Outcome { observed: format!("setup failed: {error}"), verdict: Verdict::HostFailure, figures: None }
}

/// The process's resident memory, from `/proc/self/status`; its peak is
/// reset before each attack (`/proc/self/clear_refs`, Linux 4.0+).
pub(crate) struct HostMemory;

impl HostMemory {
    /// Resets the peak and returns the resident bytes now.
    pub(crate) fn reset() -> Result<u64, String> {
        std::fs::write("/proc/self/clear_refs", "5").map_err(|e| format!("cannot reset the RSS peak: {e}"))?;
        Self::field("VmRSS:")
    }

    /// The peak since the last reset, above `baseline`.
    pub(crate) fn peak_above(baseline: u64) -> Result<u64, String> {
        Ok(Self::field("VmHWM:")?.saturating_sub(baseline))
    }

    /// Resident bytes now.
    pub(crate) fn resident() -> Result<u64, String> {
        Self::field("VmRSS:")
    }

    fn field(name: &str) -> Result<u64, String> {
        let status = std::fs::read_to_string("/proc/self/status").map_err(|e| format!("cannot read RSS: {e}"))?;
        let line = status.lines().find(|line| line.starts_with(name)).ok_or("no RSS line")?;
        let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().map_err(|_| "bad RSS line")?;
        Ok(kib * 1024)
    }
}
