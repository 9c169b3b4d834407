//! `wasi:filesystem` as wasmtime-wasi implements it, wrapped: the preopens
//! are duplicates of the descriptors pinned at load, every change to a
//! read-write grant's directory goes through its account ([`Quota`]),
//! listings stream ([`Listing`]), and one instance holds at most its cap of
//! open descriptors. Everything else is wasmtime-wasi's own code, delegated.

pub(crate) mod p3;

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Weak};

use wasmtime::component::{HasData, Resource, ResourceTableError};
use wasmtime_wasi::filesystem::{Descriptor, Dir, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::{FsPerms, OpenMode, ResourceTable};

use crate::disk::{FileHold, HeldInput, Quota, QuotaStream};
use crate::grant_dir::{BLOCK_BYTES, Refused, file_identity};
use crate::grants::Preopen;
use crate::listing::Listing;
use runtime_core::DiskUsage;

use types::{ErrorCode, HostDescriptor, HostDirectoryEntryStream};

/// The largest size a file can have (`off_t`'s): a larger `set-size` is
/// the OS's to refuse (`invalid`), not the quota's.
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// One granted directory as an instance sees it.
struct Grant {
    guest: String,
    /// The descriptor pinned at load; each preopen is a duplicate.
    dir: Arc<File>,
    read_write: bool,
    /// A read-write grant's account; `None` for a read-only one.
    quota: Option<Quota>,
    /// This instance's duplicate of `dir`, made on first use and shared by
    /// every preopen handle it hands out.
    preopened: Option<Dir>,
}

/// Per instance: which grant each open descriptor belongs to, the holds of
/// its open files on their grant's account, and the descriptor cap.
pub(crate) struct DiskState {
    grants: Vec<Grant>,
    /// Descriptor handle to grant index.
    owners: HashMap<u32, usize>,
    /// Descriptor handle to its hold on a read-write grant's file.
    holds: HashMap<u32, FileHold>,
    /// Files that streams opened from them may keep open after their
    /// descriptor is dropped, each with the hold its stream keeps (a WASI
    /// 0.3 stream's, released once the file is closed).
    streamed: Vec<(Weak<File>, Option<FileHold>)>,
    /// WASI 0.3 listings alive, each a descriptor of its own.
    listings: Vec<Weak<()>>,
    /// WASI 0.3 opens in flight, each a descriptor from its check on (one
    /// whose call is dropped midway stays counted: too many, never too few).
    pub(crate) opening: usize,
    /// WASI 0.3 sockets whose streams were taken (`listen`, `send`,
    /// `receive`): each stream holds the OS socket, which outlives the
    /// handle.
    streamed_sockets: std::collections::HashSet<u32>,
    /// Such sockets the guest dropped, kept (and counted) until the
    /// instance ends, since their streams may still hold them open.
    kept_sockets: Vec<wasmtime_wasi::sockets::TcpSocket>,
    max_descriptors: usize,
}

impl DiskState {
    pub(crate) fn new(preopens: &[Preopen], max_descriptors: u32) -> Self {
        let grants = preopens
            .iter()
            .map(|preopen| Grant {
                guest: preopen.guest.clone(),
                dir: preopen.dir.clone(),
                read_write: preopen.mode == runtime_manifest::DirMode::ReadWrite,
                quota: Quota::of(preopen),
                preopened: None,
            })
            .collect();
        Self {
            grants,
            owners: HashMap::new(),
            holds: HashMap::new(),
            streamed: Vec::new(),
            listings: Vec::new(),
            opening: 0,
            streamed_sockets: std::collections::HashSet::new(),
            kept_sockets: Vec::new(),
            max_descriptors: max_descriptors as usize,
        }
    }

    /// Whether the instance, holding what `table` holds and `elsewhere`
    /// descriptors outside it (outgoing HTTP connections), is at its cap.
    pub(crate) fn at_cap(&mut self, table: &mut ResourceTable, elsewhere: usize) -> bool {
        open_descriptors(table, self) + self.opening + elsewhere >= self.max_descriptors
    }

    /// The read-write grants' accounts, for the report.
    pub(crate) fn usage(&self) -> Vec<DiskUsage> {
        self.grants.iter().filter_map(|grant| grant.quota.as_ref()).map(Quota::usage).collect()
    }

    fn owner(&self, fd: &Resource<Descriptor>) -> Option<usize> {
        self.owners.get(&fd.rep()).copied()
    }

    /// The quota of `fd`'s grant; a read-only grant's is `None` (wasmtime-wasi
    /// refuses its writes itself).
    fn quota(&self, fd: &Resource<Descriptor>) -> Result<Option<Quota>, FsError> {
        self.grant_quota(fd).ok_or_else(|| ErrorCode::BadDescriptor.into())
    }

    /// [`quota`](Self::quota), `None` for a handle no grant owns.
    fn grant_quota(&self, fd: &Resource<Descriptor>) -> Option<Option<Quota>> {
        let index = self.owner(fd)?;
        Some(self.grants.get(index).and_then(|grant| grant.quota.clone()))
    }

    /// Records the descriptor `rep` that an open in grant `owner` made: its
    /// grant, and its hold on the `file` it opened, settled if the open
    /// `truncated` it.
    fn record_open(
        &mut self,
        rep: u32,
        owner: usize,
        file: Option<Arc<File>>,
        quota: Option<Quota>,
        truncated: bool,
    ) -> std::io::Result<()> {
        self.owners.insert(rep, owner);
        let Some(file) = file else { return Ok(()) };
        let hold = match &quota {
            Some(quota) => quota.hold(&file, false)?,
            None => FileHold::of(&file)?,
        };
        if let Some(quota) = quota.filter(|_| truncated) {
            let (key, size, allocated) = file_identity(&file)?;
            quota.account.settle(key, size, allocated);
        }
        self.holds.insert(rep, hold);
        Ok(())
    }

    /// The descriptor `rep` is dropped.
    fn forget(&mut self, rep: u32) {
        self.owners.remove(&rep);
        self.holds.remove(&rep);
    }

    /// The WASI 0.3 socket `rep` handed out a stream.
    pub(crate) fn socket_streamed(&mut self, rep: u32) {
        self.streamed_sockets.insert(rep);
    }

    /// Whether the WASI 0.3 socket `rep`, being dropped, must be kept
    /// ([`keep_socket`](Self::keep_socket)) rather than closed.
    pub(crate) fn socket_outlives_handle(&mut self, rep: u32) -> bool {
        self.streamed_sockets.remove(&rep)
    }

    pub(crate) fn keep_socket(&mut self, socket: wasmtime_wasi::sockets::TcpSocket) {
        self.kept_sockets.push(socket);
    }

    /// Forgets the streams whose files are closed, and their holds.
    fn prune_streams(&mut self) {
        self.streamed.retain(|(file, _)| file.strong_count() > 0);
        self.listings.retain(|listing| listing.strong_count() > 0);
    }
}

/// Open OS descriptors behind the handles of `table`: files and
/// directories (preopens handed out twice share one descriptor, so they are
/// told apart by the file they share), files that only a stream still
/// holds (`streamed`), listings and sockets.
pub(crate) fn open_descriptors(table: &mut ResourceTable, disk: &mut DiskState) -> usize {
    let mut files = std::collections::HashSet::new();
    let mut others = 0;
    for entry in table.iter_mut() {
        if let Some(descriptor) = entry.downcast_ref::<Descriptor>() {
            let file = match descriptor {
                Descriptor::File(file) => Arc::as_ptr(&file.file),
                Descriptor::Dir(dir) => Arc::as_ptr(&dir.dir),
            };
            files.insert(file);
        } else if let Some(listing) = entry.downcast_ref::<Listing>() {
            // Its own descriptor, and its directory's, which it keeps open.
            files.insert(Arc::as_ptr(listing.dir()));
            others += 1;
        } else if is_socket(entry) {
            others += 1;
        }
    }
    disk.prune_streams();
    files.extend(disk.streamed.iter().map(|(file, _)| file.as_ptr()));
    others += disk.listings.len() + disk.kept_sockets.len();
    // A preopen stays open for the instance even once the guest drops it.
    files.extend(disk.grants.iter().filter_map(|grant| grant.preopened.as_ref()).map(|dir| Arc::as_ptr(&dir.dir)));
    files.len() + others
}

/// Whether a table entry is a socket of either WASI version.
fn is_socket(entry: &dyn std::any::Any) -> bool {
    use wasmtime_wasi::{p2, sockets};
    entry.is::<p2::TcpSocket>()
        || entry.is::<p2::UdpSocket>()
        || entry.is::<sockets::TcpSocket>()
        || entry.is::<sockets::UdpSocket>()
}

/// The `HasData` of the wrapped filesystem interfaces.
pub(crate) struct QuotaFilesystem;

impl HasData for QuotaFilesystem {
    type Data<'a> = QuotaFs<'a>;
}

/// wasmtime-wasi's filesystem view with the instance's [`DiskState`].
pub(crate) struct QuotaFs<'a> {
    pub(crate) inner: WasiFilesystemCtxView<'a>,
    pub(crate) disk: &'a mut DiskState,
    /// Descriptors the instance holds outside the filesystem (outgoing
    /// HTTP requests in flight).
    pub(crate) elsewhere: usize,
}

