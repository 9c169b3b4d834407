//! A granted directory pinned by descriptor, and the disk account of a
//! read-write grant.
//!
//! A directory is opened once, when the component is loaded, one path
//! component at a time without following a symlink; every instance gets a
//! duplicate of that descriptor, so nothing a guest does to names (a grant
//! swapped for a link) changes what a later instance opens.
//!
//! A read-write grant's usage lives in one [`GrantAccount`] per directory
//! per process, shared by every instance of every component that grants it,
//! and the account holds an exclusive advisory lock (`flock`) on the
//! directory: a second process that loads a read-write grant of the same
//! directory fails with `grant-busy`, so N processes never hold more than
//! one quota. The account measures the directory once, walking it through
//! directory descriptors (`openat`), so depth cannot hide anything; after
//! that every change a guest makes is charged before it happens.
//!
//! Bytes are what the disk holds: a file costs the larger of its size
//! rounded up to [`BLOCK_BYTES`] and its allocated blocks, so sparse files
//! are charged by their size; a file stays charged while it is linked or
//! any instance of the process holds it open.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::hash::{Hash as _, Hasher as _};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};

/// The unit a file's size is charged in: a file of one byte takes a block.
pub(crate) const BLOCK_BYTES: u64 = 4096;

/// Opens the directory at `path` (absolute and canonical, so with no
/// symlink in it) without following a symlink in any of its components: one
/// planted since the path was resolved fails the open.
pub(crate) fn open_pinned(path: &Path) -> io::Result<File> {
    let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::fs::open("/", directory, Mode::empty())?;
    for part in path.components() {
        match part {
            Component::RootDir => {}
            Component::Normal(name) => {
                dir = rustix::fs::openat(&dir, name, directory | OFlags::NOFOLLOW, Mode::empty())?;
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "not an absolute canonical path")),
        }
    }
    Ok(File::from(dir))
}

/// How wasmtime-wasi names a file in `metadata-hash` (its lower half): a
/// hash of its device and inode. The account keys files the same way, so a
/// path's `metadata-hash-at` finds the file it names.
pub(crate) fn file_key(dev: u64, ino: u64) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (dev, ino).hash(&mut hasher);
    hasher.finish()
}

/// What a file takes on disk, as charged: its size rounded up to a block,
/// or its allocated blocks if more.
pub(crate) fn footprint(size: u64, allocated: u64) -> u64 {
    size.div_ceil(BLOCK_BYTES).saturating_mul(BLOCK_BYTES).max(allocated)
}

/// The key and charge of an open file, read from its descriptor.
pub(crate) fn file_identity(file: &File) -> io::Result<(u64, u64, u64)> {
    let meta = file.metadata()?;
    Ok((file_key(meta.dev(), meta.ino()), meta.len(), meta.blocks().saturating_mul(512)))
}

/// Why a read-write grant's account could not be opened.
#[derive(Debug)]
pub(crate) enum AccountError {
    /// Another process holds the directory read-write.
    Busy {
        /// Who, as far as the OS tells (`process 1234 (wasm-runtime)`).
        holder: String,
    },
    /// The directory could not be locked or measured.
    Io(io::Error),
}

