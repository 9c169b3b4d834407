//! The compile caches: in memory by content hash, and on disk.
//!
//! A disk entry is the payload that `Component::serialize` produced, then
//! `MAGIC` and the BLAKE3 hash of the payload: a trailer, so that wasmtime can
//! map the file itself (`Component::deserialize_file`) instead of copying it. Its file name holds the content hash of the
//! component and a hash of the engine's compatibility settings, so an engine
//! never looks at another's entries. Entries are written to a temporary file
//! and renamed into place, so readers see a whole entry or none.
//!
//! Verifying the checksum means reading and hashing the whole entry (a
//! megabyte or more), which was most of a cached cold start. So an entry is
//! verified once per version: after a verification that passed, a small
//! stamp file beside it records the entry's identity (device, inode, size,
//! mtime and ctime). A later load that finds the same identity skips the
//! hash; any write to the entry through the file system changes its ctime,
//! which no unprivileged process can set back, and so forces a full
//! verification again. The stamp is only written once the entry's ctime is
//! more than [`SETTLED`] old: file times are coarse (a clock tick), and a
//! write within the same tick as the stamp could otherwise keep the ctime.
//!
//! Both caches are bounded by bytes: the in-memory one evicts the least
//! recently used component, the disk one its oldest entries.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 16] = b"wasm-runtime-c2\n";
const CHECKSUM_LEN: usize = 32;

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
/// The directory must belong to the embedder: the checksum catches corrupt
/// and truncated entries, but whoever can write the directory can write a
/// valid entry, and wasmtime runs the machine code of a valid entry as is.
#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
    engine_key: String,
    budget: u64,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DiskCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Self {
        // BLAKE3 rather than std's `DefaultHasher`, whose algorithm may change
        // with any Rust release and would orphan every entry.
        let mut hasher = StableHasher(blake3::Hasher::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = hasher.0.finalize();
        Self { dir: dir.into(), engine_key: hex::encode(&key.as_bytes()[..8]), budget: DEFAULT_DISK_CACHE_BYTES }
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

    /// The file that holds (or would hold) the entry for `hash`.
    pub fn entry_path(&self, hash: ContentHash) -> PathBuf {
        self.dir.join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_key))
    }

    /// The component for `hash`, if a whole, uncorrupted entry exists. A bad
    /// entry is logged and treated as absent; the caller compiles and
    /// overwrites it.
    pub fn get(&self, engine: &Engine, hash: ContentHash) -> Option<Component> {
        let path = self.entry_path(hash);
        let identity = Identity::of(&path)?;
        let stamp = stamp_path(&path);
        let stamped = identity.is_some_and(|id| std::fs::read_to_string(&stamp).is_ok_and(|text| text == id.line()));
        if !stamped {
            if !verify(&path)? {
                tracing::warn!(path = %path.display(), "ignoring a corrupt compile-cache entry");
                return None;
            }
            if let Some(identity) = identity.filter(Identity::settled) {
                let _ = write_atomically(&self.dir, &stamp, identity.line().as_bytes());
            }
        }
        match deserialize_file(engine, &path) {
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
        let payload = component.serialize().map_err(|e| format!("{e:#}"))?;
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut entry = Vec::with_capacity(payload.len() + MAGIC.len() + CHECKSUM_LEN);
        entry.extend_from_slice(&payload);
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(blake3::hash(&payload).as_bytes());
        self.make_room(entry.len() as u64);
        let path = self.entry_path(hash);
        // A stamp of the entry this one replaces must not vouch for it.
        let _ = std::fs::remove_file(stamp_path(&path));
        write_atomically(&self.dir, &path, &entry).map_err(|e| e.to_string())
    }

    /// The content hash recorded for the input file whose identity is
    /// `input`, if it was recorded for exactly this version of the file: a
    /// cached load of a file can then skip reading and hashing it.
    pub(crate) fn known_input(&self, input: &Identity) -> Option<ContentHash> {
        let text = std::fs::read_to_string(self.input_stamp_path(input)).ok()?;
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
        if input.settled() {
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

/// Writes `bytes` to `path` through a temporary file in `dir` renamed into
/// place, so readers see the old file or the whole new one.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!(".tmp-{}-{}", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// The stamp file of the entry at `entry`.
fn stamp_path(entry: &Path) -> PathBuf {
    entry.with_extension("verified")
}

/// Whether the entry at `path` has its trailer and a matching checksum;
/// `None` if it cannot be read.
fn verify(path: &Path) -> Option<bool> {
    let entry = std::fs::read(path).ok()?;
    Some(verified_payload(&entry).is_some())
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
    /// The identity of the file at `path`: `None` if there is no file,
    /// `Some(None)` where the platform has no ctime (every load verifies).
    fn of(path: &Path) -> Option<Option<Self>> {
        std::fs::metadata(path).ok().map(|metadata| Self::from_metadata(&metadata))
    }

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

/// The payload of an entry whose trailer (magic and checksum) is right.
fn verified_payload(entry: &[u8]) -> Option<&[u8]> {
    let (payload, trailer) = entry.split_at_checked(entry.len().checked_sub(MAGIC.len() + CHECKSUM_LEN)?)?;
    let checksum = trailer.strip_prefix(MAGIC)?;
    (blake3::hash(payload).as_bytes().as_slice() == checksum).then_some(payload)
}

#[allow(unsafe_code, reason = "Component::deserialize_file is unsafe; the SAFETY comment says why this use is sound")]
fn deserialize_file(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize_file` requires a file produced by
    // `Component::serialize` of a compatible engine that nobody modifies
    // while it is mapped. The entry at `path` just passed the BLAKE3 check,
    // so its payload is byte for byte what `try_put` wrote from
    // `Component::serialize` (wasmtime ignores the trailer after it). The
    // file name carries the engine's compatibility hash, and wasmtime checks
    // its own header against this engine again and returns an error on a
    // mismatch. This cache never modifies an entry in place: it writes a
    // temporary file and renames it over the old one, so a mapped file stays
    // as it was and a rename between the check and the mapping installs an
    // equally valid entry. The remaining trust is in the cache directory's
    // owner (see `DiskCache`).
    unsafe { Component::deserialize_file(engine, path) }
}