/// A borrow of the handle `handle`, to ask wasmtime-wasi about it before
/// the operation that consumes `handle`.
pub(crate) fn borrow<R: 'static>(handle: &Resource<R>) -> Resource<R> {
    Resource::new_borrow(handle.rep())
}

fn insufficient_space(_: Refused) -> FsError {
    ErrorCode::InsufficientSpace.into()
}

/// The guest-visible code of `error`, or the trap it is.
fn error_code(error: FsError) -> Result<ErrorCode, FsError> {
    error.downcast().map_err(FsError::trap)
}

/// A listing's handle as the bindings type it.
fn as_listing(stream: &Resource<types::DirectoryEntryStream>) -> Resource<Listing> {
    Resource::new_borrow(stream.rep())
}

impl QuotaFs<'_> {
    fn at_descriptor_cap(&mut self) -> bool {
        self.disk.at_cap(self.inner.table, self.elsewhere)
    }

    /// Runs `create` (which makes one entry holding `bytes` in `fd`'s
    /// directory, or fails if the name exists) within the quota.
    async fn create_entry<R>(
        &mut self,
        fd: &Resource<Descriptor>,
        bytes: u64,
        create: impl AsyncFnOnce(&mut WasiFilesystemCtxView<'_>) -> FsResult<R>,
    ) -> FsResult<R> {
        let quota = self.disk.quota(fd)?;
        if let Some(quota) = &quota {
            quota.charge_entry(bytes).map_err(insufficient_space)?;
        }
        let created = create(&mut self.inner).await;
        if let (Some(quota), Err(_)) = (&quota, &created) {
            quota.account.refund_entry(bytes);
        }
        created
    }

    /// Opens with `create` in a read-write grant ([`open_or_create`]).
    async fn open_creating(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
        quota: &Quota,
    ) -> FsResult<Resource<Descriptor>> {
        let mut steps = OpenOrCreate::new(quota, oflags.contains(types::OpenFlags::EXCLUSIVE));
        let opened = loop {
            let oflags = match steps.next() {
                Ok(true) => oflags | types::OpenFlags::EXCLUSIVE,
                Ok(false) => oflags & !types::OpenFlags::CREATE,
                Err(refused) => break Err(refused),
            };
            let attempt =
                match HostDescriptor::open_at(&mut self.inner, borrow(&fd), path_flags, path.clone(), oflags, flags)
                    .await
                {
                    Ok(opened) => Attempt::Opened(opened),
                    Err(error) => match error_code(error) {
                        Ok(ErrorCode::NoEntry) => Attempt::Missing(ErrorCode::NoEntry.into()),
                        Ok(ErrorCode::Exist) => Attempt::Exists(ErrorCode::Exist.into()),
                        Ok(code) => Attempt::Failed(code.into()),
                        Err(trap) => Attempt::Failed(trap),
                    },
                };
            if let Some(done) = steps.found(attempt) {
                break done;
            }
        };
        match opened {
            Ok(opened) => Ok(opened),
            Err(Refusal::NoSpace) => Err(ErrorCode::InsufficientSpace.into()),
            Err(Refusal::Raced) => Err(ErrorCode::Exist.into()),
            Err(Refusal::Failed(error)) => Err(error),
        }
    }

    /// Refuses a link or rename between two grants: each grant is its own
    /// file system as far as quotas go, so the guest sees `cross-device`.
    fn same_grant(&self, a: &Resource<Descriptor>, b: &Resource<Descriptor>) -> FsResult<()> {
        match (self.disk.owner(a), self.disk.owner(b)) {
            (Some(a), Some(b)) if a == b => Ok(()),
            _ => Err(ErrorCode::CrossDevice.into()),
        }
    }

    /// The open file behind `fd`, if it is one.
    fn file(&mut self, fd: &Resource<Descriptor>) -> Result<Option<Arc<File>>, ResourceTableError> {
        Ok(match self.inner.table.get(fd)? {
            Descriptor::File(file) => Some(file.file.clone()),
            Descriptor::Dir(_) => None,
        })
    }

    /// The account key of the file behind `fd`.
    fn file_key(&mut self, fd: &Resource<Descriptor>) -> FsResult<Option<u64>> {
        if let Some(hold) = self.disk.holds.get(&fd.rep()) {
            return Ok(Some(hold.key()));
        }
        let Some(file) = self.file(fd)? else { return Ok(None) };
        Ok(Some(file_identity(&file)?.0))
    }

    /// What a name in `fd`'s directory is, before it is removed or
    /// replaced; `None` if nothing.
    async fn identify(&mut self, fd: &Resource<Descriptor>, path: &str) -> Option<Entry> {
        let none = types::PathFlags::empty();
        let stat = HostDescriptor::stat_at(&mut self.inner, borrow(fd), none, path.to_owned()).await.ok()?;
        let hash = HostDescriptor::metadata_hash_at(&mut self.inner, borrow(fd), none, path.to_owned()).await.ok()?;
        Some(Entry { key: hash.lower, kind: EntryKind::of_p2(stat.type_), links: stat.link_count })
    }

    /// Records what a new stream of `file` keeps open, and the `hold` it
    /// keeps while the file is open. Streams that are gone are forgotten as
    /// the list grows, so a guest that opens and drops streams in a loop
    /// makes it no longer than the live ones.
    fn streaming(&mut self, file: &Arc<File>, hold: Option<FileHold>) {
        // A file already recorded is not recorded again: a guest that opens
        // and drops streams of one open file in a loop adds nothing.
        let known = self.disk.streamed.iter_mut().find(|(known, _)| std::ptr::eq(known.as_ptr(), Arc::as_ptr(file)));
        if let Some((_, known_hold)) = known {
            if known_hold.is_none() {
                *known_hold = hold;
            }
            return;
        }
        if self.disk.streamed.len() >= crate::MAX_WASI_OBJECTS {
            self.disk.prune_streams();
        }
        self.disk.streamed.push((Arc::downgrade(file), hold));
    }

    /// Puts the stream wasmtime-wasi made for a read-write grant's file
    /// behind its quota.
    fn counted(
        &mut self,
        stream: Resource<DynOutputStream>,
        quota: Option<Quota>,
        file: Arc<File>,
        position: Option<u64>,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.streaming(&file, None);
        let Some(quota) = quota else { return Ok(stream) };
        let inner = self.inner.table.delete(stream)?;
        let wrapped = QuotaStream::wrap(inner, quota, file, position)?;
        Ok(self.inner.table.push(wrapped)?)
    }
}

