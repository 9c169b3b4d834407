//! `wasi:filesystem` as wasmtime-wasi implements it, wrapped: every change
//! to a read-write grant's directory goes through its quota
//! ([`GrantUsage`]), and one instance holds at most its cap of open
//! descriptors. Everything else is wasmtime-wasi's own code, delegated.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::ResourceTable;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

use super::disk::{GrantUsage, QuotaStream, Refused};
use crate::grants::Preopen;
use crate::report::DiskUsage;

use types::{ErrorCode, HostDescriptor, HostDirectoryEntryStream};

/// Per instance: which grant each open descriptor belongs to, each
/// read-write grant's quota, and the descriptor cap.
pub(crate) struct DiskState {
    /// By preopen index: the quota of a read-write grant, `None` for a read-only one.
    grants: Vec<(String, Option<Arc<GrantUsage>>)>,
    /// Descriptor handle to preopen index.
    owners: HashMap<u32, usize>,
    max_descriptors: usize,
    /// Bytes each open directory listing holds (wasmtime-wasi reads a
    /// listing whole when the stream opens), by stream handle.
    listings: HashMap<u32, u64>,
    /// What all open listings may hold together.
    max_listing_bytes: u64,
}

impl DiskState {
    pub(crate) fn new(preopens: &[Preopen], max_descriptors: u32, max_listing_bytes: u64) -> Self {
        let grants = preopens
            .iter()
            .map(|preopen| {
                let usage = (preopen.mode == runtime_manifest::DirMode::ReadWrite).then(|| GrantUsage::new(preopen));
                (preopen.guest.clone(), usage)
            })
            .collect();
        Self {
            grants,
            owners: HashMap::new(),
            max_descriptors: max_descriptors as usize,
            listings: HashMap::new(),
            max_listing_bytes,
        }
    }

    /// The quotas the instance touched, for the report.
    pub(crate) fn usage(&self) -> Vec<DiskUsage> {
        self.grants.iter().filter_map(|(_, usage)| usage.as_ref()).filter(|u| u.touched()).map(|u| u.usage()).collect()
    }

    fn owner(&self, fd: &Resource<Descriptor>) -> Option<usize> {
        self.owners.get(&fd.rep()).copied()
    }

    /// The quota of `fd`'s grant; a read-only grant's is `None` (wasmtime-wasi
    /// refuses its writes itself).
    fn quota(&self, fd: &Resource<Descriptor>) -> Result<Option<Arc<GrantUsage>>, FsError> {
        let index = self.owner(fd).ok_or(ErrorCode::BadDescriptor)?;
        Ok(self.grants.get(index).and_then(|(_, usage)| usage.clone()))
    }
}

/// Open OS descriptors (files, directories, sockets) behind the handles of
/// `table`. Preopens handed out twice share one descriptor, so descriptors
/// are told apart by the file they share.
pub(crate) fn open_descriptors(table: &mut ResourceTable) -> usize {
    let mut files = std::collections::HashSet::new();
    let mut sockets = 0;
    for entry in table.iter_mut() {
        if let Some(descriptor) = entry.downcast_ref::<Descriptor>() {
            let file = match descriptor {
                Descriptor::File(file) => Arc::as_ptr(&file.file),
                Descriptor::Dir(dir) => Arc::as_ptr(&dir.dir),
            };
            files.insert(file);
        } else if entry.is::<wasmtime_wasi::p2::TcpSocket>() || entry.is::<wasmtime_wasi::p2::UdpSocket>() {
            sockets += 1;
        }
    }
    files.len() + sockets
}

/// Host bytes one listed entry takes in wasmtime-wasi's listing, besides its name.
const LISTED_ENTRY_BYTES: u64 = 64;

/// What listing `dir` makes the host hold, counted by reading its names
/// (no `stat`) and stopping once it passes `room`. Linux reads the open
/// directory through `/proc/self/fd`; elsewhere listings are bounded by the
/// WASI object cap only.
fn listing_cost(dir: &std::fs::File, room: u64) -> u64 {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else { return 0 };
        let mut cost = 0u64;
        for entry in entries.flatten() {
            cost += LISTED_ENTRY_BYTES + entry.file_name().len() as u64;
            if cost > room {
                break;
            }
        }
        cost
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dir, room);
        0
    }
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
}

