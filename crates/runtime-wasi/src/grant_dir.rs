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
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

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
    /// Held from looking a name up until its removal or replacement is
    /// accounted (unlink, rename, link, remove-directory): a name changed
    /// in between, by a concurrent call of this instance (WASI 0.3) or by
    /// another instance, would be refunded twice or not at all.
    pub(crate) names: tokio::sync::Mutex<()>,
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
    /// Output streams on it: while one may have a write in flight, a
    /// shrink is not refunded.
    writers: u32,
    /// Unlinked while open: refunded when the process's last hold on it
    /// ([`OpenFile`]) drops.
    unlinked: bool,
}

/// The quota refused a change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refused;

/// Accounts by directory identity; an account lives while a grant uses it.
static ACCOUNTS: Mutex<Vec<Weak<GrantAccount>>> = Mutex::new(Vec::new());

/// Files the process holds open through any grant (read-only ones too), by
/// key: an unlinked file stays charged while one holds it. Locks are taken
/// in the order `OPEN_FILES`, `ACCOUNTS`, an account's usage.
static OPEN_FILES: LazyLock<Mutex<HashMap<u64, u32>>> = LazyLock::new(Mutex::default);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the data consistent, so a poisoned lock's
    // contents are still right.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One descriptor's or stream's hold on a file, through any grant.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub(crate) key: u64,
}

impl OpenFile {
    pub(crate) fn new(key: u64) -> Self {
        *lock(&OPEN_FILES).entry(key).or_default() += 1;
        Self { key }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        let mut open = lock(&OPEN_FILES);
        let Some(count) = open.get_mut(&self.key) else { return };
        *count -= 1;
        if *count > 0 {
            return;
        }
        open.remove(&self.key);
        // The last hold: an account that saw the file unlinked frees it now.
        let accounts = lock(&ACCOUNTS);
        for account in accounts.iter().filter_map(Weak::upgrade) {
            let mut usage = account.usage();
            if usage.files.get(&self.key).is_some_and(|file| file.unlinked) {
                usage.forget(self.key);
            }
        }
    }
}

impl Usage {
    /// The charge of the file `key`, found on disk with `size` and
    /// `allocated` bytes: a file not seen before is charged what it holds,
    /// whatever the quota (it is on disk already).
    fn found(&mut self, key: u64, size: u64, allocated: u64) -> &mut FileCharge {
        let bytes = &mut self.bytes;
        self.files.entry(key).or_insert_with(|| {
            let charged = footprint(size, allocated);
            *bytes = bytes.saturating_add(charged);
            FileCharge { size, charged, ..FileCharge::default() }
        })
    }

    /// Refunds and forgets the file `key`.
    fn forget(&mut self, key: u64) {
        if let Some(file) = self.files.remove(&key) {
            self.bytes = self.bytes.saturating_sub(file.charged);
        }
    }
}

impl GrantAccount {
    /// The account of `dir`: the process's existing one, or a new one that
    /// takes the directory's lock and measures it (visiting at most
    /// `max_entries + 1` entries: past that every creation is refused anyway).
    pub(crate) fn acquire(dir: &File, max_entries: u64) -> Result<Arc<Self>, AccountError> {
        let meta = dir.metadata().map_err(AccountError::Io)?;
        let identity = (meta.dev(), meta.ino());
        let mut accounts = lock(&ACCOUNTS);
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
        let account = Arc::new(Self {
            identity,
            _lock: lock,
            usage: Mutex::new(usage),
            refused: AtomicU64::new(0),
            names: tokio::sync::Mutex::new(()),
        });
        accounts.push(Arc::downgrade(&account));
        Ok(account)
    }

    fn usage(&self) -> MutexGuard<'_, Usage> {
        lock(&self.usage)
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

    /// Takes one entry and the `bytes` it holds (a block for a directory or
    /// a symlink, nothing for a file or a hard link), or refuses.
    pub(crate) fn charge_entry(&self, bytes: u64, max_entries: u64, max_bytes: u64) -> Result<(), Refused> {
        let mut usage = self.usage();
        if usage.entries >= max_entries || usage.bytes.saturating_add(bytes) > max_bytes {
            drop(usage);
            return Err(self.refuse());
        }
        usage.entries += 1;
        usage.bytes += bytes;
        Ok(())
    }

