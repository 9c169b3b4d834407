//! One request: admission, a fresh instance, the guest's handler, the
//! response, and what it all used.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use runtime::manifest::OnClientGone;
use runtime::wasi::IncomingHttp as _;
use runtime::{CallReport, CancellationToken, LoadedComponent, RuntimeError};
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::body::{CallOutcome, ResponseBody, until_deadline};
use crate::metrics::ServeMetrics;
use crate::request_body::{GuestBody, Verdict, limited};
use crate::{ServeError, ServeOptions};

/// The response header that names what went wrong, with the kinds of
/// `wasm-runtime run --json` (`out-of-fuel`, `deadline-exceeded`, ...).
pub const KIND_HEADER: &str = "x-wasm-runtime-kind";

/// A served component: hand it requests with [`handle`](Self::handle), or
/// give it to a [`Server`](crate::Server). Cheap to clone.
pub struct HttpService<T: 'static = ()> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for HttpService<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<T> std::fmt::Debug for HttpService<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpService").field("component", &self.inner.component).finish_non_exhaustive()
    }
}

struct Inner<T: 'static> {
    component: LoadedComponent<T>,
    /// Which `wasi:http` handler the component exports, and its name.
    world: World,
    served: String,
    options: ServeOptions,
    max_body: u64,
    timeout: Duration,
    /// `[wasi.http] on-client-gone = "finish"`: a guest whose client left runs on.
    finish: bool,
    metrics: Arc<ServeMetrics>,
}

/// How the guest's call ended.
struct Ended {
    kind: &'static str,
    report: Option<CallReport>,
}

