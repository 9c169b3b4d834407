//! Observability: a [`CallObserver`] hook told of every call's outcome, and
//! [`CallMetrics`], an observer that counts outcomes per kind with latency
//! histograms. Every call, instantiation and load also runs in a `tracing`
//! span (`call`, `instantiate`, `load`) with structured fields; with no
//! subscriber a span costs one cached check.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::{CallReport, RuntimeError};

/// One finished call (or instantiation), as observers see it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CallEvent<'a> {
    /// The component's name (its manifest's `component.name`).
    pub component: &'a str,
    /// The export called; `instantiate` for an instantiation.
    pub export: &'a str,
    /// Whether this was an instantiation (of a live instance) rather than a call.
    pub instantiation: bool,
    /// The live instance called ([`Instance::id`](crate::Instance::id)),
    /// for metrics per actor; `None` for a fresh call or an instantiation.
    pub instance: Option<u64>,
    /// `ok`, or the kind of the error (`out-of-fuel`, `busy`, ...).
    pub kind: &'static str,
    /// What the call used, when it ran.
    pub report: Option<&'a CallReport>,
    /// Wall time as the caller saw it, queueing included.
    pub wall: Duration,
}

/// Told of every call's outcome, on the caller's thread, after the call.
/// Keep it fast: it runs on every call.
pub trait CallObserver: Send + Sync + 'static {
    /// A call (or an instantiation) finished.
    fn call_finished(&self, event: &CallEvent<'_>);
}

/// A [`CallObserver`] counting calls per outcome kind, with a latency
/// histogram of each (powers of two of microseconds), per component and
/// export as well as in all; instantiations of live instances are counted
/// apart from calls. Share it as an `Arc` with the runtime and read it
/// whenever.
#[derive(Debug, Default)]
pub struct CallMetrics {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    calls: BTreeMap<&'static str, KindMetrics>,
    instantiations: BTreeMap<&'static str, KindMetrics>,
    /// Component, then export (`instantiate` for instantiations), then kind.
    by_export: BTreeMap<Box<str>, BTreeMap<Box<str>, ByKind>>,
}

/// Metrics per outcome kind.
type ByKind = BTreeMap<&'static str, KindMetrics>;

/// The calls of one outcome kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KindMetrics {
    /// Calls that ended this way.
    pub count: u64,
    /// Fuel they consumed, summed.
    pub fuel: u64,
    /// `buckets[i]` counts calls whose wall time was under `2^i` µs (the
    /// last bucket takes the rest).
    pub buckets: [u64; LATENCY_BUCKETS],
}

/// Buckets of the latency histogram: up to about 35 minutes.
pub const LATENCY_BUCKETS: usize = 32;

impl KindMetrics {
    /// The wall time under which at least `quantile` (0.0..=1.0) of the calls
    /// finished, to the histogram's resolution (a power of two of µs).
    pub fn latency_quantile(&self, quantile: f64) -> Duration {
        let wanted = (self.count as f64 * quantile.clamp(0.0, 1.0)).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= wanted.max(1) {
                return Duration::from_micros(1 << bucket);
            }
        }
        Duration::from_micros(1 << (LATENCY_BUCKETS - 1))
    }

    fn add(&mut self, fuel: u64, bucket: usize) {
        self.count += 1;
        self.fuel = self.fuel.saturating_add(fuel);
        self.buckets[bucket.min(LATENCY_BUCKETS - 1)] += 1;
    }
}

impl CallMetrics {
    /// No calls counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A poisoned lock only means another observer call panicked; the
        // counts are still whole numbers, so counting goes on.
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The calls so far, per outcome kind (`ok` included), of every
    /// component and export; instantiations are not calls
    /// ([`instantiations`](Self::instantiations)).
    pub fn snapshot(&self) -> BTreeMap<&'static str, KindMetrics> {
        self.counts().calls.clone()
    }

    /// The instantiations of live instances so far, per outcome kind.
    pub fn instantiations(&self) -> BTreeMap<&'static str, KindMetrics> {
        self.counts().instantiations.clone()
    }

    /// The calls of `export` of `component` so far, per outcome kind (with
    /// `export` `instantiate`, its instantiations).
    pub fn of_export(&self, component: &str, export: &str) -> BTreeMap<&'static str, KindMetrics> {
        self.counts().by_export.get(component).and_then(|exports| exports.get(export)).cloned().unwrap_or_default()
    }

    /// Every component and export seen so far, as `(component, export)`.
    pub fn exports(&self) -> Vec<(String, String)> {
        let counts = self.counts();
        let exports = counts.by_export.iter().flat_map(|(component, exports)| {
            exports.keys().map(move |export| (component.to_string(), export.to_string()))
        });
        exports.collect()
    }
}

impl CallObserver for CallMetrics {
    fn call_finished(&self, event: &CallEvent<'_>) {
        let micros = u64::try_from(event.wall.as_micros()).unwrap_or(u64::MAX);
        // The bucket whose bound 2^i is the first above the wall time.
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        let fuel = event.report.map_or(0, |report| report.fuel_consumed);
        let mut counts = self.counts();
        let totals = if event.instantiation { &mut counts.instantiations } else { &mut counts.calls };
        totals.entry(event.kind).or_default().add(fuel, bucket);
        // Allocates a key only the first time a component or export is seen.
        let exports = match counts.by_export.get_mut(event.component) {
            Some(exports) => exports,
            None => counts.by_export.entry(event.component.into()).or_default(),
        };
        let kinds = match exports.get_mut(event.export) {
            Some(kinds) => kinds,
            None => exports.entry(event.export.into()).or_default(),
        };
        kinds.entry(event.kind).or_default().add(fuel, bucket);
    }
}

/// What an observed entry point did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Operation<'a> {
    /// Called this export of a fresh instance.
    Call(&'a str),
    /// Called this export of the live instance with this id.
    InstanceCall(&'a str, u64),
    /// Made a live instance.
    Instantiate,
}

/// The outcome kind of a result: `ok`, or the error's kind.
pub(crate) fn kind_of<R>(result: &Result<R, RuntimeError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.kind(),
    }
}

/// Records a finished call on its span and tells the observer.
pub(crate) fn finished(
    observer: Option<&dyn CallObserver>,
    span: &tracing::Span,
    component: &str,
    operation: Operation<'_>,
    kind: &'static str,
    report: Option<&CallReport>,
    wall: Duration,
) {
    if !span.is_disabled() {
        span.record("kind", kind);
        if let Some(report) = report {
            span.record("fuel", report.fuel_consumed);
            span.record("peak_memory", report.peak_memory_bytes);
            span.record("queue_wait_us", report.queue_wait.as_micros() as u64);
        }
        span.record("wall_us", wall.as_micros() as u64);
    }
    if let Some(observer) = observer {
        let (export, instantiation, instance) = match operation {
            Operation::Call(export) => (export, false, None),
            Operation::InstanceCall(export, id) => (export, false, Some(id)),
            Operation::Instantiate => ("instantiate", true, None),
        };
        observer.call_finished(&CallEvent { component, export, instantiation, instance, kind, report, wall });
    }
}

/// The span of one call.
macro_rules! call_span {
    ($name:literal, $component:expr, $export:expr) => {
        tracing::info_span!(
            $name,
            component = %$component,
            export = %$export,
            kind = tracing::field::Empty,
            fuel = tracing::field::Empty,
            peak_memory = tracing::field::Empty,
            wall_us = tracing::field::Empty,
            queue_wait_us = tracing::field::Empty,
        )
    };
}
pub(crate) use call_span;
