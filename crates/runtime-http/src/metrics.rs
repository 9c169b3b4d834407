//! `/metrics`: requests by outcome kind, latency, requests in flight and
//! queue wait, in the Prometheus (OpenMetrics) text format.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use runtime::CallReport;

/// The label of `wasm_runtime_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The label of `wasm_runtime_serving_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabel {
    handler: String,
}

/// A server's metrics. `wasm_runtime_requests_total{kind}` counts requests
/// by how they ended (`ok`, `busy`, `out-of-fuel`, ...);
/// `wasm_runtime_request_duration_seconds` is their latency,
/// `wasm_runtime_requests_in_flight` those not yet ended and
/// `wasm_runtime_queue_wait_seconds` how long admitted requests waited for a
/// slot. `wasm_runtime_request_fuel` is the fuel each request burned.
/// `wasm_runtime_serving_info{handler}` is 1, its label the served interface
/// and version (`wasi:http/handler@0.3.0`, say).
pub struct ServeMetrics {
    registry: Registry,
    requests: Family<KindLabel, Counter>,
    latency: Histogram,
    in_flight: Gauge,
    queue_wait: Histogram,
    fuel: Histogram,
}

impl std::fmt::Debug for ServeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeMetrics").field("in_flight", &self.in_flight.get()).finish_non_exhaustive()
    }
}

/// A request in flight: the gauge goes down when it is dropped.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ServeMetrics {
    pub(crate) fn new(handler: &str) -> Arc<Self> {
        let mut registry = Registry::default();
        let info = Family::<HandlerLabel, Gauge>::default();
        info.get_or_create(&HandlerLabel { handler: handler.to_owned() }).set(1);
        registry.register("wasm_runtime_serving_info", "The interface served, as a label", info);
        let requests = Family::<KindLabel, Counter>::default();
        // 100 µs to about 26 s.
        let latency = Histogram::new(exponential_buckets(0.0001, 2.0, 19));
        let queue_wait = Histogram::new(exponential_buckets(0.0001, 2.0, 19));
        let fuel = Histogram::new(exponential_buckets(1000.0, 10.0, 10));
        let in_flight = Gauge::default();
        registry.register("wasm_runtime_requests", "Requests served, by how they ended", requests.clone());
        registry.register("wasm_runtime_request_duration_seconds", "Request latency", latency.clone());
        registry.register("wasm_runtime_requests_in_flight", "Requests not yet ended", in_flight.clone());
        registry.register("wasm_runtime_queue_wait_seconds", "Wait for an instance slot", queue_wait.clone());
        registry.register("wasm_runtime_request_fuel", "Fuel a request burned", fuel.clone());
        Arc::new(Self { registry, requests, latency, in_flight, queue_wait, fuel })
    }

    pub(crate) fn enter(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub(crate) fn finish(&self, kind: &'static str, wall: Duration, report: Option<&CallReport>, in_flight: InFlight) {
        self.requests.get_or_create(&KindLabel { kind }).inc();
        self.latency.observe(wall.as_secs_f64());
        if let Some(report) = report {
            self.queue_wait.observe(report.queue_wait.as_secs_f64());
            // Fuel as a float: exact to 2^53, far beyond any budget.
            #[allow(clippy::cast_precision_loss, reason = "a histogram's buckets need no exact count")]
            self.fuel.observe(report.fuel_consumed as f64);
        }
        drop(in_flight);
    }

    /// Requests that ended with `kind` so far.
    pub fn requests(&self, kind: &'static str) -> u64 {
        self.requests.get_or_create(&KindLabel { kind }).get()
    }

    /// Requests not yet ended.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// Every metric in the OpenMetrics text format, which Prometheus reads.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!("cannot encode metrics: {error}");
        }
        text
    }
}
