//! The difference of two walks of one tree, written as a layer tar.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;
use std::os::fd::OwnedFd;
use tar::{EntryType, Header};

use super::LayerError;
use super::tree::{Entry, Tree, name_of, open_dir};

/// What changed between two walks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New or changed entries, parents first.
    pub write: Vec<PathBuf>,
    /// Entries gone whose parent directory remains (each a whiteout).
    pub delete: Vec<PathBuf>,
    /// Bytes of file data among `write`.
    pub bytes: u64,
}

impl Changes {
    /// `after` compared with `before`.
    pub fn between(before: &Tree, after: &Tree) -> Self {
        let mut changes = Self::default();
        for (path, entry) in &after.entries {
            if before.entries.get(path) != Some(entry) {
                if is_file(entry) {
                    changes.bytes += entry.size;
                }
                changes.write.push(path.clone());
            }
        }
        for path in before.entries.keys() {
            if after.entries.contains_key(path) {
                continue;
            }
            let parent_stays = match path.parent() {
                Some(p) if p.as_os_str().is_empty() => true,
                Some(p) => after.entries.get(p).is_some_and(Entry::is_dir),
                None => true,
            };
            if parent_stays {
                changes.delete.push(path.clone());
            }
        }
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.delete.is_empty()
    }
}

fn is_file(e: &Entry) -> bool {
    e.mode & libc::S_IFMT == libc::S_IFREG
}

/// Opens the regular file `path` below `root` without following a
/// symlink on the way or at its end, and refuses anything else (a FIFO
/// swapped in would block the read).
fn open_file(root: &OwnedFd, path: &Path) -> io::Result<File> {
    let dir = open_dir(root, path.parent().unwrap_or(Path::new("")))?;
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let file = File::from(openat(&dir, name_of(path), flags, Mode::empty())?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("it is no longer a regular file"));
    }
    Ok(file)
}

/// Writes `changes` of the tree at `root` (walked as `after`) to `out` as
/// a layer tar. Sockets and devices are left out. Files are read from the
/// root's descriptor without following symlinks (see `tree`). Fails with
/// [`LayerError::NotCacheable`] when a name would read as a whiteout.
pub fn write_layer(
    root: &Path,
    after: &Tree,
    changes: &Changes,
    out: impl Write,
) -> Result<(), LayerError> {
    let root_fd = crate::oci::fsat::open_root(root)
        .map_err(LayerError::io(format!("open {}", root.display())))?;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let fail = |p: &Path| LayerError::io(format!("write {} to a layer", p.display()));
    // First path written of each multiply linked inode.
    let mut linked: HashMap<u64, PathBuf> = HashMap::new();
    for path in &changes.write {
        let Some(entry) = after.entries.get(path) else {
            continue;
        };
        if path
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            return Err(LayerError::NotCacheable(format!(
                "{} reads as a whiteout",
                path.display()
            )));
        }
        let mut h = Header::new_gnu();
        h.set_mode(entry.mode & 0o7777);
        h.set_uid(entry.uid.into());
        h.set_gid(entry.gid.into());
        h.set_mtime(u64::try_from(entry.mtime.0).unwrap_or(0));
        h.set_size(0);
        match entry.mode & libc::S_IFMT {
            libc::S_IFDIR => {
                h.set_entry_type(EntryType::Directory);
                tar.append_data(&mut h, path, io::empty())
                    .map_err(fail(path))?;
            }
            libc::S_IFLNK => {
                h.set_entry_type(EntryType::Symlink);
                let target = entry.target.clone().unwrap_or_default();
                tar.append_link(&mut h, path, target).map_err(fail(path))?;
            }
            libc::S_IFIFO => {
                h.set_entry_type(EntryType::Fifo);
                tar.append_data(&mut h, path, io::empty())
                    .map_err(fail(path))?;
            }
            libc::S_IFREG => {
                if entry.nlink > 1 {
                    if let Some(first) = linked.get(&entry.ino) {
                        h.set_entry_type(EntryType::Link);
                        tar.append_link(&mut h, path, first).map_err(fail(path))?;
                        continue;
                    }
                    linked.insert(entry.ino, path.clone());
                }
                let file = open_file(&root_fd, path).map_err(fail(path))?;
                // The size read now: a file that changed since the walk is
                // still written consistently.
                let len = file.metadata().map_err(fail(path))?.len();
                h.set_entry_type(EntryType::Regular);
                h.set_size(len);
                tar.append_data(&mut h, path, io::Read::take(file, len))
                    .map_err(fail(path))?;
            }
            _ => {} // sockets and devices
        }
    }
    for path in &changes.delete {
        let name = path.file_name().unwrap_or_default();
        let mut wh = std::ffi::OsString::from(".wh.");
        wh.push(name);
        let marker = path.with_file_name(wh);
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o600);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, &marker, io::empty())
            .map_err(fail(path))?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(LayerError::io("finish a layer"))?;
    Ok(())
}
