//! The content API's file operations, blocking, on fds only.
//!
//! Every operation starts from an fd of the volume's directory and
//! resolves names with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`: a symlink anywhere on the way (planted by a
//! sandbox that mounts the volume, at any moment) ends the resolution with
//! `ELOOP`, and nothing resolves outside the volume. The last name of a
//! path is then acted on relative to its parent's fd with the `*at` calls
//! that never follow it (`fstatat(AT_SYMLINK_NOFOLLOW)`, `unlinkat`,
//! `mkdirat`, `renameat2`): a symlink there is itself the object (listed,
//! stat'd, removed or replaced), never its target. Owner and mode are set
//! on an fd of the object made, not by name.
//!
//! A written file goes to a fresh temporary name in its directory
//! (`O_CREAT | O_EXCL`), is synced, then renamed over its name (with
//! `RENAME_NOREPLACE` unless replacing is asked for), and the directory
//! synced: a reader sees the old file or the whole new one. Until the
//! rename, [`Upload`] removes the temporary name when dropped, so a failed,
//! refused or abandoned upload leaves nothing behind.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, RenameFlags, ResolveFlag, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use super::ContentError;
use super::path::VolumePath;

/// Most entries one listing returns.
pub const MAX_ENTRIES: usize = 100_000;
/// Deepest directory tree a remove descends.
pub const MAX_REMOVE_DEPTH: usize = 256;

fn resolve() -> ResolveFlag {
    ResolveFlag::RESOLVE_BENEATH
        | ResolveFlag::RESOLVE_NO_SYMLINKS
        | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    Unknown,
}

impl Kind {
    fn of(st: &FileStat) -> Self {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => Self::File,
            SFlag::S_IFDIR => Self::Directory,
            SFlag::S_IFLNK => Self::Symlink,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Directory => "directory",
            Self::Symlink => "symlink",
            Self::Unknown => "unknown",
        }
    }
}

/// One file, directory or link, as stat'd.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// `/` and its names inside the volume.
    pub path: String,
    pub size: u64,
    /// The permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Unix seconds and nanoseconds.
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    /// A symlink's target, as written.
    pub target: Option<String>,
}

impl Entry {
    fn new(path: &VolumePath, st: &FileStat) -> Self {
        Self {
            name: path.name().unwrap_or("").to_owned(),
            kind: Kind::of(st),
            path: path.to_string(),
            size: u64::try_from(st.st_size).unwrap_or(0),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            target: None,
        }
    }
}

/// Owner and permission bits of what a write or make creates.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// Whether the caller chose the owner: a default one that a daemon
    /// without root cannot give is left as the daemon's.
    pub explicit: bool,
}

/// The error of `op` on `path` for `errno`.
fn fail(op: &'static str, path: &VolumePath, errno: Errno) -> ContentError {
    let p = path.to_string();
    match errno {
        Errno::ENOENT => ContentError::NotFound(p),
        Errno::ELOOP | Errno::EXDEV => ContentError::Symlink(p),
        Errno::ENOTDIR => ContentError::NotADirectory(p),
        Errno::EISDIR => ContentError::IsADirectory(p),
        Errno::EEXIST | Errno::ENOTEMPTY => ContentError::Exists(p),
        Errno::EACCES | Errno::EPERM => ContentError::Denied(p),
        Errno::ENOSPC | Errno::EDQUOT => ContentError::NoSpace,
        Errno::ENAMETOOLONG => ContentError::BadPath("is too long".into()),
        other => ContentError::Io {
            op,
            path: p,
            source: std::io::Error::from(other),
        },
    }
}

/// `rel` opened beneath `dir`, no link followed anywhere on the way.
fn open_beneath(dir: impl AsFd, rel: &CStr, flags: OFlag, mode: u32) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .mode(Mode::from_bits_truncate(mode))
        .resolve(resolve());
    openat2(dir, rel, how)
}

