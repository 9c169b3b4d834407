//! The request body as the guest reads it: cut at the limit, and read to
//! its end (or the limit) by the server itself when the guest answers
//! before it has, so a chunked body over the limit is `413` whatever the
//! guest answered.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::Error;

/// What is known of a request body's length so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not read to its end yet.
    Open,
    /// Read to its end within the limit.
    Whole,
    /// It passed the limit.
    Cut,
    /// Its client's connection failed before its end.
    Failed,
}

struct State<B> {
    /// The client's body, until it ends, fails or passes the limit.
    body: Option<Pin<Box<B>>>,
    seen: u64,
    max: u64,
    verdict: Verdict,
    /// Data the server read ahead while it held the guest's answer, for
    /// the guest to read next, in one buffer (at most `max` bytes, however
    /// small the client's chunks), then the body's trailers if it had any.
    ahead: BytesMut,
    trailers: Option<http::HeaderMap>,
    /// The client's error, when the server met it, for the guest's next read.
    error: Option<Error>,
    /// The server reads the body: the guest waits for frames it leaves.
    server_reads: bool,
    guest: Option<Waker>,
    /// The guest dropped its body: what the server reads is thrown away.
    guest_gone: bool,
    /// The guest asked for a frame at least once.
    guest_read: bool,
}

type Shared<B> = Arc<Mutex<State<B>>>;

fn lock<B>(shared: &Shared<B>) -> MutexGuard<'_, State<B>> {
    // No code below panics while holding it; a poisoned lock's state is whole.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `body`, limited to `max` bytes, and the server's view of it.
pub(crate) fn limited<B: Body>(body: B, max: u64) -> (GuestBody<B>, BodyProgress<B>) {
    let ended = body.is_end_stream();
    let state = State {
        body: (!ended).then(|| Box::pin(body)),
        seen: 0,
        max,
        verdict: if ended { Verdict::Whole } else { Verdict::Open },
        ahead: BytesMut::new(),
        trailers: None,
        error: None,
        server_reads: false,
        guest: None,
        guest_gone: false,
        guest_read: false,
    };
    let shared = Arc::new(Mutex::new(state));
    (GuestBody { shared: shared.clone() }, BodyProgress { shared })
}

impl<B> State<B>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    /// Polls the client's body once, judging what it gives.
    fn poll_client(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(body) = self.body.as_mut() else { return Poll::Ready(None) };
        let polled = match body.as_mut().poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(polled) => polled,
        };
        match polled {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, Bytes::len) as u64;
                self.seen = self.seen.saturating_add(len);
                if self.seen > self.max {
                    self.end(Verdict::Cut);
                    return Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(self.max)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                self.end(Verdict::Failed);
                Poll::Ready(Some(Err(client_error(error))))
            }
            None => {
                self.end(Verdict::Whole);
                Poll::Ready(None)
            }
        }
    }

    fn end(&mut self, verdict: Verdict) {
        self.verdict = verdict;
        self.body = None;
        if let Some(guest) = self.guest.take() {
            guest.wake();
        }
    }
}

fn client_error<E: std::error::Error + Send + Sync + 'static>(error: E) -> Error {
    let error: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    match error.downcast::<hyper::Error>() {
        Ok(hyper) => Error::Hyper(*hyper),
        Err(other) => Error::InternalError(Some(other.to_string())),
    }
}

/// The body the guest reads.
pub(crate) struct GuestBody<B> {
    shared: Shared<B>,
}

impl<B> Drop for GuestBody<B> {
    fn drop(&mut self) {
        let mut state = lock(&self.shared);
        state.guest_gone = true;
        state.ahead = BytesMut::new();
        state.trailers = None;
        state.guest = None;
    }
}

impl<B> Body for GuestBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let mut state = lock(&self.shared);
        state.guest_read = true;
        if !state.ahead.is_empty() {
            let data = state.ahead.split().freeze();
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if let Some(error) = state.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if let Some(trailers) = state.trailers.take() {
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        // Registered whoever reads: the server, taking over, wakes it.
        state.guest = Some(cx.waker().clone());
        match state.verdict {
            Verdict::Open if state.server_reads => Poll::Pending,
            Verdict::Open => state.poll_client(cx),
            Verdict::Cut => Poll::Ready(Some(Err(Error::HttpRequestBodySize(Some(state.max))))),
            Verdict::Whole | Verdict::Failed => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let state = lock(&self.shared);
        state.ahead.is_empty() && state.error.is_none() && state.trailers.is_none() && state.verdict != Verdict::Open
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The server's view of a request body.
pub(crate) struct BodyProgress<B> {
    shared: Shared<B>,
}

impl<B> BodyProgress<B>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    pub(crate) fn verdict(&self) -> Verdict {
        lock(&self.shared).verdict
    }

    /// Whether the guest ever asked for the body.
    pub(crate) fn guest_read(&self) -> bool {
        lock(&self.shared).guest_read
    }

    /// Reads the body to its end or its limit, keeping what the guest has
    /// not read for it (at most the limit) and throwing away the rest once
    /// the guest dropped its body; gives up at `deadline` (`Open`).
    pub(crate) async fn settle(&self, deadline: Instant) -> Verdict {
        // The guest may be waiting on the client's body with its own waker:
        // from now on the server polls it, and wakes the guest with what it reads.
        let _handback = HandBack::take_over(&self.shared);
        let read = std::future::poll_fn(|cx| {
            let mut state = lock(&self.shared);
            loop {
                match state.poll_client(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(Ok(frame))) if !state.guest_gone => match frame.into_data() {
                        Ok(data) => state.ahead.extend_from_slice(&data),
                        Err(frame) => state.trailers = frame.into_trailers().ok(),
                    },
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(error))) => {
                        if !state.guest_gone && state.verdict == Verdict::Failed {
                            state.error = Some(error);
                        }
                    }
                    Poll::Ready(None) => {}
                }
                if let Some(guest) = state.guest.take() {
                    guest.wake();
                }
                if state.verdict != Verdict::Open {
                    return Poll::Ready(state.verdict);
                }
            }
        });
        tokio::time::timeout_at(deadline.into(), read).await.unwrap_or(Verdict::Open)
    }
}

