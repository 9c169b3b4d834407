//! The compile caches: in memory by content hash, and on disk.
//!
//! A disk entry is the payload that `Component::serialize` produced, then
//! `MAGIC` and the BLAKE3 hash of the payload: a trailer, so that wasmtime can
//! map the file itself (`Component::deserialize_file`) instead of copying it. Its file name holds the content hash of the
//! component and a hash of the engine's compatibility settings, so an engine
//! never looks at another's entries. Entries are written to a temporary file
//! and renamed into place, so readers see a whole entry or none.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Compiled components by content hash, for the life of the loader.
#[derive(Debug, Default)]
pub(crate) struct MemoryCache {
    components: Mutex<HashMap<ContentHash, Component>>,
}

impl MemoryCache {
    pub(crate) fn get(&self, hash: ContentHash) -> Option<Component> {
        self.components.lock().ok()?.get(&hash).cloned()
    }

    pub(crate) fn insert(&self, hash: ContentHash, component: &Component) {
        if let Ok(mut components) = self.components.lock() {
            components.insert(hash, component.clone());
        }
    }

    pub(crate) fn remove(&self, hash: Option<ContentHash>) {
        if let Ok(mut components) = self.components.lock() {
            match hash {
                Some(hash) => drop(components.remove(&hash)),
                None => components.clear(),
            }
        }
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
    /// Reused to read entries for their checksum: a fresh buffer of a few
    /// megabytes costs as much in page faults as the rest of a cached load.
    scratch: Mutex<Vec<u8>>,
}

/// The largest scratch buffer kept between loads.
const MAX_KEPT_SCRATCH_BYTES: usize = 16 << 20;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl DiskCache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: impl Into<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self { dir: dir.into(), engine_key: format!("{:016x}", hasher.finish()), scratch: Mutex::default() }
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
        if !self.verify(&path)? {
            tracing::warn!(path = %path.display(), "ignoring a corrupt compile-cache entry");
            return None;
        }
        match deserialize_file(engine, &path) {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unusable compile-cache entry");
                None
            }
        }
    }

    /// Whether the entry at `path` has its trailer and a matching checksum;
    /// `None` if it cannot be read.
    fn verify(&self, path: &Path) -> Option<bool> {
        let mut scratch = self.scratch.lock().ok()?;
        scratch.clear();
        let read = std::fs::File::open(path).and_then(|mut file| file.read_to_end(&mut scratch));
        let verified = read.ok().map(|_| verified_payload(&scratch).is_some());
        if scratch.capacity() > MAX_KEPT_SCRATCH_BYTES {
            *scratch = Vec::new();
        }
        verified
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
        let temp =
            self.dir.join(format!(".tmp-{}-{}", std::process::id(), TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut entry = Vec::with_capacity(payload.len() + MAGIC.len() + CHECKSUM_LEN);
        entry.extend_from_slice(&payload);
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(blake3::hash(&payload).as_bytes());
        let written = std::fs::write(&temp, &entry).and_then(|()| std::fs::rename(&temp, self.entry_path(hash)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(|e| e.to_string())
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
