//! The attack suite behind `cargo xtask adversarial`: every case states the
//! outcome it expects, runs against the library or the CLI, and is judged on
//! what it observed. One table on stdout, one JSON report in
//! `target/adversarial/report.json`, a non-zero exit on any escape,
//! misclassification or host failure. The task runner only calls [`run`]
//! and, for the cases that need a process of their own, [`worker`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde::Serialize;

mod boundary;
mod cache;
mod catalog;
mod cli;
mod components;
mod guests;
mod hold;
mod host;
mod manifests;
mod p3;
mod probe;
mod quota;
mod random;
mod serve;
mod storm;
pub mod support;
mod tenancy;

use support::{cli_binary, limits_manifest, target_dir, workspace_root};

/// Options of `cargo xtask adversarial`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Run the reduced suite used by CI.
    #[arg(long)]
    quick: bool,
    /// Seed for the generated cases; a failing run prints the seed to replay.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Run only the attacks of this group (e.g. `lifting`, `wasi`, `abi`).
    #[arg(long)]
    group: Option<String>,
}

/// One attack and the outcome that counts as stopping it.
pub(crate) struct Case {
    group: &'static str,
    name: String,
    /// The expected outcome: a diagnostic code, or a description for generated cases.
    expected: String,
    attack: Box<dyn FnOnce() -> Outcome>,
}

impl Case {
    pub(crate) fn new(
        group: &'static str,
        name: impl Into<String>,
        expected: impl Into<String>,
        attack: impl FnOnce() -> Outcome + 'static,
    ) -> Self {
        Self { group, name: name.into(), expected: expected.into(), attack: Box::new(attack) }
    }
}

/// What an attack observed, and whether that matches the expectation.
pub(crate) struct Outcome {
    /// What happened, in the same vocabulary as the expectation.
    pub(crate) observed: String,
    pub(crate) verdict: Verdict,
    /// The resources the guest used, for attacks that ran one.
    pub(crate) figures: Option<Figures>,
}

/// Resource figures of a guest call, as its `CallReport` gave them.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Figures {
    fuel_consumed: u64,
    peak_memory_bytes: u64,
    wall_us: u128,
    instantiate_us: u128,
}

impl From<&runtime::CallReport> for Figures {
    fn from(report: &runtime::CallReport) -> Self {
        Self {
            fuel_consumed: report.fuel_consumed,
            peak_memory_bytes: report.peak_memory_bytes,
            wall_us: report.wall.as_micros(),
            instantiate_us: report.instantiate.as_micros(),
        }
    }
}

