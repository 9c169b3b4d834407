//! A real HTTP/1.1 client (hyper's connection API over a Tokio socket).

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A response read whole, or the error that cut its body short.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, String>,
}

impl Answer {
    pub(crate) fn kind(&self) -> Option<&str> {
        self.headers.get(runtime_http::KIND_HEADER).and_then(|value| value.to_str().ok())
    }

    pub(crate) fn text(&self) -> String {
        match &self.body {
            Ok(body) => String::from_utf8_lossy(body).into_owned(),
            Err(error) => format!("<body failed: {error}>"),
        }
    }
}

/// Sends `request` on a new connection and reads the whole answer.
pub(crate) async fn send<B>(addr: SocketAddr, request: Request<B>) -> Result<Answer, Box<dyn std::error::Error>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|collected| collected.to_bytes()).map_err(|error| error.to_string());
    driver.abort();
    Ok(Answer { status: parts.status, headers: parts.headers, body })
}

/// `GET path` with a Host header.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Result<Answer, Box<dyn std::error::Error>> {
    let request = Request::get(path).header("host", addr.to_string()).body(Full::new(Bytes::new()))?;
    send(addr, request).await
}