/// The disk usage of one read-write granted directory, shared by every
/// instance in the process.
#[derive(Debug)]
pub(crate) struct GrantAccount {
    identity: (u64, u64),
    /// Its own descriptor of the directory, holding the `flock`.
    _lock: OwnedFd,
    usage: Mutex<Usage>,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Usage {
    bytes: u64,
    entries: u64,
    files: HashMap<u64, FileCharge>,
}

/// What one file is charged and who holds it.
#[derive(Debug, Default, Clone, Copy)]
struct FileCharge {
    /// The largest size charged.
    size: u64,
    /// Bytes charged for it.
    charged: u64,
    /// Descriptors and streams of the process that hold it open.
    open: u32,
    /// Output streams on it: while one may have a write in flight, a
    /// shrink is not refunded.
    writers: u32,
    /// Unlinked while open: refunded at the last close.
    unlinked: bool,
}

/// The quota refused a change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused;

/// Accounts by directory identity; an account lives while a grant uses it.
static ACCOUNTS: Mutex<Vec<Weak<GrantAccount>>> = Mutex::new(Vec::new());

impl GrantAccount {
    /// The account of `dir`: the process's existing one, or a new one that
    /// takes the directory's lock and measures it (visiting at most
    /// `max_entries + 1` entries: past that every creation is refused anyway).
    pub(crate) fn acquire(dir: &File, max_entries: u64) -> Result<Arc<Self>, AccountError> {
        let meta = dir.metadata().map_err(AccountError::Io)?;
        let identity = (meta.dev(), meta.ino());
        let mut accounts = ACCOUNTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        accounts.retain(|account| account.strong_count() > 0);
        if let Some(account) = accounts.iter().filter_map(Weak::upgrade).find(|a| a.identity == identity) {
            return Ok(account);
        }
        // Its own open file description: a `flock` belongs to one, and the
        // instances' duplicates of the grant must not share it.
        let lock = rustix::fs::openat(dir, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|errno| AccountError::Io(errno.into()))?;
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Err(AccountError::Busy { holder: lock_holder(identity.1) }),
            Err(errno) => return Err(AccountError::Io(errno.into())),
        }
        let usage = measure(&lock, max_entries.saturating_add(1)).map_err(AccountError::Io)?;
        let account = Arc::new(Self { identity, _lock: lock, usage: Mutex::new(usage), refused: AtomicU64::new(0) });
        accounts.push(Arc::downgrade(&account));
        Ok(account)
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        // Every update leaves the usage consistent, so a poisoned lock's
        // contents are still right.
        self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refuse(&self) -> Refused {
        self.refused.fetch_add(1, Ordering::Relaxed);
        Refused
    }

    /// Bytes and entries charged now, and refusals so far.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let usage = self.usage();
        (usage.bytes, usage.entries, self.refused.load(Ordering::Relaxed))
    }

    /// Takes one entry, or refuses at `max_entries`.
    pub(crate) fn charge_entry(&self, max_entries: u64) -> Result<(), Refused> {
        let mut usage = self.usage();
        if usage.entries >= max_entries {
            drop(usage);
            return Err(self.refuse());
        }
        usage.entries += 1;
        Ok(())
    }

    pub(crate) fn refund_entry(&self) {
        let mut usage = self.usage();
        usage.entries = usage.entries.saturating_sub(1);
    }

    /// A descriptor or stream of the process opened the file `key` (of
    /// `size` and `allocated` bytes now); a file not seen before is charged
    /// what it holds, whatever the quota (it is on disk already).
    pub(crate) fn opened(&self, key: u64, size: u64, allocated: u64, writer: bool) {
        let mut usage = self.usage();
        let usage = &mut *usage;
        let file = usage.files.entry(key).or_insert_with(|| {
            let charged = footprint(size, allocated);
            usage.bytes = usage.bytes.saturating_add(charged);
            FileCharge { size, charged, ..FileCharge::default() }
        });
        file.open += 1;
        file.writers += u32::from(writer);
    }

    /// The matching close of [`opened`](Self::opened).
    pub(crate) fn closed(&self, key: u64, writer: bool) {
        let mut usage = self.usage();
        let Some(file) = usage.files.get_mut(&key) else { return };
        file.open = file.open.saturating_sub(1);
        file.writers = file.writers.saturating_sub(u32::from(writer));
        if file.open == 0 && file.unlinked {
            let charged = file.charged;
            usage.files.remove(&key);
            usage.bytes = usage.bytes.saturating_sub(charged);
        }
    }

    /// Charges what making the file `key` reach `end` bytes adds, or refuses
    /// past `max_bytes`.
    pub(crate) fn grow(&self, key: u64, end: u64, max_bytes: u64) -> Result<(), Refused> {
        let mut usage = self.usage();
        let current = usage.files.get(&key).copied().unwrap_or_default();
        let size = current.size.max(end);
        let charged = footprint(size, 0).max(current.charged);
        let more = charged - current.charged;
        if more > 0 && usage.bytes.saturating_add(more) > max_bytes {
            drop(usage);
            return Err(self.refuse());
        }
        usage.bytes += more;
        let file = usage.files.entry(key).or_default();
        file.size = size;
        file.charged = charged;
        Ok(())
    }

