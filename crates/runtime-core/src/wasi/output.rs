//! Inherited stdout and stderr through a bounded buffer that a host thread
//! drains. wasmtime-wasi's own inherited streams write on the thread that
//! runs the guest, so a reader that stalls (a full pipe) blocks that thread
//! past every deadline. Here a guest's write only queues bytes; when the
//! queue is full the guest waits on a pollable, which its deadline covers.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

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

/// The host's stdout or stderr and the thread that writes to it.
pub(crate) struct Drain {
    chunks: Mutex<mpsc::Sender<Chunk>>,
    queued: AtomicUsize,
    /// Bytes promised by `check-write` permits and not yet written.
    reserved: AtomicUsize,
    /// Streams waiting for room in the process-wide queue.
    waiting: Mutex<Vec<Waker>>,
    /// Signalled after each chunk written, for [`flush_inherited_output`].
    written: (Mutex<()>, Condvar),
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
    waker: Mutex<Option<Waker>>,
    failed: Mutex<Option<std::io::Error>>,
}

/// The host's stdout (`false`) or stderr (`true`), started on first use.
pub(crate) fn drain(stderr: bool) -> &'static Drain {
    static STDOUT: OnceLock<Drain> = OnceLock::new();
    static STDERR: OnceLock<Drain> = OnceLock::new();
    let cell = if stderr { &STDERR } else { &STDOUT };
    cell.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Chunk>();
        let spawned = std::thread::Builder::new().name("wasm-runtime-output".into()).spawn(move || {
            let mut sink = host_sink(stderr);
            for chunk in receiver {
                let written = sink.write_all(&chunk.bytes).and_then(|()| sink.flush());
                if let Err(error) = written
                    && let Ok(mut failed) = chunk.stream.failed.lock()
                {
                    failed.get_or_insert(error);
                }
                let drain = self::drain(stderr);
                drain.queued.fetch_sub(chunk.cost, Ordering::AcqRel);
                chunk.stream.queued.fetch_sub(chunk.cost, Ordering::AcqRel);
                wake(&chunk.stream.waker);
                if let Ok(mut waiting) = drain.waiting.lock() {
                    waiting.drain(..).for_each(Waker::wake);
                }
                let _guard = drain.written.0.lock();
                drain.written.1.notify_all();
            }
        });
        if let Err(error) = spawned {
            tracing::warn!("cannot start the output thread; inherited output is dropped: {error}");
        }
        Drain {
            chunks: Mutex::new(sender),
            queued: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            waiting: Mutex::new(Vec::new()),
            written: (Mutex::new(()), Condvar::new()),
        }
    })
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
    pub(crate) fn new(drain: &'static Drain) -> Self {
        Self { drain, state: Arc::default(), permit: 0 }
    }

    /// What the guest may queue beyond its permit, in bytes with each
    /// write's [`CHUNK_COST`].
    fn room(&self) -> usize {
        let own = MAX_QUEUED_OUTPUT_BYTES
            .saturating_sub(self.state.queued.load(Ordering::Acquire))
            .saturating_sub(self.permit);
        let held = self.drain.queued.load(Ordering::Acquire) + self.drain.reserved.load(Ordering::Acquire);
        own.min(MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS.saturating_sub(held))
    }

    /// Gives back what is left of the permit.
    fn release(&mut self) {
        self.drain.reserved.fetch_sub(self.permit, Ordering::AcqRel);
        self.permit = 0;
    }

    /// Reserves what may be written now as the new permit.
    fn reserve(&mut self) -> usize {
        self.release();
        let own = MAX_QUEUED_OUTPUT_BYTES.saturating_sub(self.state.queued.load(Ordering::Acquire));
        let reserved = &self.drain.reserved;
        let mut before = reserved.load(Ordering::Acquire);
        loop {
            let held = self.drain.queued.load(Ordering::Acquire) + before;
            let room = own.min(MAX_QUEUED_OUTPUT_BYTES_PER_PROCESS.saturating_sub(held));
            match reserved.compare_exchange(before, before + room, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.permit = room;
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
        let stream = self.stream;
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
        let writable = stream.permit > CHUNK_COST || stream.room() > CHUNK_COST;
        if writable || stream.failure().is_some() { Poll::Ready(()) } else { Poll::Pending }
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
        self.state.queued.fetch_add(cost, Ordering::AcqRel);
        self.drain.queued.fetch_add(cost, Ordering::AcqRel);
        let sent = self
            .drain
            .chunks
            .lock()
            .ok()
            .is_some_and(|chunks| chunks.send(Chunk { bytes, cost, stream: self.state.clone() }).is_ok());
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
