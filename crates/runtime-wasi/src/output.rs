//! Inherited stdout and stderr through a bounded buffer that a host thread
//! drains. wasmtime-wasi's own inherited streams write on the thread that
//! runs the guest, so a reader that stalls (a full pipe) blocks that thread
//! past every deadline. Here a guest's write only queues bytes; when the
//! queue is full the guest waits on a pollable, which its deadline covers.

use std::collections::VecDeque;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Bytes one stream may have queued and not yet written.
pub const MAX_QUEUED_OUTPUT_BYTES: usize = 64 * 1024;
/// Bytes all streams to one host stream (stdout or stderr) may have queued:
/// what a stalled reader can make the process hold, whatever the number of
/// instances.
pub const MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS: usize = 1024 * 1024;

/// What the host holds per queued write besides its bytes (the chunk and
/// its channel slot), charged against the queue's bounds with them: a
/// guest writing a byte at a time fills the queue with about 8,000 chunks,
/// not a million.
const CHUNK_COST: usize = 128;

/// Streams that may wait for room in one process-wide queue at once.
const MAX_WAITING_STREAMS: usize = 4096;

/// How long the host's reader must have taken nothing before what ended
/// instances left queued may be dropped for live ones: a slow reader loses
/// nothing, a stalled one holds no guest past its deadline.
const STALLED_AFTER: Duration = Duration::from_secs(1);

/// The host's stdout or stderr and the thread that writes to it.
pub(crate) struct Drain {
    /// Chunks not yet taken by the thread, oldest first.
    chunks: Mutex<VecDeque<Chunk>>,
    /// Signalled when a chunk is queued, for the thread.
    pending: Condvar,
    queued: AtomicUsize,
    /// Bytes promised by `check-write` permits and not yet written.
    reserved: AtomicUsize,
    /// Bytes of ended streams dropped unwritten to make room for live ones.
    dropped: AtomicU64,
    /// Streams waiting for room in the process-wide queue.
    waiting: Mutex<Vec<Waker>>,
    /// Signalled after each chunk written, for [`flush_inherited_output`].
    written: (Mutex<()>, Condvar),
    /// No thread writes: the output is closed.
    closed: AtomicBool,
    /// When the last chunk was written (or the drain started).
    progressed: Mutex<Instant>,
    /// How long without progress counts as stalled ([`STALLED_AFTER`]).
    stalled_after: Duration,
}

struct Chunk {
    bytes: Bytes,
    /// What it takes of the queues' bounds: its bytes and [`CHUNK_COST`].
    cost: usize,
    stream: Arc<StreamState>,
}

/// One guest stream's queued bytes and its waiting writer.
#[derive(Default)]
struct StreamState {
    queued: AtomicUsize,
    /// What the permits of all its streams hold in reserve.
    reserved: AtomicUsize,
    waker: Mutex<Option<Waker>>,
    failed: Mutex<Option<std::io::Error>>,
    /// Its instance ended (by a deadline too): what it still has queued
    /// may be dropped to make room.
    ended: AtomicBool,
}

/// The host's stdout (`false`) or stderr (`true`), started on first use.
pub(crate) fn drain(stderr: bool) -> &'static Drain {
    static STDOUT: OnceLock<&'static Drain> = OnceLock::new();
    static STDERR: OnceLock<&'static Drain> = OnceLock::new();
    let cell = if stderr { &STDERR } else { &STDOUT };
    cell.get_or_init(|| Drain::start(host_sink(stderr), STALLED_AFTER))
}

