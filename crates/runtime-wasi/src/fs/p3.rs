//! `wasi:filesystem@0.3` under the meters of its 0.2 twin: the same
//! preopens, grant ownership, descriptor cap, holds and quotas, kept in the
//! same [`DiskState`] over the same table. wasmtime-wasi's 0.3 host does the
//! I/O, reached through [`Accessor::with_getter`]; the two things it does
//! inside objects a wrapper cannot see are done here: a write stream to a
//! read-write grant's regular file charges each chunk by the end it reaches
//! before writing it ([`ChargedWrites`], as 0.2's stream does), and a
//! listing is read from the OS as the guest reads it ([`Listing`]), a
//! descriptor against the cap while it lives.

use std::fs::File;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::oneshot;
use wasmtime::component::{
    Access, Accessor, Destination, FutureReader, HasData, Resource, Source, StreamConsumer, StreamProducer,
    StreamReader, StreamResult,
};
use wasmtime::{AsContextMut as _, StoreContextMut};
use wasmtime_wasi::OpenMode;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystem, WasiFilesystemCtxView};
use wasmtime_wasi::p3::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p3::filesystem::{FilesystemError, FilesystemResult};

use types::{
    Advice, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode, Filesize,
    HostDescriptorWithStore as _, MetadataHashValue, NewTimestamp, OpenFlags, PathFlags,
};

use super::{
    Attempt, Entry, EntryKind, MAX_FILE_SIZE, OpenOrCreate, QuotaFs, Refusal, borrow, names_held, removed, renamed,
};
use crate::disk::{ChargedWrites, FileHold, Quota};
use crate::grant_dir::{BLOCK_BYTES, file_identity};
use crate::listing::Listing;
use runtime_core::StoreState;

/// The `HasData` of the wrapped 0.3 filesystem interfaces.
pub(crate) struct QuotaFilesystemP3;

impl HasData for QuotaFilesystemP3 {
    type Data<'a> = QuotaFs<'a>;
}

/// The largest write a stream makes at once, so one write of the guest's
/// holds the host thread for one short `pwrite`.
const MAX_WRITE_BYTES: usize = 64 * 1024;

/// wasmtime-wasi's own 0.3 filesystem host over the instance's table.
fn plain<T: 'static>(store: &Accessor<StoreState<T>, QuotaFilesystemP3>) -> Accessor<StoreState<T>, WasiFilesystem> {
    store.with_getter::<WasiFilesystem>(crate::p3::plain_filesystem::<T>)
}

/// What `fd` is for the meters, read in one visit of the store.
struct Metered {
    /// The grant's index; `None` for a handle no grant owns.
    owner: Option<usize>,
    quota: Option<Quota>,
    file: Option<Arc<File>>,
}

fn metered<T: 'static>(
    store: &Accessor<StoreState<T>, QuotaFilesystemP3>,
    fd: &Resource<Descriptor>,
) -> FilesystemResult<Metered> {
    store.with(|mut access| {
        let mut fs = access.get();
        let file = fs.file(fd)?;
        Ok(Metered { owner: fs.disk.owner(fd), quota: fs.disk.grant_quota(fd).flatten(), file })
    })
}

fn no_space() -> FilesystemError {
    ErrorCode::InsufficientSpace.into()
}

/// A 0.3 filesystem call's error as a guest error code, or the trap it is.
fn attempt<R>(result: FilesystemResult<R>) -> Attempt<R, FilesystemError> {
    match result {
        Ok(opened) => Attempt::Opened(opened),
        Err(error) => match error.downcast_ref() {
            Some(ErrorCode::NoEntry) => Attempt::Missing(error),
            Some(ErrorCode::Exist) => Attempt::Exists(error),
            _ => Attempt::Failed(error),
        },
    }
}

