//! The compile caches: in memory by content hash, and on disk.
//!
//! A disk entry is the payload that `Component::serialize` produced, then a
//! key record (`MAGIC`, the component's content hash, the engine's
//! compatibility hash and the allocation kind) and the BLAKE3 hash of both:
//! a trailer, so that wasmtime can map the file itself instead of copying
//! it. The file name holds the same key, but names can be swapped or linked;
//! the record cannot be changed without breaking the checksum, so an entry
//! is only ever used for the key it was written for. Entries are written to
//! a temporary file (`O_CREAT|O_EXCL`, an unpredictable name) and renamed
//! into place, so readers see a whole entry or none.
//!
//! Entries, stamps and input stamps are opened without following symlinks,
//! must be regular files of this process's user and are read with a size
//! bound: a FIFO, a device or a link planted in the directory is refused,
//! never waited on or read without end.
//!
//! Verifying the checksum means reading and hashing the whole entry (a
//! megabyte or more), which was most of a cached cold start. So an entry is
//! verified once per version: after a verification that passed, a small
//! stamp file beside it records the entry's identity (device, inode, size,
//! mtime and ctime) and key. A later load that finds the same identity skips
//! the hash (the key record is still read and checked); any write to the
//! entry through the file system changes its ctime, which no unprivileged
//! process can set back, and so forces a full verification again. The stamp
//! is only written once the entry's ctime is more than [`SETTLED`] old: file
//! times are coarse (a clock tick), and a write within the same tick as the
//! stamp could otherwise keep the ctime.
//!
//! Both caches are bounded by bytes: the in-memory one evicts the least
//! recently used component, the disk one its oldest entries.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use wasmtime::Engine;

use crate::{Allocation, LoadError};
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"wasm-runtime-c3\n";
/// The key record after `MAGIC`: content hash, engine hash, allocation kind
/// and seven reserved zero bytes.
const KEY_LEN: usize = 32 + 32 + 8;
const CHECKSUM_LEN: usize = 32;
const TRAILER_LEN: usize = MAGIC.len() + KEY_LEN + CHECKSUM_LEN;
/// Stamps and input stamps are a line or two; anything longer is not one.
const MAX_STAMP_BYTES: u64 = 4096;
/// Temporary files of this cache and of compile workers start with these.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
pub(crate) const WORKER_TEMP_PREFIX: &str = ".compile-";
/// Temporaries older than this are left over by a process that was killed
/// and are removed when a cache is opened; no compile runs this long under a
/// policy's default `max-compile-time` (60 s).
pub const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

/// The BLAKE3 hash of a component binary: collision-resistant, so a
/// component can never be served another's compiled code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The hash in lowercase hex.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheSource {
    /// Compiled now.
    Compiled,
    /// Found in the in-memory cache.
    Memory,
    /// Deserialized from the disk cache.
    Disk,
}

/// The default budget of the in-memory cache: compiled code held for reuse.
pub const DEFAULT_MEMORY_CACHE_BYTES: u64 = 512 << 20;
/// The default budget of the disk cache.
pub const DEFAULT_DISK_CACHE_BYTES: u64 = 2 << 30;
/// How old an entry's ctime must be before its stamp is written.
const SETTLED: Duration = Duration::from_secs(1);

/// Compiled components by content hash, at most `budget` bytes of compiled
/// image, the least recently used evicted first. A hit takes the read lock
/// only and marks its use with an atomic.
#[derive(Debug)]
pub(crate) struct MemoryCache {
    components: RwLock<HashMap<ContentHash, Cached>>,
    budget: u64,
    clock: AtomicU64,
}

#[derive(Debug)]
struct Cached {
    component: Component,
    bytes: u64,
    last_used: AtomicU64,
}

impl MemoryCache {
    pub(crate) fn new(budget: u64) -> Self {
        Self { components: RwLock::default(), budget, clock: AtomicU64::new(0) }
    }

    pub(crate) fn get(&self, hash: ContentHash) -> Option<Component> {
        let components = self.components.read().ok()?;
        let cached = components.get(&hash)?;
        cached.last_used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(cached.component.clone())
    }