/// What one attempt of [`open_or_create`] found: the opened descriptor,
/// or its error, told apart where the loop needs to.
enum Attempt<R, E> {
    Opened(R),
    Missing(E),
    Exists(E),
    Failed(E),
}

/// Why [`open_or_create`] gave up: the quota, or the open's own error.
enum Refusal<E> {
    NoSpace,
    /// The name kept appearing and vanishing under other instances.
    Raced,
    Failed(E),
}

/// Opening a name with `create` in a read-write grant, charged by the
/// result: an open that finds the file makes nothing; otherwise an
/// exclusive create makes exactly one entry. A dangling symlink in the way
/// is not followed to create its target (the guest sees `exist`). Its
/// steps are driven by each WASI version's own opens (an async closure over
/// a host view is not provably `Send`).
struct OpenOrCreate<'a> {
    quota: &'a Quota,
    exclusive: bool,
    /// Whether the next attempt creates (exclusively) rather than opens.
    creating: bool,
    creates: u8,
}

impl<'a> OpenOrCreate<'a> {
    fn new(quota: &'a Quota, exclusive: bool) -> Self {
        Self { quota, exclusive, creating: exclusive, creates: 0 }
    }

    /// The next attempt: `true` creates exclusively (its entry charged
    /// first), `false` opens without creating.
    fn next<E>(&mut self) -> Result<bool, Refusal<E>> {
        if self.creating {
            // A name created or removed by another instance in between is
            // looked at again, a few times.
            if self.creates == 3 {
                return Err(Refusal::Raced);
            }
            self.creates += 1;
            self.quota.charge_entry(0).map_err(|_| Refusal::NoSpace)?;
        }
        Ok(self.creating)
    }

