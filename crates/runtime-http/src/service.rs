//! WASI 0.3 serving: one request to a `wasi:http/service` component's async
//! `handler.handle`, inside the store's event loop, which runs on while
//! guest tasks write the response body and ends when they have all exited.
//! It runs inside the instance's one call (`Instance::run_async`), so the
//! request's deadline, fuel, cancellation and report are those of a 0.2
//! request.

use bytes::Bytes;
use http::Request;
use hyper::body::Body;
use runtime::StoreState;
use runtime::wasi::IncomingHttp as _;
use runtime::wasmtime::StoreContextMut;
use runtime::wasmtime::component::Instance;
use wasmtime_wasi_http::WasiHttpCtxView;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::p3::bindings::Service;

use crate::handler::ResponseSender;
use crate::request_body::GuestBody;

/// Hands `request` to the component's handler, sends its response head (or
/// its error code) on `sender`, and returns once every guest task the
/// request started has exited, its body streamed.
pub(crate) async fn handle<T, B>(
    mut store: StoreContextMut<'_, StoreState<T>>,
    instance: Instance,
    request: Request<GuestBody<B>>,
    sender: ResponseSender,
    hops: u32,
) -> runtime::wasmtime::Result<()>
where
    T: Send + 'static,
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let service = Service::new(&mut store, &instance)?;
    let http = store.data_mut().incoming_http_after(hops);
    let (request, request_io) = wasmtime_wasi_http::p3::Request::from_http(http.hooks, with_authority(request));
    let request = http.table.push(request)?;
    store
        .run_concurrent(async move |accessor| -> runtime::wasmtime::Result<()> {
            let answered = service.wasi_http_handler().call_handle(accessor, request).await?;
            let response = match answered {
                Ok(response) => Ok(accessor.with(|mut access| {
                    let response = access.data_mut().served_http().table.delete(response)?;
                    response.into_http_with_getter(&mut access, request_io, served_http::<T>)
                })?),
                Err(code) => Err(ErrorCode::InternalError(Some(format!("the guest answered {code:?}")))),
            };
            // The client may be gone; the guest's tasks still end as theirs.
            let _ = sender.send(response);
            std::future::poll_fn(|context| accessor.poll_no_interesting_tasks(context)).await;
            Ok(())
        })
        .await?
}

/// The store's `wasi:http` state while it serves, for wasmtime-wasi-http's
/// accessors.
fn served_http<T>(state: &mut StoreState<T>) -> WasiHttpCtxView<'_> {
    state.served_http()
}

/// `request` with an absolute URI: WASI 0.3 takes the authority from the
/// URI alone (it drops `Host`, a forbidden header), and a server receives
/// origin-form targets (`/path`). The `Host` header was checked to be
/// visible ASCII before any instance was made.
fn with_authority<B>(request: Request<B>) -> Request<B> {
    if request.uri().authority().is_some() {
        return request;
    }
    let (mut parts, body) = request.into_parts();
    let host = parts.headers.get(http::header::HOST).and_then(|host| host.to_str().ok()).map(str::to_owned);
    if let Some(host) = host {
        let path = parts.uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        if let Ok(uri) = format!("http://{host}{path}").parse() {
            parts.uri = uri;
        }
    }
    Request::from_parts(parts, body)
}