    pub(crate) fn insert(&self, hash: ContentHash, component: &Component) {
        let range = component.image_range();
        let bytes = (range.end.addr() - range.start.addr()) as u64;
        if bytes > self.budget {
            return;
        }
        let Ok(mut components) = self.components.write() else { return };
        let mut held: u64 = components.values().map(|cached| cached.bytes).sum();
        while held + bytes > self.budget {
            let Some(oldest) = components
                .iter()
                .min_by_key(|(_, cached)| cached.last_used.load(Ordering::Relaxed))
                .map(|(hash, _)| *hash)
            else {
                break;
            };
            held -= components.remove(&oldest).map_or(0, |cached| cached.bytes);
        }
        let last_used = AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed));
        components.insert(hash, Cached { component: component.clone(), bytes, last_used });
    }

    pub(crate) fn remove(&self, hash: Option<ContentHash>) {
        if let Ok(mut components) = self.components.write() {
            match hash {
                Some(hash) => drop(components.remove(&hash)),
                None => components.clear(),
            }
        }
    }

    /// Bytes of compiled image held now.
    pub(crate) fn held_bytes(&self) -> u64 {
        self.components.read().map_or(0, |components| components.values().map(|cached| cached.bytes).sum())
    }
}

/// Serialized components in a directory.
///
/// The directory must belong to the embedder. [`DiskCache::check_dir`]
/// refuses one that another user owns or may write (group- or
/// world-writable without the sticky bit), and every file the cache reads
/// must be a regular file of this process's user. The key record and
/// checksum catch corrupt, truncated, swapped and linked entries; but
/// whoever can write the directory as this user can write a valid entry,
/// and wasmtime runs the machine code of a valid entry as is.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    /// The engine's compatibility hash, in the key record; its first 8
    /// bytes name the entries.
    engine_hash: [u8; 32],
    allocation: Allocation,
    budget: u64,
    /// The outcome of the directory check, made once.
    checked: OnceLock<Result<(), CacheDirProblem>>,
}

/// What is wrong with a compile-cache directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheDirProblem {
    /// The path exists and is not a directory.
    #[error("it is not a directory")]
    NotADirectory,
    /// This process cannot create files in it.
    #[error("this user cannot write to it")]
    ReadOnly,
    /// Another user owns it.
    #[error("it is owned by user {owner}, not by this process's user ({user})")]
    NotOwned {
        /// The directory's owner.
        owner: u32,
        /// This process's effective user.
        user: u32,
    },
    /// Other users may write to it.
    #[error("other users may write to it (mode {mode:o}, without the sticky bit)")]
    Insecure {
        /// The permission bits.
        mode: u32,
    },
    /// It cannot be created or examined.
    #[error("{0}")]
    Io(#[source] std::io::Error),
}

impl CacheDirProblem {
    /// How to make the directory usable.
    pub fn fix(&self, dir: &Path) -> String {
        let dir = dir.display();
        match self {
            Self::NotADirectory => format!("remove the file at {dir} or pass another --cache-dir"),
            Self::ReadOnly => format!("make {dir} writable by this user (chmod u+w) or pass another --cache-dir"),
            Self::NotOwned { .. } => format!("use a cache directory of this user's own (or chown {dir})"),
            Self::Insecure { .. } => format!("chmod go-w {dir}, or use a directory of this user's own"),
            Self::Io(_) => format!("create {dir} by hand, or pass another --cache-dir"),
        }
    }
}