/// Runs `create`, which makes one entry holding `bytes` in a grant under
/// `quota` (if read-write), within the quota.
async fn create_entry(
    quota: Option<Quota>,
    bytes: u64,
    create: impl Future<Output = FilesystemResult<()>>,
) -> FilesystemResult<()> {
    if let Some(quota) = &quota {
        quota.charge_entry(bytes).map_err(|_| no_space())?;
    }
    let created = create.await;
    if let (Some(quota), Err(_)) = (&quota, &created) {
        quota.account.refund_entry(bytes);
    }
    created
}

/// What a name in `fd`'s directory is, before it is removed or replaced.
async fn identify<T: 'static>(
    store: &Accessor<StoreState<T>, QuotaFilesystemP3>,
    fd: &Resource<Descriptor>,
    path: &str,
) -> Option<Entry> {
    let none = PathFlags::empty();
    let stat = WasiFilesystem::stat_at(&plain(store), borrow(fd), none, path.to_owned()).await.ok()?;
    let hash = WasiFilesystem::metadata_hash_at(&plain(store), borrow(fd), none, path.to_owned()).await.ok()?;
    let kind = match stat.type_ {
        DescriptorType::RegularFile => EntryKind::File,
        DescriptorType::Directory => EntryKind::Directory,
        DescriptorType::SymbolicLink => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Some(Entry { key: hash.lower, kind, links: stat.link_count })
}

impl preopens::Host for QuotaFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        self.preopens()
    }
}

impl types::Host for QuotaFs<'_> {
    fn convert_error_code(&mut self, error: FilesystemError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }
}

impl types::HostDescriptor for QuotaFs<'_> {
    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.disk.forget(fd.rep());
        self.inner.table.delete(fd)?;
        Ok(())
    }
}