    /// The file `key` now holds `size` and `allocated` bytes (after a
    /// truncation): charged as it is, except that a shrink is not refunded
    /// while a stream of the process may still be writing to it.
    pub(crate) fn settle(&self, key: u64, size: u64, allocated: u64) {
        let mut usage = self.usage();
        let usage = &mut *usage;
        let file = usage.files.entry(key).or_default();
        let now = footprint(size, allocated);
        if now >= file.charged {
            usage.bytes = usage.bytes.saturating_add(now - file.charged);
        } else if file.writers == 0 {
            usage.bytes = usage.bytes.saturating_sub(file.charged - now);
        } else {
            return;
        }
        file.charged = now;
        file.size = size;
    }

    /// A link to the file `key` was removed, which had `links` links before:
    /// the last one frees its bytes, once no descriptor holds it.
    pub(crate) fn unlinked(&self, key: u64, links: u64) {
        if links > 1 {
            return;
        }
        let mut usage = self.usage();
        let Some(file) = usage.files.get_mut(&key) else { return };
        if file.open > 0 {
            file.unlinked = true;
            return;
        }
        let charged = file.charged;
        usage.files.remove(&key);
        usage.bytes = usage.bytes.saturating_sub(charged);
    }
}

/// Bytes in files, entries, and each file's charge under `root`, visiting
/// at most `max_entries` entries. Subdirectories are opened from their
/// parent's descriptor without following links; only the directories with
/// children still to visit are held open, so descriptors grow with depth,
/// not width.
fn measure(root: &OwnedFd, max_entries: u64) -> io::Result<Usage> {
    let mut usage = Usage::default();
    let open_dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let root = Arc::new(rustix::fs::openat(root, ".", open_dir, Mode::empty())?);
    let mut pending: Vec<(Arc<OwnedFd>, Option<CString>)> = vec![(root, None)];
    while let Some((parent, name)) = pending.pop() {
        let dir = match name {
            None => parent,
            Some(name) => match rustix::fs::openat(&*parent, name.as_c_str(), open_dir, Mode::empty()) {
                Ok(dir) => Arc::new(dir),
                // Removed or replaced since it was listed.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => continue,
                Err(errno) => return Err(errno.into()),
            },
        };
        let mut listing = rustix::fs::Dir::read_from(&*dir)?;
        while let Some(entry) = listing.read() {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_bytes() == b"." || name.to_bytes() == b".." {
                continue;
            }
            usage.entries += 1;
            if usage.entries >= max_entries {
                return Ok(usage);
            }
            let kind = match entry.file_type() {
                FileType::Unknown => match rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                    Err(_) => continue,
                },
                kind => kind,
            };
            match kind {
                FileType::Directory => pending.push((dir.clone(), Some(name.to_owned()))),
                FileType::RegularFile => {
                    let Ok(stat) = rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW) else { continue };
                    let key = file_key(stat.st_dev, stat.st_ino);
                    let (size, allocated) = (stat.st_size as u64, (stat.st_blocks as u64).saturating_mul(512));
                    usage.files.entry(key).or_insert_with(|| {
                        let charged = footprint(size, allocated);
                        usage.bytes = usage.bytes.saturating_add(charged);
                        FileCharge { size, charged, ..FileCharge::default() }
                    });
                }
                _ => {}
            }
        }
    }
    Ok(usage)
}