    /// Gives back an entry and the bytes it held.
    pub(crate) fn refund_entry(&self, bytes: u64) {
        let mut usage = self.usage();
        usage.entries = usage.entries.saturating_sub(1);
        usage.bytes = usage.bytes.saturating_sub(bytes);
    }

    /// A descriptor or stream opened the file `key` (of `size` and
    /// `allocated` bytes now) through this grant; a file not seen before is
    /// charged what it holds, whatever the quota (it is on disk already).
    pub(crate) fn opened(&self, key: u64, size: u64, allocated: u64, writer: bool) {
        self.usage().found(key, size, allocated).writers += u32::from(writer);
    }

    /// An output stream on the file `key` closed; `now` is the file's size
    /// and allocation as its descriptor tells. When no stream of the
    /// process writes to it any more, a shrink deferred while one could is
    /// settled.
    pub(crate) fn writer_closed(&self, key: u64, now: Option<(u64, u64)>) {
        let mut usage = self.usage();
        let Some(file) = usage.files.get_mut(&key) else { return };
        file.writers = file.writers.saturating_sub(1);
        if file.writers == 0
            && let Some((size, allocated)) = now
        {
            drop(usage);
            self.settle(key, size, allocated);
        }
    }

    /// Charges what making the file `key` reach `end` bytes adds, or refuses
    /// past `max_bytes`.
    pub(crate) fn grow(&self, key: u64, end: u64, max_bytes: u64) -> Result<(), Refused> {
        self.grow_from(key, |_| end, max_bytes)
    }

    /// Charges an append of `len` bytes to the file `key`, whose size on
    /// disk is `on_disk` now: it lands at the larger of that and the size
    /// already charged, so appends whose writes are still in flight add up.
    pub(crate) fn grow_append(&self, key: u64, on_disk: u64, len: u64, max_bytes: u64) -> Result<(), Refused> {
        self.grow_from(key, |charged| charged.max(on_disk).saturating_add(len), max_bytes)
    }

    /// A write to the file `key` reached `end`: charged if a truncation
    /// racing it settled the file below that in the meantime, whatever the
    /// quota (the bytes are on disk; the truncation refunded as much).
    pub(crate) fn reached(&self, key: u64, end: u64) {
        let _ = self.grow_from(key, |_| end, u64::MAX);
    }