/// Delegates calls that change nothing the meters count to wasmtime-wasi.
macro_rules! delegate {
    ($( async fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        $(
            async fn $name(store: &Accessor<StoreState<T>, Self>, $($arg: $ty),*) -> $ret {
                WasiFilesystem::$name(&plain(store), $($arg),*).await
            }
        )*
    };
}

impl<T: Send + 'static> types::HostDescriptorWithStore<StoreState<T>> for QuotaFilesystemP3 {
    delegate! {
        async fn advise(fd: Resource<Descriptor>, offset: Filesize, length: Filesize, advice: Advice) -> FilesystemResult<()>;
        async fn sync_data(fd: Resource<Descriptor>) -> FilesystemResult<()>;
        async fn get_flags(fd: Resource<Descriptor>) -> FilesystemResult<DescriptorFlags>;
        async fn get_type(fd: Resource<Descriptor>) -> FilesystemResult<DescriptorType>;
        async fn set_times(fd: Resource<Descriptor>, atim: NewTimestamp, mtim: NewTimestamp) -> FilesystemResult<()>;
        async fn sync(fd: Resource<Descriptor>) -> FilesystemResult<()>;
        async fn stat(fd: Resource<Descriptor>) -> FilesystemResult<DescriptorStat>;
        async fn stat_at(fd: Resource<Descriptor>, path_flags: PathFlags, path: String) -> FilesystemResult<DescriptorStat>;
        async fn set_times_at(fd: Resource<Descriptor>, path_flags: PathFlags, path: String, atim: NewTimestamp, mtim: NewTimestamp) -> FilesystemResult<()>;
        async fn readlink_at(fd: Resource<Descriptor>, path: String) -> FilesystemResult<String>;
        async fn is_same_object(fd: Resource<Descriptor>, other: Resource<Descriptor>) -> wasmtime::Result<bool>;
        async fn metadata_hash(fd: Resource<Descriptor>) -> FilesystemResult<MetadataHashValue>;
        async fn metadata_hash_at(fd: Resource<Descriptor>, path_flags: PathFlags, path: String) -> FilesystemResult<MetadataHashValue>;
    }

    fn read_via_stream(
        mut store: Access<'_, StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        offset: Filesize,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        let (quota, file) = {
            let mut fs = store.get();
            (fs.disk.grant_quota(&fd).flatten(), fs.file(&fd)?)
        };
        let read = WasiFilesystem::read_via_stream(plain_access(&mut store), fd, offset)?;
        if let Some(file) = file {
            // An unlinked file the stream reads stays charged until it closes.
            let hold = match quota {
                Some(quota) => quota.hold(&file, false)?,
                None => FileHold::of(&file)?,
            };
            store.get().streaming(&file, Some(hold));
        }
        Ok(read)
    }

    fn write_via_stream(
        store: Access<'_, StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        data: StreamReader<u8>,
        offset: Filesize,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        write_charged(store, fd, data, Some(offset))
    }

    fn append_via_stream(
        store: Access<'_, StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        write_charged(store, fd, data, None)
    }

    async fn set_size(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        size: Filesize,
    ) -> FilesystemResult<()> {
        let (Metered { quota: Some(quota), file: Some(file), .. }, true) =
            (metered(store, &fd)?, size <= MAX_FILE_SIZE)
        else {
            return WasiFilesystem::set_size(&plain(store), fd, size).await;
        };
        let key = file_identity(&file)?.0;
        quota.grow(key, size).map_err(|_| no_space())?;
        let resized = WasiFilesystem::set_size(&plain(store), fd, size).await;
        // A shrink frees what the disk says it freed; a refusal (a
        // descriptor not open for writing) gives the charge back.
        let (_, now, allocated) = file_identity(&file)?;
        quota.account.settle(key, now, allocated);
        resized
    }

    fn read_directory(
        mut store: Access<'_, StoreState<T>, Self>,
        fd: Resource<Descriptor>,
    ) -> wasmtime::Result<(StreamReader<DirectoryEntry>, FutureReader<Result<(), ErrorCode>>)> {
        let (result, done) = oneshot::channel();
        let opened = {
            let mut fs = store.get();
            let dir = match fs.inner.table.get(&fd)? {
                Descriptor::Dir(dir) => Ok(dir.dir.clone()),
                Descriptor::File(_) => Err(ErrorCode::NotDirectory),
            };
            // Each listing holds a directory descriptor of its own.
            match dir {
                Ok(_) if fs.at_descriptor_cap() => Err(ErrorCode::InsufficientMemory),
                Ok(dir) => Listing::open(dir.clone()).map_err(|_| ErrorCode::Io).map(|listing| {
                    let live = Arc::new(());
                    fs.disk.listings.push(Arc::downgrade(&live));
                    fs.streaming(&dir, None);
                    (listing, live)
                }),
                Err(code) => Err(code),
            }
        };
        let entries = match opened {
            Ok((listing, live)) => {
                StreamReader::new(&mut store, ListingProducer { listing, _live: live, end: StreamEnd(Some(result)) })?
            }
            Err(code) => {
                let _ = result.send(Err(code));
                StreamReader::new(&mut store, std::iter::empty())?
            }
        };
        Ok((entries, FutureReader::new(&mut store, done)?))
    }

    async fn create_directory_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let quota = metered(store, &fd)?.quota;
        create_entry(quota, BLOCK_BYTES, WasiFilesystem::create_directory_at(&plain(store), fd, path)).await
    }

    async fn link_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let quota = same_grant(store, &fd, &new_fd)?;
        let _names = names_held(&quota).await;
        let plain = plain(store);
        create_entry(quota.clone(), 0, WasiFilesystem::link_at(&plain, fd, old_path_flags, old_path, new_fd, new_path))
            .await
    }

    async fn open_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        open_flags: OpenFlags,
        flags: DescriptorFlags,
    ) -> FilesystemResult<Resource<Descriptor>> {
        let (owner, quota) = store.with(|mut access| {
            let mut fs = access.get();
            let owner = fs.disk.owner(&fd).ok_or(ErrorCode::BadDescriptor)?;
            if fs.at_descriptor_cap() {
                // wasi:filesystem has no "too many open files"; a guest's
                // libc reports this one as out of memory, which it is.
                return Err(ErrorCode::InsufficientMemory);
            }
            // The descriptor is counted from here: opens in flight at once
            // (WASI 0.3 calls run concurrently) each take one.
            fs.disk.opening += 1;
            Ok((owner, fs.disk.grant_quota(&fd).flatten()))
        })?;
        let opened = open_metered(store, &fd, path_flags, path, open_flags, flags, quota.as_ref()).await;
        let truncated = open_flags.contains(OpenFlags::TRUNCATE);
        store.with(|mut access| {
            let mut fs = access.get();
            fs.disk.opening -= 1;
            let opened = opened?;
            let file = fs.file(&opened)?;
            fs.disk.record_open(opened.rep(), owner, file, quota, truncated)?;
            Ok(opened)
        })
    }

    async fn remove_directory_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let quota = metered(store, &fd)?.quota;
        let _names = names_held(&quota).await;
        WasiFilesystem::remove_directory_at(&plain(store), fd, path).await?;
        if let Some(quota) = &quota {
            quota.account.refund_entry(BLOCK_BYTES);
        }
        Ok(())
    }

    async fn rename_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let Some(quota) = same_grant(store, &fd, &new_fd)? else {
            return WasiFilesystem::rename_at(&plain(store), fd, old_path, new_fd, new_path).await;
        };
        // What the rename replaces is removed.
        let _names = quota.account.names.lock().await;
        let source = identify(store, &fd, &old_path).await;
        let replaced = identify(store, &new_fd, &new_path).await;
        WasiFilesystem::rename_at(&plain(store), fd, old_path, new_fd, new_path).await?;
        renamed(&quota, source, replaced);
        Ok(())
    }

    async fn symlink_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FilesystemResult<()> {
        let quota = metered(store, &fd)?.quota;
        create_entry(quota, BLOCK_BYTES, WasiFilesystem::symlink_at(&plain(store), fd, old_path, new_path)).await
    }

    async fn unlink_file_at(
        store: &Accessor<StoreState<T>, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let Some(quota) = metered(store, &fd)?.quota else {
            return WasiFilesystem::unlink_file_at(&plain(store), fd, path).await;
        };
        let _names = quota.account.names.lock().await;
        let identified = identify(store, &fd, &path).await;
        WasiFilesystem::unlink_file_at(&plain(store), fd, path).await?;
        removed(&quota, identified);
        Ok(())
    }
}