impl<T: Default + Send + 'static> HttpService<T> {
    /// Serves `component`, which must export `wasi:http/incoming-handler@0.2.x`
    /// (any minor version of 0.2: real guests export 0.2.0 to 0.2.12) or
    /// WASI 0.3's `wasi:http/handler@0.3.x` (the `wasi:http/service` world,
    /// which needs a runtime whose policy runs component-model async). A
    /// component that exports both is served as 0.2.
    pub fn new(component: LoadedComponent<T>, options: ServeOptions) -> Result<Self, ServeError> {
        let names = component.export_names();
        let (world, handler) = match (
            names.iter().find(|name| is_incoming_handler(name)),
            names.iter().find(|name| is_p3_handler(name)),
        ) {
            (Some(handler), _) => (World::IncomingHandler, handler),
            (None, Some(handler)) => (World::Service, handler),
            (None, None) => {
                let exports = if names.is_empty() { String::from("none") } else { names.join(", ") };
                return Err(ServeError::NotAProxy { exports });
            }
        };
        let served = handler.strip_suffix("#handle").unwrap_or(handler).to_owned();
        let limits = component.limits();
        let max_body = options.max_request_body.unwrap_or_else(|| limits.memory_bytes());
        let timeout = limits.timeout();
        let finish = component.wasi_config().http.on_client_gone == OnClientGone::Finish;
        let metrics = ServeMetrics::new(&served);
        let inner = Inner { component, world, served, options, max_body, timeout, finish, metrics };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The interface it serves, with the version the component exports:
    /// `wasi:http/incoming-handler@0.2.x` or `wasi:http/handler@0.3.x`.
    pub fn served_interface(&self) -> &str {
        &self.inner.served
    }

    /// The server's metrics, to expose with [`serve_metrics`](crate::serve_metrics).
    pub fn metrics(&self) -> Arc<ServeMetrics> {
        self.inner.metrics.clone()
    }

    /// The options it serves with.
    pub fn options(&self) -> &ServeOptions {
        &self.inner.options
    }

    /// The deadline of each request, from the manifest.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The longest request body it accepts, in bytes.
    pub fn max_request_body(&self) -> u64 {
        self.inner.max_body
    }

    /// Answers one request in a fresh instance. Never fails: every failure
    /// is a response (`413`, `503`, `500` with [`KIND_HEADER`]).
    ///
    /// A client that goes away cancels the request's work at once: dropping
    /// this future before it is ready (hyper does when the client closes
    /// its connection), or dropping the response body before its end, stops
    /// the guest as a deadline would, or takes the request out of the
    /// admission queue. The work runs on its own task, so the request is
    /// still counted and logged, with kind `cancelled` (and status 499 when
    /// the client left before the response head). With `[wasi.http]
    /// on-client-gone = "finish"` in the manifest, the guest runs on to its
    /// end or its deadline instead, its response body read and thrown away,
    /// and the request is counted with the kind its call ended with (still
    /// status 499 in the log); a request still waiting for its slot is
    /// taken out of the queue either way.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.handle_with(request, T::default()).await
    }

    /// [`handle`](Self::handle) with the instance's host state `state`: a
    /// gateway gives each request its tenant or caller, which the
    /// component's host functions reach through the store.
    pub async fn handle_with<B>(&self, request: Request<B>, state: T) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let service = self.clone();
        let gone = CancellationToken::new();
        let left_early = gone.clone().drop_guard();
        let answered = tokio::spawn(async move { service.respond(request, state, gone).await }).await;
        // The head is out: from now on the response body's drop tells.
        left_early.disarm();
        match answered {
            Ok(response) => response,
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the request's task failed\n".into()),
        }
    }

    async fn respond<B>(&self, request: Request<B>, state: T, gone: CancellationToken) -> Response<ResponseBody>
    where
        B: Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let inner = &self.inner;
        let started = Instant::now();
        // A request that another served request caused gets no longer than
        // what its cause had left, and a chain of them ends at `MAX_HOPS`.
        let cause = Cause::of(&request);
        let deadline = started + cause.left.map_or(inner.timeout, |left| left.min(inner.timeout));
        let in_flight = inner.metrics.enter();
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let metrics = inner.metrics.clone();
        // Every way a request ends: one log line and the metrics, with one kind.
        let record = move |status: StatusCode, kind: &'static str, report: Option<&CallReport>| {
            let wall = started.elapsed();
            tracing::info!(
                target: "wasm_runtime::serve",
                %method,
                path = %path,
                status = status.as_u16(),
                kind = %kind,
                wall_ms = wall.as_secs_f64() * 1e3,
                "request"
            );
            metrics.finish(kind, wall, report, in_flight);
        };
        if let Some((status, kind, text)) = refuse_early(&request, inner.max_body).or_else(|| cause.refusal()) {
            record(status, kind, None);
            return plain(status, kind, text);
        }
        // The deadline began when the request came. A request waits for
        // its slot at most half of it: one that found none by then is the
        // host's overload (503), and one admitted runs with at least half
        // its time, so running out of it is the guest's own doing.
        let admit_by = started + deadline.saturating_duration_since(started) / 2;
        let instantiate = inner.component.instantiate_async_by(state, admit_by, Some(&gone));
        let instantiated = tokio::select! {
            biased;
            instantiated = instantiate => instantiated,
            // Out of the queue at once; instantiation itself is stopped by the token.
            () = gone.cancelled() => Err(RuntimeError::Cancelled { report: Box::default() }),
        };
        let instance = match instantiated {
            Ok(instance) => instance,
            Err(error) => {
                let status = if gone.is_cancelled() { CLIENT_GONE } else { status_of(&error) };
                let kind = if gone.is_cancelled() { "cancelled" } else { error.kind() };
                record(status, kind, error.report());
                return failure(status, &error, &inner.options);
            }
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outcome = CallOutcome::default();
        // A client that waits for `100 Continue` gets it only if the guest reads.
        let expects_continue = request
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let (parts, body) = request.into_parts();
        let (body, progress) = limited(body, inner.max_body);
        let request = Request::from_parts(parts, body);
        let client = Client { gone: gone.clone(), finish: inner.finish };
        let call =
            spawn_handler(instance, inner.world, request, sender, (deadline, cause.hops), outcome.clone(), client);
        let answered = receiver.await.ok();
        // A guest that answered before its (chunked) body ended: the body is
        // read to its end or its limit before the answer goes out, so a body
        // over the limit is 413 whatever the guest said.
        let final_answer = matches!(&answered, Some(Ok(response)) if !response.status().is_informational());
        // A client waiting for `100 Continue` sent nothing of a body the
        // guest never asked for: the guest declined it, and its answer stands.
        let declined = expects_continue && !progress.guest_read();
        let body = match progress.verdict() {
            Verdict::Open if declined => Verdict::Whole,
            Verdict::Open if final_answer => {
                tokio::select! {
                    biased;
                    verdict = progress.settle(deadline) => verdict,
                    () = gone.cancelled() => Verdict::Open,
                }
            }
            verdict => verdict,
        };
        let (status, response) = judge(answered, body);
        let unanswered = response.as_ref().err().copied();
        // The header, the log line and the metrics name the same kind and status.
        let client = gone.clone();
        let finish = async move {
            let ended = match call.await {
                Ok(ended) => ended,
                // The task panicked: the runtime's own boundary failed.
                Err(_) => Ended { kind: "host-panic", report: None },
            };
            let kind = kind_of(unanswered, ended.kind);
            // Logged as nginx does: nobody was there to take the answer.
            let logged = if client.is_cancelled() { CLIENT_GONE } else { status };
            record(logged, kind, ended.report.as_ref());
            (status, kind)
        };
        match response {
            Ok(response) => {
                // The body may still stream: the call's end is logged when it comes.
                tokio::spawn(finish);
                let finish = inner.finish;
                let declared = content_length(response.headers()).and_then(Result::ok);
                response.map(|body| until_deadline(body, declared, deadline, outcome, (gone, finish)))
            }
            Err(Unanswered::Informational(given)) => {
                let (status, kind) = finish.await;
                let text = format!("the component answered with status {given}, which is not a final response\n");
                plain(status, kind, text)
            }
            Err(_) => {
                let (status, kind) = finish.await;
                plain(status, kind, format!("the component did not answer the request ({kind})\n"))
            }
        }
    }
}