    fn grow_from(&self, key: u64, end: impl FnOnce(u64) -> u64, max_bytes: u64) -> Result<(), Refused> {
        let mut usage = self.usage();
        let current = usage.files.get(&key).copied().unwrap_or_default();
        let size = current.size.max(end(current.size));
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
    /// truncation): charged as it is, except that a shrink waits while a
    /// stream of the process may still be writing to it.
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
    /// the last one frees its bytes, once nothing in the process holds it.
    pub(crate) fn unlinked(&self, key: u64, links: u64) {
        if links > 1 {
            return;
        }
        let open = lock(&OPEN_FILES);
        let mut usage = self.usage();
        if open.contains_key(&key) {
            if let Some(file) = usage.files.get_mut(&key) {
                file.unlinked = true;
            }
        } else {
            usage.forget(key);
        }
    }
}

/// Bytes, entries, and each file's charge under `root`, visiting at most
/// `max_entries` entries. Subdirectories are opened from their parent's
/// descriptor without following links, and the walk climbs back through
/// `..`, so it holds two descriptors whatever the tree's depth or width
/// (the names still to visit are kept, at most `max_entries` of them). Run
/// under the directory's lock, before any instance can change it.
fn measure(root: &OwnedFd, max_entries: u64) -> io::Result<Usage> {
    let mut usage = Usage::default();
    let open_dir = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut dir = rustix::fs::openat(root, ".", open_dir, Mode::empty())?;
    let mut pending = vec![list(&dir, &mut usage, max_entries)?];
    while let Some(names) = pending.last_mut() {
        if usage.entries >= max_entries {
            break;
        }
        match names.pop() {
            Some(name) => match rustix::fs::openat(&dir, name.as_c_str(), open_dir, Mode::empty()) {
                Ok(child) => {
                    dir = child;
                    pending.push(list(&dir, &mut usage, max_entries)?);
                }
                // Removed or replaced since it was listed.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {}
                Err(errno) => return Err(errno.into()),
            },
            None => {
                pending.pop();
                if !pending.is_empty() {
                    dir = rustix::fs::openat(&dir, "..", open_dir, Mode::empty())?;
                }
            }
        }
    }
    Ok(usage)
}

/// Counts the entries of `dir` into `usage` (a file by its footprint, a
/// directory or symlink by one block) and returns its subdirectories' names.
fn list(dir: &OwnedFd, usage: &mut Usage, max_entries: u64) -> io::Result<Vec<CString>> {
    let mut subdirectories = Vec::new();
    let mut listing = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        usage.entries += 1;
        if usage.entries >= max_entries {
            break;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(_) => continue,
            },
            kind => kind,
        };
        match kind {
            FileType::Directory => {
                usage.bytes = usage.bytes.saturating_add(BLOCK_BYTES);
                subdirectories.push(name.to_owned());
            }
            FileType::Symlink => usage.bytes = usage.bytes.saturating_add(BLOCK_BYTES),
            FileType::RegularFile => {
                let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else { continue };
                let key = file_key(stat.st_dev, stat.st_ino);
                let (size, allocated) = (stat.st_size as u64, (stat.st_blocks as u64).saturating_mul(512));
                usage.found(key, size, allocated);
            }
            _ => {}
        }
    }
    Ok(subdirectories)
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
        assert!(bytes >= 28 * BLOCK_BYTES, "25 directories and the file at the bottom are charged: {bytes}");
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
        let hold = OpenFile::new(key);
        account.opened(key, 0, 0, false);
        // A byte at 1 MiB - 1 is charged as 1 MiB: the hole counts.
        assert!(account.grow(key, 1 << 20, 1 << 20).is_ok());
        assert!(account.grow(key, (1 << 20) + 1, 1 << 20).is_err(), "one byte more is refused");
        assert_eq!(account.totals(), (1 << 20, 0, 1));
        account.unlinked(key, 1);
        assert_eq!(account.totals().0, 1 << 20, "open: still on disk, still charged");
        drop(hold);
        assert_eq!(account.totals().0, 0, "the last close frees it");
        Ok(())
    }

    #[test]
    fn a_comb_of_directories_is_measured_whole() -> TestResult {
        // Each level holds an empty directory beside the one that goes on:
        // a walk that kept every parent with pending children open would
        // hold one descriptor per level.
        let root = scratch("comb")?;
        let mut level = root.clone();
        for _ in 0..200 {
            std::fs::create_dir(level.join("a"))?;
            std::fs::create_dir(level.join("b"))?;
            level = level.join("b");
        }
        let (bytes, entries, _) = totals(&root).map_err(|e| format!("{e:?}"))?;
        assert_eq!(entries, 400);
        assert_eq!(bytes, 400 * BLOCK_BYTES, "each directory is charged a block");
        Ok(())
    }

    #[test]
    fn appends_in_flight_add_up() -> TestResult {
        let root = scratch("appends")?;
        let account = GrantAccount::acquire(&open_pinned(&root)?, 100).map_err(|e| format!("{e:?}"))?;
        let (key, quota) = (7, 1 << 20);
        // Two streams append 600 KiB each before either write lands: the
        // disk still says 0 bytes, the account does not.
        assert!(account.grow_append(key, 0, 600 << 10, quota).is_ok());
        assert!(account.grow_append(key, 0, 600 << 10, quota).is_err());
        assert!(account.grow_append(key, 0, 400 << 10, quota).is_ok(), "what fits still fits");
        Ok(())
    }
}
