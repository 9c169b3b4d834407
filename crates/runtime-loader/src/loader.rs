//! [`ComponentLoader`]: bytes, files or WAT text -> a compiled component.

use std::io::Read;
use std::path::{Path, PathBuf};

use runtime_limits::ResourceLimits;
use wasmtime::component::Component;

use crate::cache::{CacheSource, ContentHash, DEFAULT_MEMORY_CACHE_BYTES, DiskCache, Identity, MemoryCache};
use crate::worker::CompileWorker;
use crate::{LoadError, RuntimeEngine, sniff};

/// The largest input the loader accepts by default.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Whether a component is in the compile caches.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheState {
    /// Compiled earlier by this loader.
    InMemory,
    /// An entry exists on disk (it is verified when loaded).
    OnDisk(PathBuf),
    /// Not compiled yet.
    NotCached,
    /// Not in memory, and the loader has no disk cache.
    NoDiskCache,
}

/// A compiled component and where it came from.
#[derive(Clone)]
pub struct CompiledComponent {
    /// The component, ready to link and instantiate.
    pub component: Component,
    /// BLAKE3 hash of its binary.
    pub hash: ContentHash,
    /// Compiled now or found in a cache.
    pub source: CacheSource,
}

impl std::fmt::Debug for CompiledComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledComponent")
            .field("hash", &self.hash.to_hex())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// Loads components: sniffs the input (component, core module, WAT, garbage,
/// truncated), caps its size, validates and compiles it, and caches the
/// result in memory and, if configured, on disk.
#[derive(Debug)]
pub struct ComponentLoader {
    engine: RuntimeEngine,
    max_bytes: u64,
    memory: MemoryCache,
    disk: Option<DiskCache>,
    /// Compiles cache misses in a child process, when set.
    worker: Option<CompileWorker>,
}

impl ComponentLoader {
    /// A loader for `engine` with an in-memory cache only.
    pub fn new(engine: RuntimeEngine) -> Self {
        Self {
            engine,
            max_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            memory: MemoryCache::new(DEFAULT_MEMORY_CACHE_BYTES),
            disk: None,
            worker: None,
        }
    }

    /// Compiles every component the caches do not hold in a child process
    /// (see [`CompileWorker`]) under the policy's `max-compile-time` and
    /// `max-compile-memory`, instead of in this process. The child writes
    /// into the disk cache; a loader without one uses a private directory
    /// under the system's temporary directory.
    pub fn with_compile_worker(mut self, worker: CompileWorker) -> Self {
        self.worker = Some(worker);
        self
    }

    /// Holds at most `bytes` of compiled code in memory (default
    /// [`DEFAULT_MEMORY_CACHE_BYTES`]); the least recently loaded component
    /// is dropped first. Components already loaded keep working.
    pub fn with_memory_cache_budget(mut self, bytes: u64) -> Self {
        self.memory = MemoryCache::new(bytes);
        self
    }

    /// Bytes of compiled code the in-memory cache holds now.
    pub fn memory_cache_bytes(&self) -> u64 {
        self.memory.held_bytes()
    }