/// `open-at` itself: with `create` in a read-write grant, the charged
/// open-or-create steps.
async fn open_metered<T: Send + 'static>(
    store: &Accessor<StoreState<T>, QuotaFilesystemP3>,
    fd: &Resource<Descriptor>,
    path_flags: PathFlags,
    path: String,
    open_flags: OpenFlags,
    flags: DescriptorFlags,
    quota: Option<&Quota>,
) -> FilesystemResult<Resource<Descriptor>> {
    let open = async |open_flags| {
        WasiFilesystem::open_at(&plain(store), borrow(fd), path_flags, path.clone(), open_flags, flags).await
    };
    let Some(quota) = quota.filter(|_| open_flags.contains(OpenFlags::CREATE)) else {
        return open(open_flags).await;
    };
    let mut steps = OpenOrCreate::new(quota, open_flags.contains(OpenFlags::EXCLUSIVE));
    loop {
        let open_flags = match steps.next() {
            Ok(true) => open_flags | OpenFlags::EXCLUSIVE,
            Ok(false) => open_flags & !OpenFlags::CREATE,
            Err(Refusal::NoSpace) => return Err(no_space()),
            Err(Refusal::Raced) => return Err(ErrorCode::Exist.into()),
            Err(Refusal::Failed(error)) => return Err(error),
        };
        match steps.found(attempt(open(open_flags).await)) {
            None => {}
            Some(Ok(opened)) => return Ok(opened),
            Some(Err(Refusal::Failed(error))) => return Err(error),
            Some(Err(_)) => return Err(ErrorCode::Exist.into()),
        }
    }
}

