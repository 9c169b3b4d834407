//! `read-directory` as a stream read from the OS as the guest asks:
//! wasmtime-wasi reads and stats a whole listing into memory when the
//! stream opens, so a big directory made the host hold it all. Here each
//! stream holds one directory descriptor and one `getdents` buffer (rustix
//! caps it near 24 KiB), whatever the directory's size; it counts as a
//! descriptor against the instance's cap.

use std::fs::File;
use std::sync::Arc;

use rustix::fs::{AtFlags, Dir, FileType};
use wasmtime_wasi::p2::bindings::filesystem::types::{DescriptorType, DirectoryEntry, ErrorCode};
use wasmtime_wasi::p2::{FsError, FsResult};

/// One open listing.
pub(crate) struct Listing {
    /// The directory listed, to `stat` entries whose type the OS did not give.
    dir: Arc<File>,
    entries: Dir,
}

impl Listing {
    pub(crate) fn open(dir: Arc<File>) -> FsResult<Self> {
        // A fresh open file description: its offset is this listing's own.
        let entries = Dir::read_from(&*dir).map_err(|errno| FsError::from(std::io::Error::from(errno)))?;
        Ok(Self { dir, entries })
    }

    /// The directory listed, which the listing keeps open.
    pub(crate) fn dir(&self) -> &Arc<File> {
        &self.dir
    }

    /// The next entry, skipping `.` and `..`; `None` at the end.
    pub(crate) fn next(&mut self) -> FsResult<Option<DirectoryEntry>> {
        loop {
            let Some(entry) = self.entries.read() else { return Ok(None) };
            let entry = entry.map_err(|errno| FsError::from(std::io::Error::from(errno)))?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => rustix::fs::statat(&*self.dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_or(FileType::Unknown, |stat| FileType::from_raw_mode(stat.st_mode)),
                kind => kind,
            };
            let name = name.to_str().map_err(|_| ErrorCode::IllegalByteSequence)?.to_owned();
            return Ok(Some(DirectoryEntry { type_: descriptor_type(kind), name }));
        }
    }
}

fn descriptor_type(kind: FileType) -> DescriptorType {
    match kind {
        FileType::RegularFile => DescriptorType::RegularFile,
        FileType::Directory => DescriptorType::Directory,
        FileType::Symlink => DescriptorType::SymbolicLink,
        FileType::Fifo => DescriptorType::Fifo,
        FileType::Socket => DescriptorType::Socket,
        FileType::CharacterDevice => DescriptorType::CharacterDevice,
        FileType::BlockDevice => DescriptorType::BlockDevice,
        _ => DescriptorType::Unknown,
    }
}