impl DiskCache {
    /// A cache in `dir` for components compiled by `engine` to be run with
    /// its default allocation kind (pooling); see [`with_allocation`](Self::with_allocation).
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Self {
        // BLAKE3 rather than std's `DefaultHasher`, whose algorithm may change
        // with any Rust release and would orphan every entry.
        let mut hasher = StableHasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir: dir.into(),
            engine_hash: *hasher.0.finalize().as_bytes(),
            allocation: Allocation::default(),
            budget: DEFAULT_DISK_CACHE_BYTES,
            checked: OnceLock::new(),
        }
    }

    /// The same cache for engines of `allocation`: part of every entry's key.
    pub fn with_allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// The same cache holding at most `bytes` of entries: the oldest are
    /// removed when a new entry would pass it.
    pub fn with_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The budget in bytes.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Creates the directory if it is missing, then checks (once per cache)
    /// that it can be used safely: a directory, of this user (or root),
    /// writable by it, not writable by others unless sticky. Temporaries
    /// older than [`STALE_TEMPORARY`] are removed. A refused directory is
    /// never read or written: loads then compile every time.
    pub fn check_dir(&self) -> Result<(), LoadError> {
        match self.checked.get_or_init(|| check_cache_dir_problem(&self.dir)) {
            Ok(()) => Ok(()),
            Err(problem) => Err(cache_dir_error(&self.dir, problem)),
        }
    }

    fn usable(&self) -> bool {
        self.checked.get_or_init(|| check_cache_dir_problem(&self.dir)).is_ok()
    }

    /// The file that holds (or would hold) the entry for `hash`.
    pub fn entry_path(&self, hash: ContentHash) -> PathBuf {
        let allocation = match self.allocation {
            Allocation::Pooling => "p",
            _ => "o",
        };
        self.dir.join(format!("{}-{}{allocation}.cwasm", hash.to_hex(), hex::encode(&self.engine_hash[..8])))
    }

    /// The key record an entry for `hash` must carry.
    fn key_record(&self, hash: ContentHash) -> [u8; MAGIC.len() + KEY_LEN] {
        let mut record = [0; MAGIC.len() + KEY_LEN];
        record[..16].copy_from_slice(MAGIC);
        record[16..48].copy_from_slice(&hash.0);
        record[48..80].copy_from_slice(&self.engine_hash);
        record[80] = match self.allocation {
            Allocation::Pooling => 1,
            _ => 2,
        };
        record
    }

    /// The component for `hash`, if a whole, uncorrupted entry for exactly
    /// this key exists. A bad entry is logged and treated as absent; the
    /// caller compiles and replaces it.
    pub fn get(&self, engine: &Engine, hash: ContentHash) -> Option<Component> {
        if !self.usable() {
            return None;
        }
        let path = self.entry_path(hash);
        let refuse = |why: &str| {
            tracing::warn!(path = %path.display(), why, "ignoring a compile-cache entry");
            None
        };
        let (mut file, metadata) = match open_owned(&path, self.budget) {
            Ok(opened) => opened,
            Err(Refused::Missing) => return None,
            Err(refused) => return refuse(&refused.to_string()),
        };
        let size = metadata.len();
        let Some(payload_len) = size.checked_sub(TRAILER_LEN as u64) else { return refuse("truncated") };
        // The key is read on every load, stamped or not: a stamp vouches for
        // a file's bytes, never for which component they belong to.
        let mut trailer = [0; TRAILER_LEN];
        if file.seek(SeekFrom::Start(payload_len)).and_then(|_| file.read_exact(&mut trailer)).is_err() {
            return refuse("unreadable");
        }
        let record = self.key_record(hash);
        let identity = Identity::from_metadata(&metadata);
        let stamp = stamp_path(&path);
        let stamp_text = identity.map(|id| format!("{}{}\n", id.line(), hex::encode(record)));
        let stamped = stamp_text
            .as_ref()
            .is_some_and(|text| read_small(&stamp).is_some_and(|found| found.as_bytes() == text.as_bytes()));
        if !stamped {
            match checksum_matches(&mut file, payload_len) {
                Some(true) => {}
                Some(false) => return refuse("corrupt: its checksum does not match"),
                None => return refuse("unreadable"),
            }
        }
        // Checked after the checksum, which covers it: a valid entry of
        // another component, engine or allocation (swapped or linked into
        // this name) is refused.
        if trailer[..record.len()] != record {
            return refuse("it was written for another component or engine");
        }
        if !stamped && let Some(text) = identity.filter(Identity::settled).and(stamp_text) {
            let _ = write_atomically(&self.dir, &stamp, text.as_bytes());
        }
        match deserialize_open_file(engine, &file, size) {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unusable compile-cache entry");
                None
            }
        }
    }

    /// Stores `component` under `hash`. Failures are logged, not returned: a
    /// cache that cannot be written only costs a compile next time.
    pub fn put(&self, hash: ContentHash, component: &Component) {
        if let Err(error) = self.try_put(hash, component) {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot write the compile cache");
        }
    }

    fn try_put(&self, hash: ContentHash, component: &Component) -> Result<(), String> {
        self.check_dir().map_err(|e| e.to_string())?;
        let payload = component.serialize().map_err(|e| format!("{e:#}"))?;
        let record = self.key_record(hash);
        let mut entry = Vec::with_capacity(payload.len() + TRAILER_LEN);
        entry.extend_from_slice(&payload);
        entry.extend_from_slice(&record);
        let checksum = blake3::hash(&entry);
        entry.extend_from_slice(checksum.as_bytes());
        self.make_room(entry.len() as u64);
        let path = self.entry_path(hash);
        // A stamp of the entry this one replaces must not vouch for it.
        let _ = std::fs::remove_file(stamp_path(&path));
        write_atomically(&self.dir, &path, &entry).map_err(|e| e.to_string())
    }

    /// The content hash recorded for the input file whose identity is
    /// `input`, if it was recorded for exactly this version of the file
    /// (its device, inode, size and times): a cached load of a file can then
    /// skip reading and hashing it.
    pub(crate) fn known_input(&self, input: &Identity) -> Option<ContentHash> {
        if !self.usable() {
            return None;
        }
        let text = read_small(&self.input_stamp_path(input))?;
        let (line, hash) = text.split_once('\n')?;
        if line != input.line().trim_end() {
            return None;
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(hash.trim_end(), &mut bytes).ok()?;
        Some(ContentHash(bytes))
    }

    /// Records that the input file whose identity is `input` (taken before
    /// it was read) has content hash `hash`; only for a settled file, for
    /// the same reason as entry stamps.
    pub(crate) fn remember_input(&self, input: &Identity, hash: ContentHash) {
        if input.settled() && self.usable() {
            let text = format!("{}{}\n", input.line(), hash.to_hex());
            let _ = write_atomically(&self.dir, &self.input_stamp_path(input), text.as_bytes());
        }
    }

    fn input_stamp_path(&self, input: &Identity) -> PathBuf {
        self.dir.join(format!("input-{}-{}.stamp", input.device, input.inode))
    }

    /// Removes the oldest entries (and their stamps) until `incoming` more
    /// bytes fit in the budget.
    fn make_room(&self, incoming: u64) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter(|item| item.path().extension().is_some_and(|ext| ext == "cwasm"))
            .filter_map(|item| {
                // Not followed: a link's target is no entry of this cache.
                let metadata = item.metadata().ok()?;
                Some((metadata.modified().ok()?, metadata.len(), item.path()))
            })
            .collect();
        let mut held: u64 = entries.iter().map(|(_, bytes, _)| bytes).sum();
        entries.sort();
        for (_, bytes, path) in entries {
            if held.saturating_add(incoming) <= self.budget {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                let _ = std::fs::remove_file(stamp_path(&path));
                held = held.saturating_sub(bytes);
                tracing::debug!(path = %path.display(), "evicted a compile-cache entry");
            }
        }
    }
}