/// The same store, seen through wasmtime-wasi's own filesystem view.
fn plain_access<'a, T: 'static>(
    store: &'a mut Access<'_, StoreState<T>, QuotaFilesystemP3>,
) -> Access<'a, StoreState<T>, WasiFilesystem> {
    let getter: fn(&mut StoreState<T>) -> WasiFilesystemCtxView<'_> = crate::p3::plain_filesystem::<T>;
    Access::<StoreState<T>, WasiFilesystem>::new(store.as_context_mut(), getter)
}

/// The quota of a link or rename between `a` and `b`, refused between two
/// grants: each is its own file system as far as quotas go, so the guest
/// sees `cross-device`.
fn same_grant<T: 'static>(
    store: &Accessor<StoreState<T>, QuotaFilesystemP3>,
    a: &Resource<Descriptor>,
    b: &Resource<Descriptor>,
) -> FilesystemResult<Option<Quota>> {
    let (a, b) = (metered(store, a)?, metered(store, b)?);
    match (a.owner, b.owner) {
        (Some(a_owner), Some(b_owner)) if a_owner == b_owner => Ok(a.quota),
        _ => Err(ErrorCode::CrossDevice.into()),
    }
}

/// How a write stream to a descriptor is served.
enum WriteTarget {
    /// A read-write grant's regular file, opened for writing: here, charged.
    Charged(Quota, Arc<File>),
    /// A file that no write through this descriptor can reach: refused
    /// here, so no stream holds it.
    Refused(ErrorCode),
    /// Anything else, by wasmtime-wasi: a directory or a read-only grant's
    /// file (it refuses those), a device or a pipe (no disk); a file it
    /// keeps open is recorded.
    Plain,
}

/// `write-via-stream` and `append-via-stream` (`offset` `None`).
fn write_charged<T: 'static>(
    mut store: Access<'_, StoreState<T>, QuotaFilesystemP3>,
    fd: Resource<Descriptor>,
    mut data: StreamReader<u8>,
    offset: Option<Filesize>,
) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
    let target = {
        let mut fs = store.get();
        let quota = fs.disk.grant_quota(&fd).flatten();
        let file = match fs.inner.table.get(&fd)? {
            Descriptor::File(file) if !file.perms.write_not_permitted() => Some(file.clone()),
            _ => None,
        };
        match (quota, file) {
            (_, Some(file)) if !file.open_mode.contains(OpenMode::WRITE) => {
                WriteTarget::Refused(ErrorCode::BadDescriptor)
            }
            (Some(quota), Some(file)) if file.file.metadata().is_ok_and(|meta| meta.is_file()) => {
                fs.streaming(&file.file, None);
                WriteTarget::Charged(quota, file.file)
            }
            (_, Some(file)) => {
                let hold = FileHold::of(&file.file)?;
                fs.streaming(&file.file, Some(hold));
                WriteTarget::Plain
            }
            (_, None) => WriteTarget::Plain,
        }
    };
    let (result, done) = oneshot::channel();
    match target {
        WriteTarget::Plain => {
            return match offset {
                Some(offset) => WasiFilesystem::write_via_stream(plain_access(&mut store), fd, data, offset),
                None => WasiFilesystem::append_via_stream(plain_access(&mut store), fd, data),
            };
        }
        WriteTarget::Refused(code) => {
            data.close(&mut store)?;
            let _ = result.send(Err(code));
        }
        WriteTarget::Charged(quota, file) => match ChargedWrites::new(quota, file, offset) {
            Ok(writes) => data.pipe(&mut store, WriteConsumer { writes, end: StreamEnd(Some(result)) })?,
            Err(error) => {
                data.close(&mut store)?;
                let _ = result.send(Err(ErrorCode::from(error)));
            }
        },
    }
    FutureReader::new(&mut store, done)
}