impl Drain {
    /// A drain writing to `sink` on a thread of its own. Lives as long as
    /// the process: there are two, made once.
    fn start(mut sink: Box<dyn Write + Send>, stalled_after: Duration) -> &'static Drain {
        let drain: &'static Drain = Box::leak(Box::new(Drain {
            chunks: Mutex::new(VecDeque::new()),
            pending: Condvar::new(),
            queued: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            waiting: Mutex::new(Vec::new()),
            written: (Mutex::new(()), Condvar::new()),
            closed: AtomicBool::new(false),
            progressed: Mutex::new(Instant::now()),
            stalled_after,
        }));
        let spawned = std::thread::Builder::new().name("wasm-runtime-output".into()).spawn(move || {
            while let Some(chunk) = drain.next_chunk() {
                // The write begins now: a stall is measured from here, not
                // from the last write before an idle spell.
                drain.progressed_now();
                let written = sink.write_all(&chunk.bytes).and_then(|()| sink.flush());
                if let Err(error) = written
                    && let Ok(mut failed) = chunk.stream.failed.lock()
                {
                    failed.get_or_insert(error);
                }
                drain.progressed_now();
                drain.done(&chunk);
            }
        });
        if let Err(error) = spawned {
            drain.closed.store(true, Ordering::Release);
            tracing::warn!("cannot start the output thread; inherited output is dropped: {error}");
        }
        // A guest that began to wait before the reader stalled is woken by
        // nothing the stalled reader does: this looks again, now and then,
        // while anyone waits.
        let period = stalled_after.clamp(Duration::from_millis(50), STALLED_AFTER);
        let watch = std::thread::Builder::new().name("wasm-runtime-output-watch".into()).spawn(move || {
            loop {
                std::thread::park_timeout(period);
                if drain.waiting.lock().is_ok_and(|waiting| !waiting.is_empty()) {
                    drain.make_room();
                    // Every waiter looks again (and registers again): a
                    // waiter that went away leaves no waker behind for long.
                    if let Ok(mut waiting) = drain.waiting.lock() {
                        waiting.drain(..).for_each(Waker::wake);
                    }
                }
            }
        });
        if let Err(error) = watch {
            tracing::warn!(
                "cannot start the output watch; a stalled reader holds waiting guests to their deadlines: {error}"
            );
        }
        drain
    }

    /// The oldest chunk, once there is one (`None`: the queue is poisoned).
    fn next_chunk(&self) -> Option<Chunk> {
        let mut chunks = self.chunks.lock().ok()?;
        loop {
            if let Some(chunk) = chunks.pop_front() {
                return Some(chunk);
            }
            chunks = self.pending.wait(chunks).ok()?;
        }
    }

    fn progressed_now(&self) {
        if let Ok(mut progressed) = self.progressed.lock() {
            *progressed = Instant::now();
        }
    }

    /// `chunk` left the queue (written or dropped): its room is free again.
    fn done(&self, chunk: &Chunk) {
        self.queued.fetch_sub(chunk.cost, Ordering::AcqRel);
        chunk.stream.queued.fetch_sub(chunk.cost, Ordering::AcqRel);
        wake(&chunk.stream.waker);
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.drain(..).for_each(Waker::wake);
        }
        let _guard = self.written.0.lock();
        self.written.1.notify_all();
    }

    /// Room left in the process-wide queue.
    fn room(&self) -> usize {
        let held = self.queued.load(Ordering::Acquire) + self.reserved.load(Ordering::Acquire);
        MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS.saturating_sub(held)
    }

    /// When the process-wide queue could hold a live stream back and the
    /// reader has stalled, drops what ended streams still have queued: a
    /// stalled reader then keeps a guest waiting within its own deadline,
    /// and never past it the guests that come after. Counted in
    /// [`Self::dropped`] and logged.
    fn make_room(&self) {
        if self.room() >= MAX_QUEUED_OUTPUT_BYTES {
            return;
        }
        let stalled = self.progressed.lock().is_ok_and(|progressed| progressed.elapsed() >= self.stalled_after);
        if !stalled {
            return;
        }
        let Ok(mut chunks) = self.chunks.lock() else { return };
        if !chunks.iter().any(|chunk| chunk.stream.ended.load(Ordering::Acquire)) {
            return;
        }
        let (ended, live): (VecDeque<Chunk>, VecDeque<Chunk>) =
            chunks.drain(..).partition(|chunk| chunk.stream.ended.load(Ordering::Acquire));
        *chunks = live;
        drop(chunks);
        let bytes: usize = ended.iter().map(|chunk| chunk.bytes.len()).sum();
        ended.iter().for_each(|chunk| self.done(chunk));
        let total = self.dropped.fetch_add(bytes as u64, Ordering::AcqRel) + bytes as u64;
        tracing::warn!(
            dropped_bytes = bytes,
            total_dropped_bytes = total,
            "dropped output of ended instances that the host's reader has not taken"
        );
    }
}

/// The host's stdout or stderr as a file of the output thread's own (a
/// duplicate of the descriptor): writing to it takes none of std's locks,
/// so a reader that stalls blocks this thread alone, never the host's own
/// writes (its log lines, its reports) to the same stream.
fn host_sink(stderr: bool) -> Box<dyn Write + Send> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        let duplicate = if stderr {
            std::io::stderr().as_fd().try_clone_to_owned()
        } else {
            std::io::stdout().as_fd().try_clone_to_owned()
        };
        if let Ok(fd) = duplicate {
            return Box::new(std::fs::File::from(fd));
        }
    }
    if stderr { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) }
}