    /// Also caches compiled components in `dir` (see [`DiskCache`]).
    /// The directory is checked when first used ([`DiskCache::check_dir`]);
    /// a refused one is never read or written.
    pub fn with_disk_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.disk = Some(DiskCache::new(dir, self.engine.engine()).with_allocation(self.engine.allocation()));
        self
    }

    /// Also caches compiled components in `dir`, at most `bytes` of entries
    /// (default [`DEFAULT_DISK_CACHE_BYTES`](crate::DEFAULT_DISK_CACHE_BYTES)); the oldest are removed first.
    pub fn with_disk_cache_budget(mut self, dir: impl Into<PathBuf>, bytes: u64) -> Self {
        self.disk = Some(
            DiskCache::new(dir, self.engine.engine()).with_allocation(self.engine.allocation()).with_budget(bytes),
        );
        self
    }

    /// Refuses inputs larger than `max_bytes`.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest input accepted, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Reads a component file, at most the size cap: a larger file (or a
    /// device that never ends) is refused `too-large` after the cap plus one
    /// byte, and a FIFO with no writer fails at once instead of waiting.
    pub fn read_file(&self, path: impl AsRef<Path>) -> Result<Vec<u8>, LoadError> {
        let path = path.as_ref();
        let file = open_input(path)?;
        self.read_opened(path, file)
    }

    fn read_opened(&self, path: &Path, file: std::fs::File) -> Result<Vec<u8>, LoadError> {
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(LoadError::TooLarge { size: bytes.len() as u64, limit: self.max_bytes });
        }
        Ok(bytes)
    }

    /// The disk cache, if any.
    pub fn disk_cache(&self) -> Option<&DiskCache> {
        self.disk.as_ref()
    }

    /// The engine components are compiled for.
    pub fn engine(&self) -> &RuntimeEngine {
        &self.engine
    }

    /// Loads a `.wasm` or `.wat` file, reading at most the size cap.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<CompiledComponent, LoadError> {
        self.load_file_within(path, None)
    }

    /// [`load_file`](Self::load_file) for instances under `limits`: a
    /// component whose memories (or tables) declare more at their minimums
    /// than its memory (or table) budget is refused before it is compiled,
    /// since none of its instances could start.
    pub fn load_file_within(
        &self,
        path: impl AsRef<Path>,
        limits: Option<&ResourceLimits>,
    ) -> Result<CompiledComponent, LoadError> {
        let path = path.as_ref();
        let file = open_input(path)?;
        // With a disk cache, a file whose content hash was recorded for this
        // very version (see the disk cache's stamps) is not read again.
        let identity = self.disk.as_ref().and_then(|_| file.metadata().ok()).and_then(|m| Identity::from_metadata(&m));
        if let (Some(disk), Some(identity)) = (&self.disk, &identity)
            && identity.size() <= self.max_bytes
            && let Some(hash) = disk.known_input(identity)
            && let Some(compiled) = self.cached(hash)
        {
            return Ok(compiled);
        }
        let bytes = self.read_opened(path, file)?;
        let compiled = self.load_bytes_within(&bytes, limits)?;
        if let (Some(disk), Some(identity)) = (&self.disk, &identity)
            && bytes.len() as u64 == identity.size()
        {
            disk.remember_input(identity, compiled.hash);
        }
        Ok(compiled)
    }

    /// The component for `hash` from the memory cache, or else the disk cache.
    fn cached(&self, hash: ContentHash) -> Option<CompiledComponent> {
        if let Some(component) = self.memory.get(hash) {
            return Some(CompiledComponent { component, hash, source: CacheSource::Memory });
        }
        let component = self.disk.as_ref()?.get(self.engine.engine(), hash)?;
        self.memory.insert(hash, &component);
        Some(CompiledComponent { component, hash, source: CacheSource::Disk })
    }

    /// Drops the compiled component whose binary has `hash` from the
    /// in-memory cache, or every one with `None`: a host that loads many
    /// different components bounds its memory this way. Components already
    /// loaded keep working; the disk cache is untouched.
    pub fn evict_from_memory(&self, hash: Option<ContentHash>) {
        self.memory.remove(hash);
    }

    /// Whether the component whose binary has `hash` is already compiled, in
    /// memory or on disk.
    pub fn cache_state(&self, hash: ContentHash) -> CacheState {
        if self.memory.get(hash).is_some() {
            return CacheState::InMemory;
        }
        match self.disk.as_ref().map(|disk| disk.entry_path(hash)) {
            Some(entry) if entry.is_file() => CacheState::OnDisk(entry),
            Some(_) => CacheState::NotCached,
            None => CacheState::NoDiskCache,
        }
    }

    /// Loads a component binary or its WAT text.
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<CompiledComponent, LoadError> {
        self.load_bytes_within(bytes, None)
    }

    /// [`load_bytes`](Self::load_bytes) for instances under `limits` (see
    /// [`load_file_within`](Self::load_file_within)).
    pub fn load_bytes_within(
        &self,
        bytes: &[u8],
        limits: Option<&ResourceLimits>,
    ) -> Result<CompiledComponent, LoadError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(LoadError::TooLarge { size, limit: self.max_bytes });
        }
        let policy = self.engine.policy();
        let binary = sniff::decode(bytes, policy.compile_budget())?;
        let hash = ContentHash::of(&binary);
        if let Some(compiled) = self.cached(hash) {
            return Ok(compiled);
        }
        let engine = self.engine.engine();
        // Only now, on a miss: every cached binary was walked before it was
        // compiled (and a cached one's memories and tables are checked
        // against the budgets from its compiled form, when it is linked).
        sniff::scan(&binary, policy, limits)?;
        let compiled = match &self.worker {
            Some(worker) => self.compile_in_worker(worker, &binary, hash),
            None => Component::from_binary(engine, &binary)
                .map_err(|e| LoadError::CompileFailed { message: format!("{e:#}") })
                .inspect(|component| {
                    if let Some(disk) = &self.disk {
                        disk.put(hash, component);
                    }
                }),
        };
        let component = match compiled {
            Err(LoadError::CompileFailed { .. })
                if !policy.component_model_async() && sniff::needs_component_model_async(&binary) =>
            {
                return Err(LoadError::NeedsComponentModelAsync);
            }
            other => other?,
        };
        self.memory.insert(hash, &component);
        Ok(CompiledComponent { component, hash, source: CacheSource::Compiled })
    }

    /// Has `worker` compile `binary` into the disk cache, then maps the entry.
    fn compile_in_worker(
        &self,
        worker: &CompileWorker,
        binary: &[u8],
        hash: ContentHash,
    ) -> Result<Component, LoadError> {
        let engine = self.engine.engine();
        // Without a disk cache (or with a refused one), a new private
        // directory for this compile, removed when it ends.
        let private;
        let disk = match &self.disk {
            Some(disk) if disk.check_dir().is_ok() => disk,
            _ => {
                private = private_dir()?;
                &DiskCache::new(private.path(), engine).with_allocation(self.engine.allocation())
            }
        };
        worker.compile(binary, hash, self.engine.policy(), self.engine.allocation(), disk)?;
        disk.get(engine, hash).ok_or_else(|| LoadError::CompileWorker {
            what: String::from("the compile worker finished but left no usable cache entry"),
        })
    }
}