/// Why a request got no answer of its guest's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unanswered {
    /// Its body passed the limit.
    BodyCut,
    /// Its client had not sent the whole body by the deadline.
    BodyLate,
    /// The guest answered with an informational status (1xx, 101
    /// included), which cannot end a request that asked for no upgrade.
    Informational(u16),
    /// The guest answered with an error code.
    ErrorCode,
    /// The guest never answered.
    Nothing,
}

/// What the guest's answer (`None`: it never gave one) becomes, with the
/// status the client gets.
fn judge(
    answered: Option<Result<Response<HyperOutgoingBody>, ErrorCode>>,
    body: Verdict,
) -> (StatusCode, Result<Response<HyperOutgoingBody>, Unanswered>) {
    match answered {
        // A body cut at the limit (a chunked one: a declared length was
        // refused earlier) makes whatever the guest answered from it moot.
        Some(Ok(_)) if body == Verdict::Cut => (StatusCode::PAYLOAD_TOO_LARGE, Err(Unanswered::BodyCut)),
        // hyper would turn a 1xx into a bare 500 and send a 101 as if
        // upgrading: the guest's mistake is the gateway's 502.
        Some(Ok(response)) if response.status().is_informational() => {
            (StatusCode::BAD_GATEWAY, Err(Unanswered::Informational(response.status().as_u16())))
        }
        // A final answer waits for its body's end, which never came.
        Some(Ok(_)) if body == Verdict::Open => (StatusCode::REQUEST_TIMEOUT, Err(Unanswered::BodyLate)),
        Some(Ok(response)) => (response.status(), Ok(response)),
        Some(Err(_)) => (StatusCode::INTERNAL_SERVER_ERROR, Err(Unanswered::ErrorCode)),
        // The guest ended without answering: the call's outcome says why.
        None => (StatusCode::INTERNAL_SERVER_ERROR, Err(Unanswered::Nothing)),
    }
}

/// The kind a request is logged and counted as: what the client was told
/// first, then how the call ended.
fn kind_of(unanswered: Option<Unanswered>, ended: &'static str) -> &'static str {
    match (unanswered, ended) {
        (Some(Unanswered::BodyCut), _) => "request-too-large",
        (Some(Unanswered::BodyLate), _) => "request-timeout",
        (Some(Unanswered::Informational(_)), _) => "invalid-response",
        (_, kind) if kind != "ok" => kind,
        (Some(Unanswered::ErrorCode), _) => "guest-error-response",
        (Some(Unanswered::Nothing), _) => "no-response",
        (None, kind) => kind,
    }
}

/// Whether `name` is the handler of `wasi:http/incoming-handler@0.2.x`.
fn is_incoming_handler(name: &str) -> bool {
    name.strip_prefix("wasi:http/incoming-handler@0.2.").is_some_and(|rest| rest.ends_with("#handle"))
}

/// Whether `name` is the handler of WASI 0.3's `wasi:http/handler@0.3.x`.
fn is_p3_handler(name: &str) -> bool {
    name.strip_prefix("wasi:http/handler@0.3.").is_some_and(|rest| rest.ends_with("#handle"))
}

/// Which handler a served component exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum World {
    /// WASI 0.2: `wasi:http/incoming-handler`, answering through an outparam.
    IncomingHandler,
    /// WASI 0.3: the `wasi:http/service` world's async `handler.handle`,
    /// returning the response, whose body streams from guest tasks.
    Service,
}