/// Waits until guests' inherited output queued so far has been written, or
/// `deadline` passes (a reader that stalls); `true` when all was written.
/// A process that exits after running guests calls this first.
pub fn flush_inherited_output(deadline: Instant) -> bool {
    [false, true].into_iter().all(|stderr| {
        let drain = drain(stderr);
        let Ok(mut guard) = drain.written.0.lock() else { return false };
        while drain.queued.load(Ordering::Acquire) > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            guard = match drain.written.1.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(_) => return false,
            };
        }
        true
    })
}

fn wake(waker: &Mutex<Option<Waker>>) {
    if let Some(waker) = waker.lock().ok().and_then(|mut w| w.take()) {
        waker.wake();
    }
}

/// One instance's stdout or stderr: one queue account shared by every
/// stream the guest opens on it (a guest may open one per write), ended
/// when the instance ends (its store, and so this, dropped).
pub(crate) struct InstanceOutput {
    drain: &'static Drain,
    state: Arc<StreamState>,
}

impl InstanceOutput {
    pub(crate) fn new(drain: &'static Drain) -> Self {
        Self { drain, state: Arc::default() }
    }

    /// The same account, for an instance whose stdout goes where its
    /// stderr goes: one share of the queue, not two.
    pub(crate) fn shared(&self) -> Self {
        Self { drain: self.drain, state: self.state.clone() }
    }

    /// A stream for the guest, on this instance's account.
    pub(crate) fn stream(&self) -> InheritedStream {
        InheritedStream { drain: self.drain, state: self.state.clone(), permit: 0 }
    }
}

impl Drop for InstanceOutput {
    fn drop(&mut self) {
        self.state.ended.store(true, Ordering::Release);
        // What it left queued may now make room for those waiting.
        if self.state.queued.load(Ordering::Acquire) > 0
            && let Ok(mut waiting) = self.drain.waiting.lock()
        {
            waiting.drain(..).for_each(Waker::wake);
        }
    }
}

/// A guest's stdout or stderr stream writing through a [`Drain`].
pub(crate) struct InheritedStream {
    drain: &'static Drain,
    state: Arc<StreamState>,
    /// What the last `check-write` promised and reserved in the queue (in
    /// bytes with one [`CHUNK_COST`]): the
    /// `write` that follows gets them whatever other instances wrote since.
    permit: usize,
}

impl InheritedStream {
    /// What the guest may queue beyond its permit, in bytes with each
    /// write's [`CHUNK_COST`].
    fn room(&self) -> usize {
        own_room(&self.state).min(self.drain.room())
    }

    /// Gives back what is left of the permit.
    fn release(&mut self) {
        self.drain.reserved.fetch_sub(self.permit, Ordering::AcqRel);
        self.state.reserved.fetch_sub(self.permit, Ordering::AcqRel);
        self.permit = 0;
    }

    /// Reserves what may be written now as the new permit: within what the
    /// instance's stream account has left after every one of its streams'
    /// permits (a guest may open many streams), and the process queue's room.
    fn reserve(&mut self) -> usize {
        self.release();
        self.drain.make_room();
        let own = own_room(&self.state);
        let reserved = &self.drain.reserved;
        let mut before = reserved.load(Ordering::Acquire);
        loop {
            let held = self.drain.queued.load(Ordering::Acquire) + before;
            let room = own.min(MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS.saturating_sub(held));
            match reserved.compare_exchange(before, before + room, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.permit = room;
                    self.state.reserved.fetch_add(room, Ordering::AcqRel);
                    return room;
                }
                Err(now) => before = now,
            }
        }
    }

    fn failure(&self) -> Option<StreamError> {
        let failed = self.state.failed.lock().ok()?;
        let error = failed.as_ref()?;
        Some(StreamError::LastOperationFailed(wasmtime::Error::msg(format!("writing the host's output: {error}"))))
    }
}

/// What an instance's stream account may still queue or reserve.
fn own_room(state: &StreamState) -> usize {
    MAX_QUEUED_OUTPUT_BYTES
        .saturating_sub(state.queued.load(Ordering::Acquire))
        .saturating_sub(state.reserved.load(Ordering::Acquire))
}

impl Drop for InheritedStream {
    fn drop(&mut self) {
        self.release();
    }
}

#[async_trait]
impl Pollable for InheritedStream {
    async fn ready(&mut self) {
        Room { stream: self }.await;
    }
}

/// Resolves when the stream may write again (or has failed).
struct Room<'a> {
    stream: &'a InheritedStream,
}

impl Future for Room<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        poll_room(self.stream, cx)
    }
}