/// A borrow of the handle `fd`, to ask wasmtime-wasi about it before the
/// operation that consumes `fd`.
fn borrow(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

fn insufficient_space(_: Refused) -> FsError {
    ErrorCode::InsufficientSpace.into()
}

impl QuotaFs<'_> {
    /// Whether `path` names something in `fd`'s directory (a symlink is not followed).
    async fn exists(&mut self, fd: &Resource<Descriptor>, path: &str) -> bool {
        HostDescriptor::stat_at(&mut self.inner, borrow(fd), types::PathFlags::empty(), path.to_owned()).await.is_ok()
    }

    /// Runs `create` (which makes one entry in `fd`'s directory) within the quota.
    async fn create_entry<R>(
        &mut self,
        fd: &Resource<Descriptor>,
        create: impl AsyncFnOnce(&mut WasiFilesystemCtxView<'_>) -> FsResult<R>,
    ) -> FsResult<R> {
        let quota = self.disk.quota(fd)?;
        if let Some(quota) = &quota {
            quota.charge_entry().map_err(insufficient_space)?;
        }
        let created = create(&mut self.inner).await;
        if let (Some(quota), Err(_)) = (&quota, &created) {
            quota.refund_entry();
        }
        created
    }

    /// Refuses a link or rename between two grants: each grant is its own
    /// file system as far as quotas go, so the guest sees `cross-device`.
    fn same_grant(&self, a: &Resource<Descriptor>, b: &Resource<Descriptor>) -> FsResult<()> {
        match (self.disk.owner(a), self.disk.owner(b)) {
            (Some(a), Some(b)) if a == b => Ok(()),
            _ => Err(ErrorCode::CrossDevice.into()),
        }
    }
}

impl preopens::Host for QuotaFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.inner)?;
        for (fd, guest) in &dirs {
            if let Some(index) = self.disk.grants.iter().position(|(path, _)| path == guest) {
                self.disk.owners.insert(fd.rep(), index);
            }
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
        let Some(quota) = self.disk.quota(&fd)? else {
            return HostDescriptor::set_size(&mut self.inner, fd, size).await;
        };
        let now = HostDescriptor::stat(&mut self.inner, borrow(&fd)).await?.size;
        let growth = size.saturating_sub(now);
        quota.charge_bytes(growth).map_err(insufficient_space)?;
        let resized = HostDescriptor::set_size(&mut self.inner, fd, size).await;
        match &resized {
            Err(_) => quota.refund_bytes(growth),
            Ok(()) => quota.refund_bytes(now.saturating_sub(size)),
        }
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
        let Some(quota) = self.disk.quota(&fd)? else {
            return HostDescriptor::write(&mut self.inner, fd, buf, offset).await;
        };
        // A positioned write holds what it adds past the file's end (a byte
        // at 1 TiB makes a 1 TiB file, however sparse).
        let size = match self.inner.table.get(&fd)? {
            Descriptor::File(file) => file.file.metadata().map_or(0, |meta| meta.len()),
            Descriptor::Dir(_) => 0,
        };
        let growth = offset.saturating_add(buf.len() as u64).saturating_sub(size);
        quota.charge_bytes(growth).map_err(insufficient_space)?;
        let written = HostDescriptor::write(&mut self.inner, fd, buf, offset).await;
        if written.is_err() {
            quota.refund_bytes(growth);
        }
        written
    }

    async fn read_directory(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<types::DirectoryEntryStream>> {
        let held: u64 = self.disk.listings.values().sum();
        let room = self.disk.max_listing_bytes.saturating_sub(held);
        let cost = match self.inner.table.get(&fd)? {
            Descriptor::Dir(dir) => listing_cost(&dir.dir, room),
            Descriptor::File(_) => 0,
        };
        if cost > room {
            return Err(ErrorCode::InsufficientMemory.into());
        }
        let stream = HostDescriptor::read_directory(&mut self.inner, fd).await?;
        self.disk.listings.insert(stream.rep(), cost);
        Ok(stream)
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn create_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let dir = borrow(&fd);
        self.create_entry(&dir, async |inner| HostDescriptor::create_directory_at(inner, fd, path).await).await
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
        let dir = borrow(&fd);
        self.create_entry(&dir, async |inner| {
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
        if open_descriptors(self.inner.table) >= self.disk.max_descriptors {
            // wasi:filesystem has no "too many open files"; a guest's libc
            // reports this one as out of memory, which is what it is.
            return Err(ErrorCode::InsufficientMemory.into());
        }
        let creates = oflags.contains(types::OpenFlags::CREATE) && !self.exists(&fd, &path).await;
        let truncates = oflags.contains(types::OpenFlags::TRUNCATE);
        let quota = self.disk.quota(&fd)?;
        // What truncation frees is known only before the open.
        let freed = match (&quota, truncates && !creates) {
            (Some(_), true) => HostDescriptor::stat_at(&mut self.inner, borrow(&fd), path_flags, path.clone())
                .await
                .map_or(0, |stat| if stat.link_count <= 1 { stat.size } else { 0 }),
            _ => 0,
        };
        let opened = if creates {
            let dir = borrow(&fd);
            self.create_entry(&dir, async |inner| {
                HostDescriptor::open_at(inner, fd, path_flags, path, oflags, flags).await
            })
            .await
        } else {
            HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, oflags, flags).await
        };
        if let (Ok(_), Some(quota)) = (&opened, &quota) {
            quota.refund_bytes(freed);
        }
        if let Ok(opened) = &opened {
            self.disk.owners.insert(opened.rep(), owner);
        }
        opened
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.disk.owners.remove(&fd.rep());
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.inner, fd, path).await
    }

    async fn remove_directory_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let quota = self.disk.quota(&fd)?;
        let removed = HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await;
        if let (Ok(()), Some(quota)) = (&removed, quota) {
            quota.refund_entry();
        }
        removed
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.same_grant(&fd, &new_fd)?;
        HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(&mut self, fd: Resource<Descriptor>, src_path: String, dest_path: String) -> FsResult<()> {
        let dir = borrow(&fd);
        self.create_entry(&dir, async |inner| HostDescriptor::symlink_at(inner, fd, src_path, dest_path).await).await
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        let Some(quota) = self.disk.quota(&fd)? else {
            return HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await;
        };
        let stat = HostDescriptor::stat_at(&mut self.inner, borrow(&fd), types::PathFlags::empty(), path.clone()).await;
        let unlinked = HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await;
        if let (Ok(()), Ok(stat)) = (&unlinked, stat) {
            quota.refund_entry();
            // The bytes stay on disk while another link to them does.
            if stat.link_count <= 1 && stat.type_ == types::DescriptorType::RegularFile {
                quota.refund_bytes(stat.size);
            }
        }
        unlinked
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let quota = self.disk.quota(&fd)?;
        let stream = HostDescriptor::write_via_stream(&mut self.inner, fd, offset)?;
        self.counted(stream, quota)
    }

    fn append_via_stream(&mut self, fd: Resource<Descriptor>) -> FsResult<Resource<DynOutputStream>> {
        let quota = self.disk.quota(&fd)?;
        let stream = HostDescriptor::append_via_stream(&mut self.inner, fd)?;
        self.counted(stream, quota)
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

impl QuotaFs<'_> {
    /// Puts the stream wasmtime-wasi made for a read-write grant's file
    /// behind its quota.
    fn counted(
        &mut self,
        stream: Resource<DynOutputStream>,
        quota: Option<Arc<GrantUsage>>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some(quota) = quota else { return Ok(stream) };
        let inner = self.inner.table.delete(stream)?;
        Ok(self.inner.table.push(QuotaStream::wrap(inner, quota))?)
    }
}

impl HostDirectoryEntryStream for QuotaFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.disk.listings.remove(&stream.rep());
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}
