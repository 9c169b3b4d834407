//! What an instance's files hold of a read-write grant's account: a
//! [`Quota`] (the grant's account and limits), a [`FileHold`] for each open
//! descriptor or stream (an unlinked file stays charged while one lives),
//! and [`QuotaStream`], an output stream charged by the file's end it
//! reaches. A refusal is the error a full file system gives
//! (`insufficient-space`), so guests handle it as they would a full disk.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

use crate::grant_dir::{GrantAccount, OpenFile, Refused, file_identity};
use crate::grants::Preopen;
use runtime_core::DiskUsage;

/// `ENOSPC`, which wasmtime-wasi reports to the guest as `insufficient-space`.
const ENOSPC: i32 = 28;

/// The I/O error a full disk gives.
pub(crate) fn no_space() -> io::Error {
    io::Error::from_raw_os_error(ENOSPC)
}

/// A read-write grant's account with this component's limits on it.
#[derive(Clone)]
pub(crate) struct Quota {
    pub(crate) account: Arc<GrantAccount>,
    guest: String,
    pub(crate) max_bytes: u64,
    pub(crate) max_entries: u64,
}

impl Quota {
    pub(crate) fn of(preopen: &Preopen) -> Option<Self> {
        let account = preopen.account.clone()?;
        Some(Self {
            account,
            guest: preopen.guest.clone(),
            max_bytes: preopen.max_bytes,
            max_entries: preopen.max_entries,
        })
    }

    /// Takes an entry holding `bytes` (see [`GrantAccount::charge_entry`]).
    pub(crate) fn charge_entry(&self, bytes: u64) -> Result<(), Refused> {
        self.account.charge_entry(bytes, self.max_entries, self.max_bytes)
    }

    pub(crate) fn grow(&self, key: u64, end: u64) -> Result<(), Refused> {
        self.account.grow(key, end, self.max_bytes)
    }

    /// Holds `file` open in the account (a writer may have writes in flight).
    pub(crate) fn hold(&self, file: &std::fs::File, writer: bool) -> io::Result<FileHold> {
        let (key, size, allocated) = file_identity(file)?;
        self.account.opened(key, size, allocated, writer);
        Ok(FileHold { open: OpenFile::new(key) })
    }

    /// What the report shows of this grant.
    pub(crate) fn usage(&self) -> DiskUsage {
        let (bytes, entries, refused) = self.account.totals();
        // Filled in field by field: the kernel's report type is non-exhaustive.
        let mut usage = DiskUsage::default();
        usage.guest_path = self.guest.clone();
        (usage.bytes, usage.max_bytes) = (bytes, self.max_bytes);
        (usage.entries, usage.max_entries) = (entries, self.max_entries);
        usage.refused = refused;
        usage
    }
}

/// A descriptor's or stream's hold on a file, through any grant: while
/// one lives, the file's bytes stay charged even if it is unlinked.
pub(crate) struct FileHold {
    open: OpenFile,
}

impl FileHold {
    /// A hold on a file of a read-only grant, which charges nothing but
    /// keeps a read-write grant's unlinked file charged all the same.
    pub(crate) fn of(file: &std::fs::File) -> io::Result<Self> {
        Ok(Self { open: OpenFile::new(file_identity(file)?.0) })
    }

    pub(crate) fn key(&self) -> u64 {
        self.open.key
    }
}

/// Writes to a read-write grant's file, charged before they happen by the
/// end of the file they reach: a byte written at 64 MiB costs 64 MiB,
/// however sparse the file. Both WASI versions' write streams charge
/// through one.
pub(crate) struct ChargedWrites {
    quota: Quota,
    hold: FileHold,
    pub(crate) file: Arc<std::fs::File>,
    /// Where the next write lands; `None` appends at the file's end.
    pub(crate) position: Option<u64>,
}

impl ChargedWrites {
    pub(crate) fn new(quota: Quota, file: Arc<std::fs::File>, position: Option<u64>) -> io::Result<Self> {
        let hold = quota.hold(&file, true)?;
        Ok(Self { quota, hold, file, position })
    }

    /// Charges a write of `len` bytes where the next one lands.
    pub(crate) fn charge(&self, len: u64) -> Result<(), Refused> {
        let key = self.hold.key();
        match self.position {
            Some(position) => self.quota.grow(key, position.saturating_add(len)),
            None => {
                let on_disk = self.file.metadata().map_or(0, |meta| meta.len());
                self.quota.account.grow_append(key, on_disk, len, self.quota.max_bytes)
            }
        }
    }

    /// Writes `data` where the next write lands: at the position, or at the
    /// file's end in one step for an append.
    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        match self.position {
            Some(position) => self.file.write_at(data, position),
            None => append(&self.file, data),
        }
    }

    /// `len` bytes were written where the next write lands.
    pub(crate) fn advance(&mut self, len: u64) {
        if let Some(position) = &mut self.position {
            *position = position.saturating_add(len);
        }
    }
}

impl Drop for ChargedWrites {
    fn drop(&mut self) {
        let now = file_identity(&self.file).ok().map(|(_, size, allocated)| (size, allocated));
        self.quota.account.writer_closed(self.hold.key(), now);
    }
}

/// Appends `data` at `file`'s end in one step, as wasmtime-wasi's own append
/// streams do (`pwritev2` with `RWF_APPEND` on Linux): appends of several
/// instances to one file never land on the same bytes. Where the kernel
/// lacks it, appends are made one at a time in the process, which holds a
/// read-write grant alone.
fn append(file: &std::fs::File, data: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::{Errno, ReadWriteFlags, pwritev2};
        match pwritev2(file, &[io::IoSlice::new(data)], 0, ReadWriteFlags::APPEND) {
            Err(Errno::NOSYS | Errno::NOTSUP) => {}
            written => return Ok(written?),
        }
    }
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    std::os::unix::fs::FileExt::write_at(file, data, file.metadata()?.len())
}

/// A file's p2 output stream whose writes are [`ChargedWrites`].
pub(crate) struct QuotaStream {
    inner: DynOutputStream,
    writes: ChargedWrites,
}

impl QuotaStream {
    pub(crate) fn wrap(
        inner: DynOutputStream,
        quota: Quota,
        file: Arc<std::fs::File>,
        position: Option<u64>,
    ) -> io::Result<DynOutputStream> {
        Ok(Box::new(Self { inner, writes: ChargedWrites::new(quota, file, position)? }))
    }
}

#[async_trait]
impl Pollable for QuotaStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl OutputStream for QuotaStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let len = bytes.len() as u64;
        if self.writes.charge(len).is_err() {
            return Err(StreamError::LastOperationFailed(wasmtime::Error::new(no_space())));
        }
        self.inner.write(bytes)?;
        self.writes.advance(len);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

/// A file's input stream that holds the file (an unlinked file it reads
/// stays charged until it drops).
pub(crate) struct HeldInput {
    inner: DynInputStream,
    _hold: FileHold,
}

impl HeldInput {
    pub(crate) fn wrap(inner: DynInputStream, hold: FileHold) -> DynInputStream {
        Box::new(Self { inner, _hold: hold })
    }
}

#[async_trait]
impl Pollable for HeldInput {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

#[async_trait]
impl InputStream for HeldInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.read(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        self.inner.blocking_read(size).await
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        self.inner.skip(size)
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}