/// Ready when `stream` may write again (or has failed); else `cx` is woken
/// when room is made.
fn poll_room(stream: &InheritedStream, cx: &mut Context<'_>) -> Poll<()> {
    // Register first, then look: a chunk drained in between wakes us.
    if let Ok(mut waker) = stream.state.waker.lock() {
        *waker = Some(cx.waker().clone());
    }
    if let Ok(mut waiting) = stream.drain.waiting.lock()
        && !waiting.iter().any(|waker| waker.will_wake(cx.waker()))
    {
        // Bounded: past the cap a waiter is woken at once and looks again.
        if waiting.len() >= MAX_WAITING_STREAMS {
            cx.waker().wake_by_ref();
        } else {
            waiting.push(cx.waker().clone());
        }
    }
    stream.drain.make_room();
    let writable = stream.permit > CHUNK_COST || stream.room() > CHUNK_COST;
    if writable || stream.failure().is_some() { Poll::Ready(()) } else { Poll::Pending }
}

/// An instance's inherited stdout or stderr as wasmtime-wasi's context
/// holds it, so WASI 0.3 writes (an `AsyncWrite`) go through the same
/// bounded queue and account as WASI 0.2 streams.
pub(crate) struct InheritedOutput {
    output: InstanceOutput,
    terminal: bool,
}

impl InheritedOutput {
    /// `output`'s account; `terminal`: whether the host's stream is a TTY
    /// (what `wasi:cli/terminal-*` answers).
    pub(crate) fn new(output: InstanceOutput, terminal: bool) -> Self {
        Self { output, terminal }
    }
}

impl wasmtime_wasi::cli::IsTerminal for InheritedOutput {
    fn is_terminal(&self) -> bool {
        self.terminal
    }
}

impl wasmtime_wasi::cli::StdoutStream for InheritedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(QueueWriter(self.output.stream()))
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.output.stream())
    }
}

/// [`InheritedStream`] as an `AsyncWrite`: each write takes what the queue
/// has room for now, or waits for room (never for the reader itself).
struct QueueWriter(InheritedStream);