/// Checks (creating it if missing) that `dir` can serve as a compile cache,
/// as [`DiskCache::check_dir`] does: the CLI asks before it uses one.
pub fn check_cache_dir(dir: &Path) -> Result<(), LoadError> {
    check_cache_dir_problem(dir).map_err(|problem| cache_dir_error(dir, &problem))
}

fn cache_dir_error(dir: &Path, problem: &CacheDirProblem) -> LoadError {
    let fix = problem.fix(dir);
    let problem = match problem {
        // `io::Error` is not `Clone`; its kind and text are what the report shows.
        CacheDirProblem::Io(error) => CacheDirProblem::Io(std::io::Error::new(error.kind(), error.to_string())),
        CacheDirProblem::NotADirectory => CacheDirProblem::NotADirectory,
        CacheDirProblem::ReadOnly => CacheDirProblem::ReadOnly,
        CacheDirProblem::NotOwned { owner, user } => CacheDirProblem::NotOwned { owner: *owner, user: *user },
        CacheDirProblem::Insecure { mode } => CacheDirProblem::Insecure { mode: *mode },
    };
    LoadError::CacheDir { dir: dir.to_owned(), problem, fix }
}

fn check_cache_dir_problem(dir: &Path) -> Result<(), CacheDirProblem> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    if let Err(error) = builder.create(dir) {
        return Err(match std::fs::metadata(dir) {
            Ok(metadata) if !metadata.is_dir() => CacheDirProblem::NotADirectory,
            _ if error.kind() == std::io::ErrorKind::PermissionDenied => CacheDirProblem::ReadOnly,
            _ => CacheDirProblem::Io(error),
        });
    }
    // Followed: a cache directory that is a link (`~/.cache` elsewhere) is
    // the embedder's choice; what it points to must pass.
    let metadata = std::fs::metadata(dir).map_err(CacheDirProblem::Io)?;
    if !metadata.is_dir() {
        return Err(CacheDirProblem::NotADirectory);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let user = rustix::process::geteuid().as_raw();
        // As OpenSSH: root's directories are trusted too.
        if metadata.uid() != user && metadata.uid() != 0 {
            return Err(CacheDirProblem::NotOwned { owner: metadata.uid(), user });
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(CacheDirProblem::Insecure { mode });
        }
        if rustix::fs::access(dir, rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK).is_err() {
            return Err(CacheDirProblem::ReadOnly);
        }
    }
    remove_stale_temporaries(dir);
    Ok(())
}