/// What a request says of the served request that caused it: how many
/// hops led to it (`x-wasm-runtime-hops`) and what its cause had left of
/// its deadline (`x-wasm-runtime-deadline-ms`). A client may send either;
/// it can only shorten its own request or have it refused.
struct Cause {
    hops: u32,
    left: Option<Duration>,
}

impl Cause {
    fn of<B>(request: &Request<B>) -> Self {
        let number =
            |name: &str| request.headers().get(name).and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
        let hops = number(runtime::wasi::HOPS_HEADER).map_or(0, |hops| u32::try_from(hops).unwrap_or(u32::MAX));
        Self { hops, left: number(runtime::wasi::DEADLINE_HEADER).map(Duration::from_millis) }
    }

    /// `508 Loop Detected` past [`runtime::wasi::MAX_HOPS`].
    fn refusal(&self) -> Option<(StatusCode, &'static str, String)> {
        (self.hops > runtime::wasi::MAX_HOPS).then(|| {
            let text =
                format!("{} served requests led to this one; at most {} may\n", self.hops, runtime::wasi::MAX_HOPS);
            (StatusCode::LOOP_DETECTED, "loop-detected", text)
        })
    }
}

/// The `content-length` a head declares: `Err` when it is not a number.
fn content_length(headers: &http::HeaderMap) -> Option<Result<u64, ()>> {
    let length = headers.get(http::header::CONTENT_LENGTH)?;
    Some(length.to_str().ok().and_then(|text| text.trim().parse::<u64>().ok()).ok_or(()))
}

/// A request refused before any instance is made: its status, kind and text.
fn refuse_early<B>(request: &Request<B>, max_body: u64) -> Option<(StatusCode, &'static str, String)> {
    match content_length(request.headers()) {
        Some(Err(())) => {
            return Some((StatusCode::BAD_REQUEST, "bad-request", "the content-length is not a number\n".into()));
        }
        Some(Ok(length)) if length > max_body => {
            let text = format!("the request body of {length} bytes exceeds the limit of {max_body} bytes\n");
            return Some((StatusCode::PAYLOAD_TOO_LARGE, "request-too-large", text));
        }
        _ => {}
    }
    if request.uri().authority().is_none() {
        // wasmtime-wasi-http needs the host as text; failing there would
        // read as the host's fault.
        match request.headers().get(http::header::HOST).map(HeaderValue::to_str) {
            None => return Some((StatusCode::BAD_REQUEST, "bad-request", "the request names no host\n".into())),
            Some(Err(_)) => {
                let text = "the host header is not visible ASCII\n".into();
                return Some((StatusCode::BAD_REQUEST, "bad-request", text));
            }
            Some(Ok(_)) => {}
        }
    }
    None
}

pub(crate) type ResponseSender = tokio::sync::oneshot::Sender<Result<Response<HyperOutgoingBody>, ErrorCode>>;