impl tokio::io::AsyncWrite for QueueWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let failed = |error: StreamError| Poll::Ready(Err(std::io::Error::other(format!("{error:?}"))));
        // Twice at most: room seen by `poll_room` is reserved on the second look.
        for _ in 0..2 {
            let allowed = match self.0.check_write() {
                Ok(allowed) => allowed,
                Err(error) => return failed(error),
            };
            if allowed > 0 {
                let taken = allowed.min(buf.len());
                return match self.0.write(Bytes::copy_from_slice(&buf[..taken])) {
                    Ok(()) => Poll::Ready(Ok(taken)),
                    Err(error) => failed(error),
                };
            }
            if poll_room(&self.0, cx).is_pending() {
                return Poll::Pending;
            }
        }
        // Room came and went to another writer: look again on the next poll.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl OutputStream for InheritedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if let Some(failure) = self.failure() {
            return Err(failure);
        }
        let len = bytes.len();
        let cost = len + CHUNK_COST;
        if cost > self.permit + self.room() {
            return Err(StreamError::Trap(wasmtime::Error::msg(
                "write exceeds what check-write allowed on an inherited output stream",
            )));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        // The permit moves from reserved to queued.
        let used = cost.min(self.permit);
        self.permit -= used;
        self.drain.reserved.fetch_sub(used, Ordering::AcqRel);
        self.state.reserved.fetch_sub(used, Ordering::AcqRel);
        self.state.queued.fetch_add(cost, Ordering::AcqRel);
        self.drain.queued.fetch_add(cost, Ordering::AcqRel);
        let open = !self.drain.closed.load(Ordering::Acquire);
        let sent = open
            && self.drain.chunks.lock().is_ok_and(|mut chunks| {
                chunks.push_back(Chunk { bytes, cost, stream: self.state.clone() });
                true
            });
        self.drain.pending.notify_one();
        if !sent {
            self.state.queued.fetch_sub(cost, Ordering::AcqRel);
            self.drain.queued.fetch_sub(cost, Ordering::AcqRel);
            return Err(StreamError::LastOperationFailed(wasmtime::Error::msg("the host's output is closed")));
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Queued bytes are written in order by the drain; `write_ready`
        // after a flush waits for room, not for the reader.
        match self.failure() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match self.failure() {
            Some(failure) => Err(failure),
            // The permit is reserved with the write's own cost.
            None => Ok(self.reserve().saturating_sub(CHUNK_COST)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink that takes nothing until `open` is set: a reader that stalls.
    struct Gated {
        open: Arc<(Mutex<bool>, Condvar)>,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gated {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let (open, opened) = &*self.open;
            let mut guard = open.lock().map_err(|_| std::io::ErrorKind::Other)?;
            while !*guard {
                guard = opened.wait(guard).map_err(|_| std::io::ErrorKind::Other)?;
            }
            self.taken.lock().map_err(|_| std::io::ErrorKind::Other)?.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Writes `byte` into `stream` until it has no room left; the bytes written.
    fn fill(stream: &mut InheritedStream, byte: u8) -> usize {
        let mut total = 0;
        loop {
            let room = stream.check_write().unwrap_or(0).min(8192);
            if room == 0 {
                return total;
            }
            assert!(stream.write(Bytes::from(vec![byte; room])).is_ok());
            total += room;
        }
    }

    #[test]
    fn a_stalled_reader_holds_ended_streams_output_only_until_a_live_stream_needs_room() {
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let drain = Drain::start(Box::new(Gated { open: open.clone(), taken: taken.clone() }), Duration::ZERO);
        // Sixteen guests fill the process-wide queue while nobody reads.
        let ended: Vec<InstanceOutput> = (0..16).map(|_| InstanceOutput::new(drain)).collect();
        let queued: usize = ended.iter().map(|output| fill(&mut output.stream(), b'x')).sum();
        assert!(queued > MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS / 2, "{queued}");
        let live_output = InstanceOutput::new(drain);
        let mut live = live_output.stream();
        assert_eq!(fill(&mut live, b'y'), 0, "the process-wide bound holds while the writers live");
        // Their instances end (a deadline): their output gives way.
        drop(ended);
        let written = fill(&mut live, b'y');
        assert!(written >= MAX_QUEUED_OUTPUT_BYTES / 2, "the live guest got room: {written}");
        let dropped = drain.dropped.load(Ordering::Acquire);
        assert!(dropped > 0 && dropped as usize <= queued, "{dropped} of {queued}");
        // The reader comes back: the live guest's output is all there.
        *open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        open.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while drain.queued.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let taken = taken.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert_eq!(taken.iter().filter(|byte| **byte == b'y').count(), written);
        assert_eq!(taken.iter().filter(|byte| **byte == b'x').count() + dropped as usize, queued);
    }

    #[test]
    fn output_of_an_ended_stream_is_still_written_when_nobody_needs_its_room() {
        let open = Arc::new((Mutex::new(true), Condvar::new()));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let drain = Drain::start(Box::new(Gated { open, taken: taken.clone() }), Duration::ZERO);
        let output = InstanceOutput::new(drain);
        let written = fill(&mut output.stream(), b'z');
        drop(output);
        let deadline = Instant::now() + Duration::from_secs(10);
        while drain.queued.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(taken.lock().map(|taken| taken.len()).unwrap_or(0), written);
        assert_eq!(drain.dropped.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_reader_that_has_not_stalled_loses_nothing_of_ended_streams() {
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let drain =
            Drain::start(Box::new(Gated { open: open.clone(), taken: taken.clone() }), Duration::from_secs(3600));
        let ended: Vec<InstanceOutput> = (0..16).map(|_| InstanceOutput::new(drain)).collect();
        let queued: usize = ended.iter().map(|output| fill(&mut output.stream(), b'x')).sum();
        drop(ended);
        let live_output = InstanceOutput::new(drain);
        let mut live = live_output.stream();
        assert_eq!(fill(&mut live, b'y'), 0, "the live guest waits: the reader is slow, not stalled");
        assert_eq!(drain.dropped.load(Ordering::Acquire), 0);
        *open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        open.1.notify_all();
        let deadline = Instant::now() + Duration::from_secs(10);
        while drain.queued.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(taken.lock().map(|taken| taken.len()).unwrap_or(0), queued, "every ended stream's byte written");
    }

    #[test]
    fn an_instance_holds_one_streams_share_however_many_streams_it_opens() {
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let taken = Arc::new(Mutex::new(Vec::new()));
        let drain = Drain::start(Box::new(Gated { open, taken }), Duration::from_secs(3600));
        let output = InstanceOutput::new(drain);
        let mut streams: Vec<InheritedStream> = (0..16).map(|_| output.stream()).collect();
        // Each stream's permit comes out of the one account.
        let permitted: usize = streams.iter_mut().map(|stream| stream.check_write().unwrap_or(0)).sum();
        assert!(permitted <= MAX_QUEUED_OUTPUT_BYTES, "16 streams reserved {permitted}");
        // Another instance still finds room in the process queue.
        let other = InstanceOutput::new(drain);
        assert!(other.stream().check_write().unwrap_or(0) > MAX_QUEUED_OUTPUT_BYTES / 2);
    }
}