    /// What the attempt found: the end, or `None` to go on.
    fn found<R, E>(&mut self, attempt: Attempt<R, E>) -> Option<Result<R, Refusal<E>>> {
        let (again, error) = match attempt {
            Attempt::Opened(opened) => return Some(Ok(opened)),
            // Not there to open: create it.
            Attempt::Missing(error) => (!self.creating, error),
            // Made by someone else meanwhile: open it.
            Attempt::Exists(error) => (self.creating && !self.exclusive, error),
            Attempt::Failed(error) => (false, error),
        };
        if self.creating {
            self.quota.account.refund_entry(0);
        }
        if again {
            self.creating = !self.creating;
            return None;
        }
        Some(Err(Refusal::Failed(error)))
    }
}

/// What a name was before it was removed or replaced.
#[derive(Clone, Copy)]
struct Entry {
    /// Its account key.
    key: u64,
    kind: EntryKind,
    links: u64,
}

#[derive(Clone, Copy)]
enum EntryKind {
    File,
    /// Charged a block.
    Directory,
    /// Charged a block, which its last link gives back.
    Symlink,
    Other,
}

impl EntryKind {
    fn of_p2(kind: types::DescriptorType) -> Self {
        match kind {
            types::DescriptorType::RegularFile => Self::File,
            types::DescriptorType::Directory => Self::Directory,
            types::DescriptorType::SymbolicLink => Self::Symlink,
            _ => Self::Other,
        }
    }
}