/// The directory `rel` beneath `dir`. A link as the last name is `ELOOP`
/// as anywhere else (`O_DIRECTORY` alone would call it `ENOTDIR`).
fn open_dir(dir: impl AsFd, rel: &CStr) -> Result<OwnedFd, Errno> {
    let dir = dir.as_fd();
    match open_beneath(dir, rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0) {
        // `O_PATH | O_NOFOLLOW` opens a last-name link itself.
        Err(Errno::ENOTDIR) => match open_beneath(dir, rel, OFlag::O_PATH, 0) {
            Ok(fd) if fstat(&fd).is_ok_and(|st| Kind::of(&st) == Kind::Symlink) => {
                Err(Errno::ELOOP)
            }
            Err(Errno::ELOOP) => Err(Errno::ELOOP),
            _ => Err(Errno::ENOTDIR),
        },
        other => other,
    }
}

/// The volume's directory, opened.
pub fn open_root(dir: &Path) -> Result<OwnedFd, ContentError> {
    nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("opening the volume", &VolumePath::root(), e))
}

/// The parent directory of `path` (not the root) and its last name.
fn parent_of(root: &OwnedFd, path: &VolumePath) -> Result<(OwnedFd, CString), ContentError> {
    let (parent, name) = path.split().ok_or(ContentError::IsRoot)?;
    let fd = open_dir(root, &parent).map_err(|e| fail("opening the parent", path, e))?;
    Ok((fd, name))
}

/// What is at `path`; a symlink is described, not followed.
pub fn stat(root: &OwnedFd, path: &VolumePath) -> Result<Entry, ContentError> {
    if path.is_root() {
        let st = fstat(root).map_err(|e| fail("stat", path, e))?;
        return Ok(Entry::new(path, &st));
    }
    let (parent, name) = parent_of(root, path)?;
    stat_at(&parent, &name, path)
}

fn stat_at(dir: &OwnedFd, name: &CStr, path: &VolumePath) -> Result<Entry, ContentError> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| fail("stat", path, e))?;
    let mut entry = Entry::new(path, &st);
    if entry.kind == Kind::Symlink {
        entry.target = readlinkat(dir, name)
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
    }
    Ok(entry)
}