impl Outcome {
    /// An attack expected to be rejected with `expected`, judged on `observed`
    /// (`None` when it was accepted).
    pub(crate) fn rejected(expected: &str, observed: Option<String>) -> Self {
        match observed {
            None => Self { observed: "accepted".into(), verdict: Verdict::Escaped, figures: None },
            Some(code) if code == expected => Self { observed: code, verdict: Verdict::Pass, figures: None },
            Some(code) => Self { observed: code, verdict: Verdict::Misclassified, figures: None },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Verdict {
    Pass,
    /// The attack got through: an invalid input was accepted, a limit did not hold.
    Escaped,
    /// The attack was stopped but reported as the wrong thing.
    Misclassified,
    /// The host itself failed: a panic in the library.
    HostFailure,
}

#[derive(Serialize)]
struct Row {
    group: &'static str,
    attack: String,
    expected: String,
    observed: String,
    micros: u128,
    verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    figures: Option<Figures>,
}

#[derive(Serialize)]
struct Report<'r> {
    mode: &'static str,
    seed: u64,
    passed: usize,
    failed: usize,
    cases: &'r [Row],
}

/// `cargo xtask adversarial-worker NAME`: the part of an attack that runs in
/// a process of its own (see `quota.rs`).
pub fn worker(name: &str) -> Result<bool, String> {
    quota::worker(name)
}

/// Runs the suite; `Ok(true)` when every case passed.
pub fn run(options: &Options) -> Result<bool, String> {
    // Attacks make host functions panic on purpose; the runtime catches those
    // panics, so one line each is enough on stderr.
    std::panic::set_hook(Box::new(|info| eprintln!("panic (expected, caught): {info}")));
    let mut cases = manifests::cases(options.quick, options.seed)?;
    cases.extend(components::cases()?);
    cases.extend(boundary::cases());
    cases.extend(cli::cases());
    cases.extend(cache::cases());
    cases.extend(host::cases(options.quick));
    cases.extend(hold::cases(options.quick));
    cases.extend(p3::cases());
    cases.extend(quota::cases(options.quick));
    cases.extend(random::cases(options.quick, options.seed));
    cases.extend(serve::cases());
    cases.extend(storm::cases(options.quick));
    cases.extend(tenancy::cases());
    if let Some(group) = &options.group {
        cases.retain(|case| case.group == group);
    }
    let mut rows = Vec::with_capacity(cases.len());
    // The full suite runs for minutes: a progress bar on stderr tells where it is.
    let progress = if options.quick {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(cases.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    };
    print_header();
    for case in cases {
        progress.set_message(case.name.clone());
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(case.attack)).unwrap_or_else(|panic| Outcome {
            observed: format!("panic: {}", panic_message(&*panic)),
            verdict: Verdict::HostFailure,
            figures: None,
        });
        // `unknown` is never an acceptable answer to anything a guest does.
        let mut outcome = outcome;
        if outcome.observed.starts_with("unknown") && outcome.verdict == Verdict::Pass {
            outcome.verdict = Verdict::Misclassified;
        }
        let row = Row {
            group: case.group,
            attack: case.name,
            expected: case.expected,
            observed: outcome.observed,
            micros: started.elapsed().as_micros(),
            verdict: outcome.verdict,
            figures: outcome.figures,
        };
        progress.suspend(|| print_row(&row));
        progress.inc(1);
        rows.push(row);
    }
    progress.finish_and_clear();
    let failed = rows.iter().filter(|row| row.verdict != Verdict::Pass).count();
    let passed = rows.len() - failed;
    let report =
        Report { mode: if options.quick { "quick" } else { "full" }, seed: options.seed, passed, failed, cases: &rows };
    let path = write_report(&report)?;
    eprintln!("report: {}", path.display());
    if failed > 0 {
        eprintln!(
            "replay with: cargo xtask adversarial{} --seed {}",
            if options.quick { " --quick" } else { "" },
            options.seed
        );
    }
    print_summary(passed, failed);
    Ok(failed == 0)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

fn write_report(report: &Report<'_>) -> Result<std::path::PathBuf, String> {
    let dir = crate::target_dir().join("adversarial");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("report.json");
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[expect(clippy::print_stdout, reason = "the table is the command's output")]
fn print_header() {
    println!("{:<10} {:<40} {:<36} {:<36} {:>9}  verdict", "group", "attack", "expected", "observed", "time");
}

#[expect(clippy::print_stdout, reason = "the table is the command's output")]
fn print_row(row: &Row) {
    let verdict = match row.verdict {
        Verdict::Pass => "pass",
        Verdict::Escaped => "FAIL (escaped)",
        Verdict::Misclassified => "FAIL (misclassified)",
        Verdict::HostFailure => "FAIL (host failure)",
    };
    println!(
        "{:<10} {:<40} {:<36} {:<36} {:>9}  {verdict}",
        row.group,
        clip(&row.attack, 40),
        clip(&row.expected, 36),
        clip(&row.observed, 36),
        format_micros(row.micros),
    );
}

#[expect(clippy::print_stdout, reason = "the summary is the command's output")]
fn print_summary(passed: usize, failed: usize) {
    println!("{passed} passed, {failed} failed");
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(width - 1).collect();
    clipped.push('…');
    clipped
}

fn format_micros(micros: u128) -> String {
    let duration = Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX));
    if duration >= Duration::from_secs(1) {
        format!("{:.2}s", duration.as_secs_f64())
    } else if micros >= 1000 {
        format!("{:.1}ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{micros}us")
    }
}