/// Runs the guest's handler in `instance` on its own task, so the response
/// head can go out while the guest still writes the body; the task ends
/// with the call's outcome.
fn spawn_handler<T, B>(
    mut instance: runtime::Instance<T>,
    world: World,
    request: Request<GuestBody<B>>,
    sender: ResponseSender,
    (deadline, hops): (Instant, u32),
    outcome_cell: CallOutcome,
    client: Client,
) -> tokio::task::JoinHandle<Ended>
where
    T: Send + 'static,
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // One deadline for the whole request: instantiation already spent part.
    instance.set_call_timeout(Some(deadline.saturating_duration_since(Instant::now())));
    tokio::spawn(async move {
        let stop = instance.cancellation_token();
        let outcome = {
            let run = instance.run_async(move |mut store, wasm| match world {
                World::IncomingHandler => Box::pin(async move {
                    let proxy = Proxy::new(&mut store, &wasm)?;
                    let mut http = store.data_mut().incoming_http_after(hops);
                    let request = http.new_incoming_request(Scheme::Http, request)?;
                    let outparam = http.new_response_outparam(sender)?;
                    proxy.wasi_http_incoming_handler().call_handle(&mut store, request, outparam).await
                }),
                World::Service => Box::pin(crate::service::handle(store, wasm, request, sender, hops)),
            });
            let mut run = std::pin::pin!(run);
            // The client left: the guest is stopped as at a deadline, and
            // the call ends `cancelled` with what it used, unless the
            // manifest lets it finish.
            tokio::select! {
                biased;
                outcome = &mut run => outcome,
                () = client.gone.cancelled(), if !client.finish => {
                    stop.cancel();
                    run.await
                }
            }
        };
        let instantiated = instance.instantiation_report().clone();
        let mut ended = match outcome {
            Ok(outcome) => Ended { kind: "ok", report: Some(merged(&instantiated, outcome.report)) },
            Err(error) => {
                let report = error.report().cloned().map(|report| merged(&instantiated, report));
                Ended { kind: error.kind(), report }
            }
        };
        // A guest whose client left first may have ended on its own before
        // the token stopped it (its body's writes failed, or it trapped on
        // them): it ended because the client left.
        if client.gone.is_cancelled() && !client.finish {
            ended.kind = "cancelled";
        }
        // Before the store goes: dropping it ends an unfinished body, which
        // must then read as cut short, not as complete.
        outcome_cell.set(ended.kind);
        drop(instance);
        ended
    })
}

/// Whether the request's client went away, and whether its guest may then
/// run on.
struct Client {
    gone: CancellationToken,
    finish: bool,
}

/// The call's report with its instance's instantiation (and its queue
/// wait) added in.
fn merged(instantiated: &CallReport, mut call: CallReport) -> CallReport {
    call.queue_wait = instantiated.queue_wait;
    call.fuel_consumed = call.fuel_consumed.saturating_add(instantiated.fuel_consumed);
    call.peak_memory_bytes = call.peak_memory_bytes.max(instantiated.peak_memory_bytes);
    call.instantiate = instantiated.wall;
    call.wall += instantiated.wall;
    call
}

/// The status a request whose client went away is logged and counted with
/// (nginx's "client closed request"); no client ever sees it.
const CLIENT_GONE: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
};

/// The status a failure before the handler ran gets.
fn status_of(error: &RuntimeError) -> StatusCode {
    match error {
        RuntimeError::Busy { .. } | RuntimeError::QuotaReached { .. } | RuntimeError::Cancelled { .. } => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn failure(status: StatusCode, error: &RuntimeError, options: &ServeOptions) -> Response<ResponseBody> {
    let mut response = plain(status, error.kind(), format!("{error}\n"));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after(&mut response, options);
    }
    response
}

fn retry_after(response: &mut Response<ResponseBody>, options: &ServeOptions) {
    let seconds = options.retry_after.as_secs().max(1);
    response.headers_mut().insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
}

/// A short text response naming `kind` in [`KIND_HEADER`].
fn plain(status: StatusCode, kind: &'static str, text: String) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from(text)).map_err(|never| match never {}).boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(KIND_HEADER, HeaderValue::from_static(kind));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16) -> Option<Result<Response<HyperOutgoingBody>, ErrorCode>> {
        let body = Full::new(Bytes::new()).map_err(|never| match never {}).boxed_unsync();
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        Some(Ok(response))
    }

    #[test]
    fn an_informational_status_is_502_invalid_response_whatever_the_call_did() {
        for given in [100, 101, 103, 199] {
            let (status, judged) = judge(answer(given), Verdict::Whole);
            assert_eq!(status, StatusCode::BAD_GATEWAY, "{given}");
            let unanswered = judged.err();
            assert_eq!(unanswered, Some(Unanswered::Informational(given)));
            for ended in ["ok", "deadline-exceeded"] {
                assert_eq!(kind_of(unanswered, ended), "invalid-response", "{given} then {ended}");
            }
        }
    }

    #[test]
    fn final_statuses_pass_through() {
        for given in [200, 204, 302, 404, 500, 599] {
            let (status, judged) = judge(answer(given), Verdict::Whole);
            assert_eq!(status.as_u16(), given);
            assert!(judged.is_ok(), "{given}");
        }
        assert_eq!(judge(answer(200), Verdict::Cut).0, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(judge(answer(200), Verdict::Open).0, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(judge(answer(200), Verdict::Failed).0, StatusCode::OK);
        assert_eq!(judge(None, Verdict::Whole).0, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