/// The entries below the directory `path`, `depth` levels deep (1: its
/// own entries), sorted by path; links are listed, never entered.
pub fn list(root: &OwnedFd, path: &VolumePath, depth: u32) -> Result<Vec<Entry>, ContentError> {
    let dir = open_dir(root, &path.relative()).map_err(|e| fail("listing", path, e))?;
    let mut out = Vec::new();
    walk(dir, path, depth, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(
    dir: OwnedFd,
    path: &VolumePath,
    depth: u32,
    out: &mut Vec<Entry>,
) -> Result<(), ContentError> {
    let names = read_names(dir.try_clone().map_err(|e| ContentError::Io {
        op: "listing",
        path: path.to_string(),
        source: e,
    })?)
    .map_err(|e| fail("listing", path, e))?;
    for name in names {
        let Ok(text) = name.to_str() else {
            continue; // not UTF-8: the API's paths are strings
        };
        let child = path.child(text);
        let entry = match stat_at(&dir, &name, &child) {
            Ok(e) => e,
            Err(ContentError::NotFound(_)) => continue, // removed meanwhile
            Err(e) => return Err(e),
        };
        let is_dir = entry.kind == Kind::Directory;
        out.push(entry);
        if out.len() > MAX_ENTRIES {
            return Err(ContentError::TooMany(MAX_ENTRIES));
        }
        if is_dir && depth > 1 {
            match open_dir(&dir, &name) {
                Ok(sub) => walk(sub, &child, depth - 1, out)?,
                // Replaced by a link or removed since it was stat'd.
                Err(Errno::ELOOP | Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => return Err(fail("listing", &child, e)),
            }
        }
    }
    Ok(())
}

/// The names in a directory, without `.` and `..`.
fn read_names(fd: OwnedFd) -> Result<Vec<CString>, Errno> {
    let mut dir = Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let name = entry?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

/// The regular file at `path`, open for reading, and its size.
pub fn open_file(root: &OwnedFd, path: &VolumePath) -> Result<(File, u64), ContentError> {
    // Non-blocking, so a FIFO planted there cannot hold the open.
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd =
        open_beneath(root, &path.relative(), flags, 0).map_err(|e| fail("reading", path, e))?;
    let st = fstat(&fd).map_err(|e| fail("reading", path, e))?;
    match Kind::of(&st) {
        Kind::File => Ok((File::from(fd), u64::try_from(st.st_size).unwrap_or(0))),
        Kind::Directory => Err(ContentError::IsADirectory(path.to_string())),
        _ => Err(ContentError::NotFileOrDir(path.to_string())),
    }
}

/// A file being written under a temporary name in its directory.
pub struct Upload {
    parent: OwnedFd,
    temp: CString,
    name: CString,
    path: VolumePath,
    committed: bool,
}

/// Starts writing `path`: its parent must exist; the data goes to a new
/// temporary file returned with the [`Upload`].
pub fn begin_upload(root: &OwnedFd, path: &VolumePath) -> Result<(Upload, File), ContentError> {
    let (parent, name) = parent_of(root, path)?;
    let temp =
        CString::new(format!(".warren-upload-{:016x}", rand::random::<u64>())).unwrap_or_default();
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
    let fd = open_beneath(&parent, &temp, flags, 0o600).map_err(|e| fail("writing", path, e))?;
    let upload = Upload {
        parent,
        temp,
        name,
        path: path.clone(),
        committed: false,
    };
    Ok((upload, File::from(fd)))
}

impl Upload {
    /// Syncs `file`, gives it `owner`, and renames it to its name:
    /// replacing what is there when `replace`, else 409 when taken.
    pub fn commit(
        mut self,
        file: File,
        owner: Owner,
        replace: bool,
    ) -> Result<Entry, ContentError> {
        let path = self.path.clone();
        set_owner(&file, owner, &path)?;
        file.sync_all().map_err(|e| ContentError::Io {
            op: "syncing",
            path: path.to_string(),
            source: e,
        })?;
        let st = fstat(&file).map_err(|e| fail("writing", &path, e))?;
        let flags = if replace {
            RenameFlags::empty()
        } else {
            RenameFlags::RENAME_NOREPLACE
        };
        nix::fcntl::renameat2(&self.parent, &*self.temp, &self.parent, &*self.name, flags)
            .map_err(|e| fail("renaming", &path, e))?;
        self.committed = true;
        // The rename is durable once the directory is.
        nix::unistd::fsync(&self.parent).map_err(|e| fail("syncing", &path, e))?;
        Ok(Entry::new(&path, &st))
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = unlinkat(&self.parent, &*self.temp, UnlinkatFlags::NoRemoveDir);
        }
    }
}

/// Gives the object open as `fd` its owner and mode.
fn set_owner(fd: impl AsFd, owner: Owner, path: &VolumePath) -> Result<(), ContentError> {
    let fd = fd.as_fd();
    match fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    ) {
        // Only root gives files away; a daemon that is not root keeps a
        // default owner for itself.
        Err(Errno::EPERM) if !owner.explicit => {}
        other => other.map_err(|e| fail("chown", path, e))?,
    }
    fchmod(fd, Mode::from_bits_truncate(owner.mode)).map_err(|e| fail("chmod", path, e))
}

/// Makes the directory `path` with `owner`; with `parents`, its missing
/// parents too (given `parent_owner`) and an existing directory is no
/// error.
pub fn make_dir(
    root: &OwnedFd,
    path: &VolumePath,
    owner: Owner,
    parent_owner: Owner,
    parents: bool,
) -> Result<Entry, ContentError> {
    if path.is_root() {
        return if parents {
            stat(root, path)
        } else {
            Err(ContentError::Exists(path.to_string()))
        };
    }
    let mut dir = root.try_clone().map_err(|e| ContentError::Io {
        op: "mkdir",
        path: path.to_string(),
        source: e,
    })?;
    let steps: Vec<VolumePath> = path.ancestors().chain([path.clone()]).collect();
    let last = steps.len() - 1;
    for (i, step) in steps.iter().enumerate() {
        let name = step.split().map(|(_, n)| n).ok_or(ContentError::IsRoot)?;
        let made = if i < last && !parents {
            false
        } else {
            match mkdirat(&dir, &*name, Mode::from_bits_truncate(0o700)) {
                Ok(()) => true,
                Err(Errno::EEXIST) if parents => false,
                Err(e) => return Err(fail("mkdir", step, e)),
            }
        };
        let next = open_dir(&dir, &name).map_err(|e| match fail("mkdir", step, e) {
            // An existing name that is not a directory.
            ContentError::NotADirectory(p) => ContentError::Exists(p),
            other => other,
        })?;
        if made {
            set_owner(&next, if i == last { owner } else { parent_owner }, step)?;
        }
        dir = next;
    }
    let st = fstat(&dir).map_err(|e| fail("mkdir", path, e))?;
    Ok(Entry::new(path, &st))
}

/// Removes `path`: a file or link itself, a directory with all below it.
pub fn remove(root: &OwnedFd, path: &VolumePath) -> Result<(), ContentError> {
    let (parent, name) = parent_of(root, path)?;
    let st = fstatat(&parent, &*name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| fail("removing", path, e))?;
    if Kind::of(&st) == Kind::Directory {
        remove_tree(&parent, &name, path, 0)
    } else {
        unlinkat(&parent, &*name, UnlinkatFlags::NoRemoveDir).map_err(|e| fail("removing", path, e))
    }
}

fn remove_tree(
    parent: &OwnedFd,
    name: &CStr,
    path: &VolumePath,
    depth: usize,
) -> Result<(), ContentError> {
    if depth >= MAX_REMOVE_DEPTH {
        return Err(ContentError::TooDeep(MAX_REMOVE_DEPTH));
    }
    let dir = open_dir(parent, name).map_err(|e| fail("removing", path, e))?;
    let names = read_names(dir.try_clone().map_err(|e| ContentError::Io {
        op: "removing",
        path: path.to_string(),
        source: e,
    })?)
    .map_err(|e| fail("removing", path, e))?;
    for child in names {
        let child_path = path.child(&child.to_string_lossy());
        match unlinkat(&dir, &*child, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(Errno::EISDIR) => remove_tree(&dir, &child, &child_path, depth + 1)?,
            Err(e) => return Err(fail("removing", &child_path, e)),
        }
    }
    match unlinkat(parent, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(fail("removing", path, e)),
    }
}

/// Changes the owner and mode of the file or directory at `path`.
pub fn update(
    root: &OwnedFd,
    path: &VolumePath,
    uid: Option<u32>,
    gid: Option<u32>,
    mode: Option<u32>,
) -> Result<Entry, ContentError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd =
        open_beneath(root, &path.relative(), flags, 0).map_err(|e| fail("updating", path, e))?;
    let st = fstat(&fd).map_err(|e| fail("updating", path, e))?;
    if !matches!(Kind::of(&st), Kind::File | Kind::Directory) {
        return Err(ContentError::NotFileOrDir(path.to_string()));
    }
    if uid.is_some() || gid.is_some() {
        fchown(&fd, uid.map(Uid::from_raw), gid.map(Gid::from_raw))
            .map_err(|e| fail("chown", path, e))?;
    }
    if let Some(mode) = mode {
        fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(|e| fail("chmod", path, e))?;
    }
    let st = fstat(&fd).map_err(|e| fail("updating", path, e))?;
    Ok(Entry::new(path, &st))
}