/// The server reading the body in the guest's place while it lives:
/// dropped (the body settled, the deadline passed, or the client left and
/// the wait was dropped), the guest reads for itself again, woken to do so.
struct HandBack<'a, B> {
    shared: &'a Shared<B>,
}

impl<'a, B> HandBack<'a, B> {
    fn take_over(shared: &'a Shared<B>) -> Self {
        let mut state = lock(shared);
        state.server_reads = true;
        if let Some(guest) = state.guest.take() {
            guest.wake();
        }
        drop(state);
        Self { shared }
    }
}

impl<B> Drop for HandBack<'_, B> {
    fn drop(&mut self) {
        let mut state = lock(self.shared);
        state.server_reads = false;
        if let Some(guest) = state.guest.take() {
            guest.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn chunks(count: usize) -> impl Body<Data = Bytes, Error = std::io::Error> {
        let frames = (0..count).map(|_| Ok(Frame::data(Bytes::from_static(&[b'a'; 1024]))));
        StreamBody::new(futures::stream::iter(frames))
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[tokio::test]
    async fn a_guest_still_holding_its_body_reads_all_the_server_read_ahead() {
        let (guest, progress) = limited(chunks(8), 8 * 1024);
        assert_eq!(progress.settle(soon()).await, Verdict::Whole);
        let read = guest.collect().await.map(|body| body.to_bytes().len());
        assert_eq!(read.ok(), Some(8 * 1024));
    }

    #[tokio::test]
    async fn past_the_limit_the_server_sees_a_cut_and_the_guest_a_size_error() {
        let (guest, progress) = limited(chunks(9), 8 * 1024);
        assert_eq!(progress.settle(soon()).await, Verdict::Cut);
        let read = guest.collect().await;
        assert!(matches!(read, Err(Error::HttpRequestBodySize(Some(8192)))), "{read:?}");
    }

    #[tokio::test]
    async fn a_dropped_guest_body_is_read_to_its_end_and_thrown_away() {
        let (guest, progress) = limited(chunks(64), 1 << 20);
        drop(guest);
        assert_eq!(progress.settle(soon()).await, Verdict::Whole);
        assert!(lock(&progress.shared).ahead.is_empty());
        assert!(lock(&progress.shared).trailers.is_none());
    }

    #[tokio::test]
    async fn a_body_whose_end_never_comes_is_open_at_the_deadline() {
        use futures::StreamExt as _;
        let frames = futures::stream::iter([Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"a")))]);
        let (guest, progress) = limited(StreamBody::new(frames.chain(futures::stream::pending())), 1024);
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(progress.settle(deadline).await, Verdict::Open);
        drop(guest);
    }

    /// Counts its wakes.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_guest_waiting_on_the_client_is_woken_when_the_server_takes_over() {
        let (send, receive) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        let frames = futures::stream::unfold(receive, |mut receive| async move {
            receive.recv().await.map(|frame| (frame, receive))
        });
        let (mut guest, progress) = limited(StreamBody::new(frames), 1024);
        // The guest asks first: nothing has come, it waits on the client.
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut guest).poll_frame(&mut cx).is_pending());
        // The server takes over; what the client sends then reaches the guest.
        let settled = tokio::spawn(async move { progress.settle(soon()).await });
        assert!(send.send(Ok(Frame::data(Bytes::from_static(b"abc")))).await.is_ok());
        drop(send);
        assert_eq!(settled.await.ok(), Some(Verdict::Whole));
        assert!(wakes.0.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the guest was never woken");
        let read = Pin::new(&mut guest).poll_frame(&mut cx);
        let data = match read {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().ok(),
            _ => None,
        };
        assert_eq!(data.as_deref(), Some(&b"abc"[..]));
    }

    #[tokio::test]
    async fn read_ahead_of_tiny_chunks_is_one_buffer_within_the_limit() {
        let frames = (0..1000).map(|_| Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(b"x"))));
        let (guest, progress) = limited(StreamBody::new(futures::stream::iter(frames)), 1000);
        assert_eq!(progress.settle(soon()).await, Verdict::Whole);
        assert_eq!(lock(&progress.shared).ahead.len(), 1000);
        let read = guest.collect().await.map(|body| body.to_bytes().len());
        assert_eq!(read.ok(), Some(1000));
    }
}