/// Removes temporaries of this cache and of compile workers older than
/// [`STALE_TEMPORARY`]: what a killed process left behind.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    for item in listing.filter_map(Result::ok) {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(TEMP_PREFIX) && !name.starts_with(WORKER_TEMP_PREFIX) {
            continue;
        }
        // `DirEntry::metadata` does not follow links: a link is removed, never its target.
        let old = item.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if old.is_some_and(|age| age > STALE_TEMPORARY) && std::fs::remove_file(item.path()).is_ok() {
            tracing::debug!(path = %item.path().display(), "removed a stale compile-cache temporary");
        }
    }
}

/// Removes the temporaries the process `pid` (a compile worker that just
/// died) left in `dir`: it can no longer rename them into place.
pub(crate) fn remove_temporaries_of(dir: &Path, pid: u32) {
    let prefix = format!("{TEMP_PREFIX}{pid}-");
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    for item in listing.filter_map(Result::ok) {
        if item.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(item.path());
        }
    }
}

/// Why a cache file was not used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error("missing")]
    Missing,
    #[error("it is a symbolic link")]
    Link,
    #[error("it is not a regular file")]
    NotRegular,
    #[error("it belongs to user {0}, not to this process's user")]
    NotOwned(u32),
    #[error("it is {size} bytes, more than the {limit} bytes a cache file may hold")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(std::io::Error),
}

/// Opens a file of the cache for reading: never through a symlink, never
/// blocking (a FIFO opens at once, then is refused), a regular file of this
/// process's user of at most `limit` bytes.
pub(crate) fn open_owned(path: &Path, limit: u64) -> Result<(std::fs::File, std::fs::Metadata), Refused> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use rustix::fs::OFlags;
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            (OFlags::NOFOLLOW | OFlags::NONBLOCK).bits() as i32,
        );
    }
    let file = options.open(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Refused::Missing,
        _ if is_link_refusal(&error) => Refused::Link,
        _ => Refused::Io(error),
    })?;
    let metadata = file.metadata().map_err(Refused::Io)?;
    if !metadata.is_file() {
        return Err(Refused::NotRegular);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if metadata.uid() != rustix::process::geteuid().as_raw() {
            return Err(Refused::NotOwned(metadata.uid()));
        }
    }
    if metadata.len() > limit {
        return Err(Refused::TooLarge { size: metadata.len(), limit });
    }
    Ok((file, metadata))
}

/// Whether opening with `O_NOFOLLOW` failed because the name is a symlink (`ELOOP`).
fn is_link_refusal(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    return error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error());
    #[cfg(not(unix))]
    return error.kind() == std::io::ErrorKind::FilesystemLoop;
}

/// A stamp's text: a small regular file of this user, or nothing.
fn read_small(path: &Path) -> Option<String> {
    let (file, _) = open_owned(path, MAX_STAMP_BYTES).ok()?;
    let mut text = String::new();
    file.take(MAX_STAMP_BYTES).read_to_string(&mut text).ok()?;
    Some(text)
}

