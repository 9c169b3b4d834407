//! The response body: the guest's, cut off at the request's deadline.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use runtime::CancellationToken;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// Why a response body ended early. hyper ends the connection abruptly on
/// it, so a client never mistakes a truncated body for a whole one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The request's deadline passed while the body was still being written.
    #[error("the request's deadline passed while its response body was being written")]
    Deadline,
    /// The guest's body failed (it trapped, or dropped the body unfinished).
    #[error("the component's response body failed: {0}")]
    Guest(String),
}

/// How the guest's call ended, once it has: set by the call's task before
/// its store (and so the body's sender) is dropped.
#[derive(Clone, Default)]
pub(crate) struct CallOutcome(Arc<OnceLock<&'static str>>);

impl CallOutcome {
    pub(crate) fn set(&self, kind: &'static str) {
        let _ = self.0.set(kind);
    }

    /// The kind of a call that failed.
    fn failure(&self) -> Option<&'static str> {
        self.0.get().copied().filter(|kind| *kind != "ok")
    }
}

/// The body of every response [`HttpService`](crate::HttpService) gives.
pub type ResponseBody = UnsyncBoxBody<Bytes, BodyError>;

/// `body`, failing with [`BodyError::Deadline`] once `deadline` passes.
/// A body whose call failed (wasmtime-wasi-http ends a body its guest never
/// finished as if it were complete) fails too. Dropped unfinished after it
/// began to be written (its client went away, or its connection failed),
/// it cancels `gone`, which stops the call; with `finish`, the body is read
/// on to its end or the deadline and thrown away instead, so its guest can
/// finish. A body with a declared length (`content-length`) has ended once
/// that many bytes went out: hyper stops asking for frames then, and may drop
/// it before the guest's call (a WASI 0.3 guest's tasks) has ended.
pub(crate) fn until_deadline(
    body: HyperOutgoingBody,
    declared_length: Option<u64>,
    deadline: Instant,
    outcome: CallOutcome,
    (gone, finish): (CancellationToken, bool),
) -> ResponseBody {
    let sleep = Box::pin(tokio::time::sleep_until(deadline.into()));
    let inner = body.map_err(|error| BodyError::Guest(format!("{error:?}"))).boxed_unsync();
    Deadlined { inner, sleep, outcome, gone, finish, polled: false, ended: false, left: declared_length }.boxed_unsync()
}

struct Deadlined {
    inner: ResponseBody,
    sleep: Pin<Box<tokio::time::Sleep>>,
    outcome: CallOutcome,
    gone: CancellationToken,
    finish: bool,
    /// hyper asked for a frame: a body never asked for (the answer to a
    /// `HEAD`, a `204`) is dropped unread with its client still there.
    polled: bool,
    /// It ended, whole or failed: dropping it then leaves the call alone.
    ended: bool,
    /// Bytes still to come of a declared length.
    left: Option<u64>,
}

impl Drop for Deadlined {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        if self.polled {
            self.gone.cancel();
        }
        if self.finish
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let rest =
                std::mem::replace(&mut self.inner, http_body_util::Empty::new().map_err(|n| match n {}).boxed_unsync());
            let deadline = self.sleep.deadline();
            runtime.spawn(async move {
                let drained = async move {
                    let mut rest = rest;
                    while let Some(Ok(_)) = rest.frame().await {}
                };
                let _ = tokio::time::timeout_at(deadline, drained).await;
            });
        }
    }
}

impl Body for Deadlined {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.polled = true;
        let polled = self.poll_inner(cx);
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.ended = true,
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(left), Some(data)) = (self.left.as_mut(), frame.data_ref()) {
                    *left = left.saturating_sub(data.len() as u64);
                    self.ended |= *left == 0;
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Deadlined {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => match self.outcome.failure() {
                Some(kind) => Poll::Ready(Some(Err(BodyError::Guest(format!("the component failed ({kind})"))))),
                None => Poll::Ready(None),
            },
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Deadline))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