/// The consumer of a charged write stream: each chunk is charged, then
/// written where the stream stands (appended at the file's end for an
/// append stream); a refusal ends the stream with `insufficient-space`.
struct WriteConsumer {
    writes: ChargedWrites,
    end: StreamEnd,
}

/// The sender of a 0.3 stream's result future: sent once, at the end the
/// stream reports, or `Ok` when the stream is dropped first.
struct StreamEnd(Option<oneshot::Sender<Result<(), ErrorCode>>>);

impl StreamEnd {
    /// Sends `result` and ends the stream.
    fn close(&mut self, result: Result<(), ErrorCode>) -> Poll<wasmtime::Result<StreamResult>> {
        if let Some(sender) = self.0.take() {
            let _ = sender.send(result);
        }
        Poll::Ready(Ok(StreamResult::Dropped))
    }
}

impl Drop for StreamEnd {
    fn drop(&mut self) {
        let _ = self.close(Ok(()));
    }
}

impl<D> StreamConsumer<D> for WriteConsumer {
    type Item = u8;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        store: StoreContextMut<D>,
        source: Source<Self::Item>,
        _: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let mut source = source.as_direct(store);
        let remaining = source.remaining();
        let chunk = &remaining[..remaining.len().min(MAX_WRITE_BYTES)];
        if self.writes.charge(chunk.len() as u64).is_err() {
            return self.end.close(Err(ErrorCode::InsufficientSpace));
        }
        // A regular file on a local disk: the write is short and does not
        // wait on anyone, so it is made on this thread.
        match self.writes.write(chunk) {
            Ok(written) => {
                source.mark_read(written);
                self.writes.advance(written as u64);
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Err(error) => self.end.close(Err(ErrorCode::from(error))),
        }
    }
}

/// The producer of a 0.3 listing: one entry per read, from the OS.
struct ListingProducer {
    listing: Listing,
    /// Alive while the listing is; the instance counts it as a descriptor.
    _live: Arc<()>,
    end: StreamEnd,
}

impl<D> StreamProducer<D> for ListingProducer {
    type Item = DirectoryEntry;
    type Buffer = Option<DirectoryEntry>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        _: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        if destination.remaining(&mut store) == Some(0) {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        match self.listing.next() {
            Ok(Some(entry)) => {
                destination.set_buffer(Some(entry_p3(entry)));
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Ok(None) => self.end.close(Ok(())),
            Err(error) => {
                let code = error.downcast().map_or(ErrorCode::Io, code_p3);
                self.end.close(Err(code))
            }
        }
    }
}

/// A 0.2 listing entry as 0.3 types it.
fn entry_p3(entry: wasmtime_wasi::p2::bindings::filesystem::types::DirectoryEntry) -> DirectoryEntry {
    use wasmtime_wasi::p2::bindings::filesystem::types::DescriptorType as P2;
    let type_ = match entry.type_ {
        P2::BlockDevice => DescriptorType::BlockDevice,
        P2::CharacterDevice => DescriptorType::CharacterDevice,
        P2::Directory => DescriptorType::Directory,
        P2::Fifo => DescriptorType::Fifo,
        P2::SymbolicLink => DescriptorType::SymbolicLink,
        P2::RegularFile => DescriptorType::RegularFile,
        P2::Socket => DescriptorType::Socket,
        P2::Unknown => DescriptorType::Other(None),
    };
    DirectoryEntry { type_, name: entry.name }
}

/// A 0.2 listing error as its 0.3 code.
fn code_p3(code: wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode) -> ErrorCode {
    use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode as P2;
    match code {
        P2::IllegalByteSequence => ErrorCode::IllegalByteSequence,
        P2::NotDirectory => ErrorCode::NotDirectory,
        P2::Access => ErrorCode::Access,
        P2::NoEntry => ErrorCode::NoEntry,
        _ => ErrorCode::Io,
    }
}