/// Opens a component file for reading. The open does not block (a FIFO
/// without a writer would hold it forever; it then reads as empty), the
/// reads do (a pipe from `<(...)` is read as it fills).
fn open_input(path: &Path) -> Result<std::fs::File, LoadError> {
    let io_error = |source| LoadError::Io { path: path.to_owned(), source };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, rustix::fs::OFlags::NONBLOCK.bits() as i32);
    let file = options.open(path).map_err(io_error)?;
    #[cfg(unix)]
    {
        let flags = rustix::fs::fcntl_getfl(&file).map_err(|e| io_error(e.into()))?;
        rustix::fs::fcntl_setfl(&file, flags - rustix::fs::OFlags::NONBLOCK).map_err(|e| io_error(e.into()))?;
    }
    Ok(file)
}

/// A new directory, readable and writable by this user only (mode 0700,
/// a random name, created exclusively), for one compile without a disk
/// cache: the host maps what it finds there, so it must be one this process
/// created (never one another user of a shared temporary directory could
/// have planted) and one no concurrent load of the same component removes.
fn private_dir() -> Result<tempfile::TempDir, LoadError> {
    tempfile::Builder::new().prefix("wasm-runtime-compile-").tempdir().map_err(|error| LoadError::CompileWorker {
        what: format!(
            "cannot create a private directory for the compile worker in {}: {error}",
            std::env::temp_dir().display()
        ),
    })
}
