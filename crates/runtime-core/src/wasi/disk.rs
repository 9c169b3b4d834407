//! Disk quotas of read-write directory grants: what a grant's directory may
//! hold (bytes in files; files, directories and links), measured once from
//! the disk when the instance first changes it and then counted as the
//! guest writes, creates and removes. A refusal is the error a full file
//! system gives (`insufficient-space`), so guests handle it as they would
//! a full disk.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};

use crate::grants::Preopen;
use crate::report::DiskUsage;

/// `ENOSPC`, which wasmtime-wasi reports to the guest as `insufficient-space`.
const ENOSPC: i32 = 28;

/// The quota of one read-write grant and what its directory holds.
#[derive(Debug)]
pub(crate) struct GrantUsage {
    guest: String,
    host: PathBuf,
    max_bytes: u64,
    max_entries: u64,
    bytes: AtomicU64,
    entries: AtomicU64,
    refused: AtomicU64,
    measured: OnceLock<()>,
}

impl GrantUsage {
    pub(crate) fn new(preopen: &Preopen) -> Arc<Self> {
        Arc::new(Self {
            guest: preopen.guest.clone(),
            host: preopen.host.clone(),
            max_bytes: preopen.max_bytes,
            max_entries: preopen.max_entries,
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            measured: OnceLock::new(),
        })
    }

    /// Takes `bytes` of the byte quota, or refuses (and counts the refusal).
    pub(crate) fn charge_bytes(&self, bytes: u64) -> Result<(), Refused> {
        self.charge(&self.bytes, bytes, self.max_bytes)
    }

    /// Takes one entry of the entry quota, or refuses.
    pub(crate) fn charge_entry(&self) -> Result<(), Refused> {
        self.charge(&self.entries, 1, self.max_entries)
    }

    pub(crate) fn refund_bytes(&self, bytes: u64) {
        release(&self.bytes, bytes);
    }

    pub(crate) fn refund_entry(&self) {
        release(&self.entries, 1);
    }

    fn charge(&self, used: &AtomicU64, amount: u64, max: u64) -> Result<(), Refused> {
        self.measure();
        let taken = used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
            now.checked_add(amount).filter(|after| *after <= max)
        });
        taken.map(drop).map_err(|_| {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Refused
        })
    }

    /// Counts what the directory holds, once: at most `max_entries + 1`
    /// entries are visited (past that, every creation is refused anyway),
    /// symlinks are counted and not followed.
    fn measure(&self) {
        self.measured.get_or_init(|| {
            let (bytes, entries) = measure_dir(&self.host, self.max_entries.saturating_add(1));
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.entries.fetch_add(entries, Ordering::Relaxed);
        });
    }

    /// What the report shows of this grant.
    pub(crate) fn usage(&self) -> DiskUsage {
        DiskUsage {
            guest_path: self.guest.clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            max_bytes: self.max_bytes,
            entries: self.entries.load(Ordering::Relaxed),
            max_entries: self.max_entries,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// Whether the instance changed (or tried to change) the directory.
    pub(crate) fn touched(&self) -> bool {
        self.measured.get().is_some()
    }
}

fn release(used: &AtomicU64, amount: u64) {
    let _ = used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| Some(now.saturating_sub(amount)));
}

/// The quota refused a change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused;

impl Refused {
    /// The I/O error a full disk gives.
    pub(crate) fn io_error() -> io::Error {
        io::Error::from_raw_os_error(ENOSPC)
    }
}

/// Bytes in regular files and the number of entries under `root`, visiting
/// at most `max_entries` entries.
fn measure_dir(root: &std::path::Path, max_entries: u64) -> (u64, u64) {
    let (mut bytes, mut entries) = (0u64, 0u64);
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else { continue };
        for entry in listing.flatten() {
            entries += 1;
            if entries >= max_entries {
                return (bytes, entries);
            }
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                bytes = bytes.saturating_add(meta.len());
            }
        }
    }
    (bytes, entries)
}

/// A file's output stream whose bytes count against its grant's quota.
pub(crate) struct QuotaStream {
    inner: DynOutputStream,
    usage: Arc<GrantUsage>,
}

impl QuotaStream {
    pub(crate) fn wrap(inner: DynOutputStream, usage: Arc<GrantUsage>) -> DynOutputStream {
        Box::new(Self { inner, usage })
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
        if self.usage.charge_bytes(len).is_err() {
            return Err(StreamError::LastOperationFailed(wasmtime::Error::new(Refused::io_error())));
        }
        let written = self.inner.write(bytes);
        if written.is_err() {
            self.usage.refund_bytes(len);
        }
        written
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