/// The process holding the `flock` of the directory with inode `ino`, as
/// `/proc/locks` and `/proc/PID/comm` tell; `another process` elsewhere.
fn lock_holder(ino: u64) -> String {
    let suffix = format!(":{ino}");
    let pid = std::fs::read_to_string("/proc/locks").ok().and_then(|locks| {
        locks.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flock = fields.get(1) == Some(&"FLOCK");
            let same = fields.get(5).is_some_and(|file| file.ends_with(&suffix));
            (flock && same).then(|| fields.get(4).map(|pid| (*pid).to_owned())).flatten()
        })
    });
    match pid {
        Some(pid) => match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(name) => format!("process {pid} ({})", name.trim()),
            Err(_) => format!("process {pid}"),
        },
        None => "another process".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// A fresh empty directory of this test's own.
    fn scratch(name: &str) -> io::Result<std::path::PathBuf> {
        let dir = std::env::temp_dir().join(format!("grant-dir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        dir.canonicalize()
    }

    fn totals(dir: &Path) -> Result<(u64, u64, u64), AccountError> {
        let pinned = open_pinned(dir).map_err(AccountError::Io)?;
        Ok(GrantAccount::acquire(&pinned, 1_000)?.totals())
    }

    #[test]
    fn footprints_round_up_to_blocks() {
        assert_eq!(footprint(0, 0), 0);
        assert_eq!(footprint(1, 0), BLOCK_BYTES);
        assert_eq!(footprint(BLOCK_BYTES + 1, 0), 2 * BLOCK_BYTES);
        assert_eq!(footprint(1, 3 * BLOCK_BYTES), 3 * BLOCK_BYTES);
    }

    #[test]
    fn entries_deeper_than_path_max_are_measured() -> TestResult {
        let root = scratch("deep")?;
        // 25 levels of 200-byte names: 5,000 bytes of path, past Linux's 4,096.
        let name = "d".repeat(200);
        let mut dir = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        for _ in 0..25 {
            rustix::fs::mkdirat(&dir, name.as_str(), Mode::from_raw_mode(0o755))?;
            dir = rustix::fs::openat(&dir, name.as_str(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        }
        let file = rustix::fs::openat(&dir, "bottom", OFlags::WRONLY | OFlags::CREATE, Mode::from_raw_mode(0o644))?;
        rustix::io::write(&file, &[7; 10_000])?;
        drop(file);
        let (bytes, entries, _) = totals(&root).map_err(|e| format!("{e:?}"))?;
        assert_eq!(entries, 26, "25 directories and the file at the bottom");
        assert!(bytes >= 3 * BLOCK_BYTES, "the file at the bottom is charged: {bytes}");
        Ok(())
    }

    #[test]
    fn a_second_lock_on_the_directory_is_refused_and_one_account_is_shared() -> TestResult {
        let root = scratch("busy")?;
        std::fs::write(root.join("a"), [1; 5000])?;
        let pinned = open_pinned(&root)?;
        let first = GrantAccount::acquire(&pinned, 100).map_err(|e| format!("{e:?}"))?;
        // The process's second grant of the directory shares the account.
        let again = GrantAccount::acquire(&open_pinned(&root)?, 100).map_err(|e| format!("{e:?}"))?;
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(first.totals(), (2 * BLOCK_BYTES, 1, 0));
        // Another holder of the lock (as another process would be) is named.
        let other = rustix::fs::open(&root, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())?;
        drop((first, again));
        rustix::fs::flock(&other, FlockOperation::NonBlockingLockExclusive)?;
        match GrantAccount::acquire(&pinned, 100) {
            Err(AccountError::Busy { holder }) => {
                assert!(holder.contains(&std::process::id().to_string()), "{holder}");
            }
            other => return Err(format!("expected busy, got {other:?}").into()),
        }
        drop(other);
        assert!(GrantAccount::acquire(&pinned, 100).is_ok(), "free again once the holder is gone");
        Ok(())
    }

    #[test]
    fn a_symlink_in_the_path_is_not_followed() -> TestResult {
        let root = scratch("link")?;
        std::fs::create_dir(root.join("real"))?;
        std::os::unix::fs::symlink("real", root.join("alias"))?;
        assert!(open_pinned(&root.join("real")).is_ok());
        assert!(open_pinned(&root.join("alias")).is_err());
        Ok(())
    }

    #[test]
    fn an_unlinked_file_stays_charged_while_open_and_sparse_ends_are_charged() -> TestResult {
        let root = scratch("unlinked")?;
        let account = GrantAccount::acquire(&open_pinned(&root)?, 100).map_err(|e| format!("{e:?}"))?;
        let key = 42;
        account.opened(key, 0, 0, false);
        // A byte at 1 MiB - 1 is charged as 1 MiB: the hole counts.
        assert!(account.grow(key, 1 << 20, 1 << 20).is_ok());
        assert!(account.grow(key, (1 << 20) + 1, 1 << 20).is_err(), "one byte more is refused");
        assert_eq!(account.totals(), (1 << 20, 0, 1));
        account.unlinked(key, 1);
        assert_eq!(account.totals().0, 1 << 20, "open: still on disk, still charged");
        account.closed(key, false);
        assert_eq!(account.totals().0, 0, "the last close frees it");
        Ok(())
    }
}