/// Writes `bytes` to `path` through a temporary file in `dir` renamed into
/// place, so readers see the old file or the whole new one. The temporary is
/// created with `O_CREAT|O_EXCL` (never through a planted link) under a
/// random name, mode 0600.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // The PID only lets a host remove what its killed worker left (see
    // `remove_temporaries_of`); the random part keeps the name unpredictable.
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut temp = tempfile::Builder::new().prefix(&prefix).tempfile_in(dir)?;
    temp.write_all(bytes)?;
    // The rename replaces whatever name is at `path` (a link included), never its target.
    temp.persist(path).map(drop).map_err(|error| error.error)
}

/// The stamp file of the entry at `entry`.
fn stamp_path(entry: &Path) -> PathBuf {
    entry.with_extension("verified")
}

/// Whether the checksum at the end of `file` matches the `payload_len`
/// bytes and the key record before it, read in chunks; `None` if it cannot
/// be read.
fn checksum_matches(file: &mut std::fs::File, payload_len: u64) -> Option<bool> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let covered = payload_len + (MAGIC.len() + KEY_LEN) as u64;
    let mut hasher = blake3::Hasher::new();
    let copied = std::io::copy(&mut (&mut *file).take(covered), &mut hasher).ok()?;
    if copied != covered {
        return None;
    }
    let mut checksum = [0; CHECKSUM_LEN];
    file.read_exact(&mut checksum).ok()?;
    Some(hasher.finalize().as_bytes() == &checksum)
}

/// What identifies one version of a file: any write through the file system
/// changes its ctime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    device: u64,
    inode: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    /// The identity `metadata` describes; `None` where the platform has no ctime.
    pub(crate) fn from_metadata(metadata: &std::fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            Some(Self {
                device: metadata.dev(),
                inode: metadata.ino(),
                size: metadata.size(),
                mtime: (metadata.mtime(), metadata.mtime_nsec()),
                ctime: (metadata.ctime(), metadata.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            None
        }
    }

    /// The file's size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file last changed more than [`SETTLED`] ago.
    pub(crate) fn settled(&self) -> bool {
        let since_epoch =
            Duration::from_secs(self.ctime.0.max(0) as u64) + Duration::from_nanos(self.ctime.1.max(0) as u64);
        (std::time::UNIX_EPOCH + since_epoch).elapsed().is_ok_and(|age| age > SETTLED)
    }

    fn line(&self) -> String {
        let Self { device, inode, size, mtime, ctime } = self;
        format!("{device} {inode} {size} {}.{} {}.{}\n", mtime.0, mtime.1, ctime.0, ctime.1)
    }
}

/// A `Hasher` over BLAKE3: the same input gives the same key on every Rust
/// release.
struct StableHasher(blake3::Hasher);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let hash = self.0.finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first)
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Maps the open, checked `file` (`size` bytes) as a component.
#[allow(unsafe_code, reason = "Component::deserialize_file is unsafe; the SAFETY comment says why this use is sound")]
fn deserialize_open_file(engine: &Engine, file: &std::fs::File, size: u64) -> wasmtime::Result<Component> {
    // wasmtime maps a file by path only. `/proc/self/fd/N` names the open
    // file itself, the very inode just checked, so no rename or link
    // planted after the check can put another file under the mapping.
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd as _;
        let by_descriptor = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if by_descriptor.exists() {
            // SAFETY: `Component::deserialize_file` requires a file produced
            // by `Component::serialize` of a compatible engine that nobody
            // modifies while it is mapped. The path names the descriptor
            // `file`, a regular file of this user that just passed the
            // BLAKE3 check over its payload and key record (or whose
            // unchanged identity a stamp records as having passed it), so
            // its payload is byte for byte what `try_put` wrote from
            // `Component::serialize` for this component and engine
            // (wasmtime ignores the trailer after it, and checks its own
            // header against this engine again). This cache never modifies
            // an entry in place. The remaining trust is in this user: a
            // process of this user that writes into the mapped file breaks
            // the contract (see `DiskCache`).
            return unsafe { Component::deserialize_file(engine, &by_descriptor) };
        }
    }
    let mut bytes = Vec::new();
    (&mut &*file).seek(SeekFrom::Start(0))?;
    (&mut &*file).take(size).read_to_end(&mut bytes)?;
    // SAFETY: as above, for a copy of the checked bytes, which nobody else
    // can modify at all.
    unsafe { Component::deserialize(engine, &bytes) }
}