/// The grant's names held (see [`GrantAccount::names`]) for a read-write
/// grant; a read-only one changes none.
async fn names_held(quota: &Option<Quota>) -> Option<tokio::sync::MutexGuard<'_, ()>> {
    match quota {
        Some(quota) => Some(quota.account.names.lock().await),
        None => None,
    }
}

/// A name that was identified as `entry` is gone: its entry is refunded,
/// a file's bytes once its last link is (and no descriptor holds it), a
/// symlink's block once its last hard link is.
fn removed(quota: &Quota, entry: Option<Entry>) {
    match entry {
        Some(Entry { key, kind: EntryKind::File, links }) => {
            quota.account.refund_entry(0);
            quota.account.unlinked(key, links);
        }
        Some(Entry { kind: EntryKind::Directory, .. }) => quota.account.refund_entry(BLOCK_BYTES),
        Some(Entry { kind: EntryKind::Symlink, links, .. }) if links <= 1 => quota.account.refund_entry(BLOCK_BYTES),
        _ => quota.account.refund_entry(0),
    }
}

/// A rename of `source` replaced `replaced`, which is removed unless it was
/// the same file.
fn renamed(quota: &Quota, source: Option<Entry>, replaced: Option<Entry>) {
    let same = matches!((source, replaced), (Some(a), Some(b)) if a.key == b.key);
    if replaced.is_some() && !same {
        removed(quota, replaced);
    }
}

impl preopens::Host for QuotaFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        self.preopens()
    }
}

impl QuotaFs<'_> {
    /// Duplicates of the descriptors pinned at load, never a reopen by name.
    fn preopens(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let mut dirs = Vec::with_capacity(self.disk.grants.len());
        for (index, grant) in self.disk.grants.iter_mut().enumerate() {
            let dir = match &grant.preopened {
                Some(dir) => dir.clone(),
                None => {
                    let (perms, mode) = match grant.read_write {
                        true => (FsPerms::ReadWrite, OpenMode::READ | OpenMode::WRITE),
                        false => (FsPerms::ReadOnly, OpenMode::READ),
                    };
                    grant.preopened.insert(Dir::new(grant.dir.try_clone()?, perms, mode, false)).clone()
                }
            };
            let fd = self.inner.table.push(Descriptor::Dir(dir))?;
            self.disk.owners.insert(fd.rep(), index);
            dirs.push((fd, grant.guest.clone()));
        }
        Ok(dirs)
    }
}

impl types::Host for QuotaFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl HostDescriptor for QuotaFs<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.inner, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.inner, fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.inner, fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.inner, fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        let (Some(quota), Some(file), true) = (self.disk.quota(&fd)?, self.file(&fd)?, size <= MAX_FILE_SIZE) else {
            return HostDescriptor::set_size(&mut self.inner, fd, size).await;
        };
        let key = file_identity(&file)?.0;
        quota.grow(key, size).map_err(insufficient_space)?;
        let resized = HostDescriptor::set_size(&mut self.inner, fd, size).await;
        // A shrink frees what the disk says it freed; a refusal (a
        // descriptor not open for writing) gives the charge back.
        let (_, now, allocated) = file_identity(&file)?;
        quota.account.settle(key, now, allocated);
        resized
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.inner, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let (Some(quota), Some(key)) = (self.disk.quota(&fd)?, self.file_key(&fd)?) else {
            return HostDescriptor::write(&mut self.inner, fd, buf, offset).await;
        };
        // Charged by the end it reaches: a byte at 1 TiB makes a 1 TiB
        // file, however sparse, and writes into its holes are covered.
        let end = offset.saturating_add(buf.len() as u64);
        quota.grow(key, end).map_err(insufficient_space)?;
        let written = HostDescriptor::write(&mut self.inner, fd, buf, offset).await?;
        quota.account.reached(key, end);
        Ok(written)
    }

    async fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let Descriptor::Dir(dir) = self.inner.table.get(&fd)? else {
            return Err(ErrorCode::NotDirectory.into());
        };
        let dir = dir.dir.clone();
        // Each listing holds a directory descriptor of its own.
        if self.at_descriptor_cap() {
            return Err(ErrorCode::InsufficientMemory.into());
        }
        let listing = self.inner.table.push(Listing::open(dir)?)?;
        Ok(Resource::new_own(listing.rep()))
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let dir = borrow(&fd);
        let block = BLOCK_BYTES;
        self.create_entry(&dir, block, async |inner| HostDescriptor::create_directory_at(inner, fd, path).await).await
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.inner, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.same_grant(&fd, &new_descriptor)?;
        let quota = self.disk.quota(&fd)?;
        let _names = names_held(&quota).await;
        let dir = borrow(&fd);
        self.create_entry(&dir, 0, async |inner| {
            HostDescriptor::link_at(inner, fd, old_path_flags, old_path, new_descriptor, new_path).await
        })
        .await
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let owner = self.disk.owner(&fd).ok_or(ErrorCode::BadDescriptor)?;
        if self.at_descriptor_cap() {
            // wasi:filesystem has no "too many open files"; a guest's libc
            // reports this one as out of memory, which is what it is.
            return Err(ErrorCode::InsufficientMemory.into());
        }
        let quota = self.disk.quota(&fd)?;
        let opened = match &quota {
            Some(quota) if oflags.contains(types::OpenFlags::CREATE) => {
                self.open_creating(fd, path_flags, path, oflags, flags, quota).await?
            }
            _ => HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, oflags, flags).await?,
        };
        let file = self.file(&opened)?;
        let truncated = oflags.contains(types::OpenFlags::TRUNCATE);
        self.disk.record_open(opened.rep(), owner, file, quota, truncated)?;
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.disk.forget(fd.rep());
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.inner, fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let quota = self.disk.quota(&fd)?;
        let _names = names_held(&quota).await;
        HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await?;
        if let Some(quota) = &quota {
            quota.account.refund_entry(BLOCK_BYTES);
        }
        Ok(())
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.same_grant(&fd, &new_fd)?;
        let Some(quota) = self.disk.quota(&fd)? else {
            return HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await;
        };
        // What the rename replaces is removed.
        let _names = quota.account.names.lock().await;
        let source = self.identify(&fd, &old_path).await;
        let replaced = self.identify(&new_fd, &new_path).await;
        HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await?;
        renamed(&quota, source, replaced);
        Ok(())
    }

    async fn symlink_at(&mut self, fd: Resource<Descriptor>, src_path: String, dest_path: String) -> FsResult<()> {
        let dir = borrow(&fd);
        let block = BLOCK_BYTES;
        self.create_entry(&dir, block, async |inner| HostDescriptor::symlink_at(inner, fd, src_path, dest_path).await)
            .await
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let Some(quota) = self.disk.quota(&fd)? else {
            return HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await;
        };
        let _names = quota.account.names.lock().await;
        let identified = self.identify(&fd, &path).await;
        HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await?;
        removed(&quota, identified);
        Ok(())
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        let quota = self.disk.quota(&fd)?;
        let file = self.file(&fd)?;
        let stream = HostDescriptor::read_via_stream(&mut self.inner, fd, offset)?;
        let Some(file) = file else { return Ok(stream) };
        self.streaming(&file, None);
        let hold = match quota {
            Some(quota) => quota.hold(&file, false)?,
            None => FileHold::of(&file)?,
        };
        let inner = self.inner.table.delete(stream)?;
        Ok(self.inner.table.push(HeldInput::wrap(inner, hold))?)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let quota = self.disk.quota(&fd)?;
        let Some(file) = self.file(&fd)? else { return HostDescriptor::write_via_stream(&mut self.inner, fd, offset) };
        let stream = HostDescriptor::write_via_stream(&mut self.inner, fd, offset)?;
        self.counted(stream, quota, file, Some(offset))
    }

    fn append_via_stream(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        let quota = self.disk.quota(&fd)?;
        let Some(file) = self.file(&fd)? else { return HostDescriptor::append_via_stream(&mut self.inner, fd) };
        let stream = HostDescriptor::append_via_stream(&mut self.inner, fd)?;
        self.counted(stream, quota, file, None)
    }

    async fn is_same_object(&mut self, a: Resource<Descriptor>, b: Resource<Descriptor>) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.inner, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for QuotaFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.inner.table.get_mut(&as_listing(&stream))?.next()
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.inner.table.delete(Resource::<Listing>::new_own(stream.rep()))?;
        Ok(())
    }
}
