//! Applies layer tars, in order, to a root filesystem. Layers are hostile
//! input; the invariants:
//!
//! - Nothing is written outside the root: every parent directory is reached
//!   from the root's descriptor without following a symlink ([`fsat`]); an
//!   entry whose parent is a symlink or a non-directory is refused. `..` is
//!   refused and a leading `/` means the root.
//! - Symlinks are stored as they are and never followed while applying.
//! - A hard link's target must be a non-directory already in the root,
//!   reached the same way; `linkat` without `AT_SYMLINK_FOLLOW` links a
//!   symlink itself, never what it points at.
//! - Character and block devices are skipped (the sandbox runtime provides
//!   `/dev`); FIFOs are made.
//! - Numeric owners and permission bits (setuid, setgid and sticky
//!   included) are kept as the layer says; nothing else gains them. Owners
//!   are only set when running as root. Extended attributes (file
//!   capabilities among them) are dropped.
//! - File data and entry counts are bounded ([`Limits`]), and so is what
//!   the tar reader holds in memory ([`budget`]).
//!
//! Whiteouts follow [`whiteout`]: `.wh.NAME` removes `NAME` when it is met;
//! opaque markers are applied when the layer ends, removing every child of
//! the directory that this layer did not write.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FchmodatFlags, Mode, SFlag, fchmod, fchmodat, mkdirat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, mkfifoat, symlinkat};
use tar::EntryType;

use super::budget::{self, Budget};
use super::error::OciError;
use super::fsat::{self, WalkError};
use super::whiteout::{self, MAX_PATH, Name};

/// Most bytes of entry paths one layer may name (they are remembered for
/// opaque directories).
const MAX_PATH_BYTES: usize = 256 << 20;

/// Bounds on what an import may write.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Total bytes of file data over all layers.
    pub max_bytes: u64,
    /// Total tar entries over all layers.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 30,
            max_entries: 2_000_000,
        }
    }
}

/// What one layer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub bytes: u64,
    pub whiteouts: u64,
    pub skipped_devices: u64,
}

/// Applies layers to one root filesystem.
pub struct Applier {
    root: OwnedFd,
    limits: Limits,
    bytes: u64,
    entries: u64,
    set_owner: bool,
}

impl Applier {
    /// `rootfs` must be an existing directory (not a symlink).
    pub fn new(rootfs: &Path, limits: Limits) -> Result<Self, OciError> {
        let root =
            fsat::open_root(rootfs).map_err(OciError::io(format!("open {}", rootfs.display())))?;
        Ok(Self {
            root,
            limits,
            bytes: 0,
            entries: 0,
            set_owner: nix::unistd::geteuid().is_root(),
        })
    }

    /// Applies the layer tar `layer` (already decompressed); `n` numbers it
    /// in errors.
    pub fn apply(&mut self, n: usize, layer: impl Read) -> Result<LayerStats, OciError> {
        let (layer, budget) = Budget::new(layer);
        let mut archive = tar::Archive::new(layer);
        let mut stats = LayerStats::default();
        // Paths this layer wrote, for opaque directories; their bytes are
        // bounded by MAX_PATH_BYTES.
        let mut written: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut path_bytes = 0usize;
        let mut opaque: Vec<Vec<u8>> = Vec::new();
        let read_err = |e| OciError::io(format!("read layer {n}"))(e);
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            budget.set(budget::for_entry(entry.size()));
            self.entries += 1;
            stats.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(OciError::Limit(format!(
                    "more than {} entries",
                    self.limits.max_entries
                )));
            }
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let refuse = |reason: String| OciError::Unsafe {
                layer: n,
                entry: shown.clone(),
                reason,
            };
            let comps = whiteout::components(&raw).map_err(refuse)?;
            let Some((name, parent)) = comps.split_last() else {
                continue; // the root itself
            };
            match whiteout::classify(name).map_err(refuse)? {
                Name::Meta => continue,
                Name::Opaque => {
                    opaque.push(parent.join(&b'/'));
                    continue;
                }
                Name::Whiteout(target) => {
                    stats.whiteouts += 1;
                    if let Some(dir) = self.parent(parent, false).map_err(refuse)? {
                        fsat::remove(&dir, OsStr::from_bytes(target))
                            .map_err(|e| refuse(format!("could not remove its target: {e}")))?;
                    }
                    continue;
                }
                Name::Plain => {}
            }
            let path = comps.join(&b'/');
            path_bytes += path.len();
            if path_bytes > MAX_PATH_BYTES {
                return Err(OciError::Limit(format!(
                    "more than {MAX_PATH_BYTES} bytes of paths in one layer"
                )));
            }
            written.insert(path);
            let dir = self
                .parent(parent, true)
                .map_err(refuse)?
                .ok_or_else(|| refuse("its parent directory is missing".into()))?;
            let name = OsStr::from_bytes(name);
            let h = entry.header();
            let mode = Mode::from_bits_truncate(h.mode().map_err(read_err)? & 0o7777);
            let owner = (id(h.uid(), &refuse)?, id(h.gid(), &refuse)?);
            let mtime = h.mtime().unwrap_or(0);
            let kind = h.entry_type();
            match kind {
                EntryType::Directory => self.dir(&dir, name, mode, owner),
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    let left = self.limits.max_bytes.saturating_sub(self.bytes);
                    let too_big = || {
                        OciError::Limit(format!(
                            "more than {} bytes of file data",
                            self.limits.max_bytes
                        ))
                    };
                    if entry.size() > left {
                        return Err(too_big());
                    }
                    // The header's size is checked; the bytes written are
                    // counted too, whatever the header said.
                    let mut data = (&mut entry).take(left.saturating_add(1));
                    let written = self
                        .file(&dir, name, &mut data, mode, owner, mtime)
                        .map_err(OciError::io(format!("write {shown} of layer {n}")))?;
                    if written > left {
                        return Err(too_big());
                    }
                    self.bytes += written;
                    stats.bytes += written;
                    Ok(())
                }
                EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .filter(|t| !t.is_empty() && t.len() <= MAX_PATH && !t.contains(&0))
                        .ok_or_else(|| refuse("its symlink target is empty or too long".into()))?;
                    self.symlink(&dir, name, &target, owner)
                }
                EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .ok_or_else(|| refuse("its hard link has no target".into()))?;
                    self.hard_link(&dir, name, &target).map_err(refuse)?;
                    Ok(())
                }
                EntryType::Fifo => self.fifo(&dir, name, mode, owner),
                EntryType::Char | EntryType::Block => {
                    stats.skipped_devices += 1;
                    Ok(())
                }
                // Global PAX headers and the like carry nothing to write.
                _ => Ok(()),
            }
            .map_err(OciError::io(format!("write {shown} of layer {n}")))?;
        }
        // Whatever follows the end of the archive (padding) is read here,
        // within the budget, so nothing unbounded is left for the caller.
        budget.set(budget::MAX_HEADERS);
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_err)?;
        for dir in opaque {
            let comps: Vec<&[u8]> = dir
                .split(|b| *b == b'/')
                .filter(|c| !c.is_empty())
                .collect();
            let Ok(Some(fd)) = self.parent(&comps, false) else {
                continue;
            };
            let prefix = if dir.is_empty() {
                Vec::new()
            } else {
                [&dir[..], b"/"].concat()
            };
            fsat::empty(&fd, |child| {
                wrote_below(&written, &[&prefix[..], child].concat())
            })
            .map_err(OciError::io(format!("empty opaque directory of layer {n}")))?;
        }
        Ok(stats)
    }

    fn parent(&self, comps: &[&[u8]], create: bool) -> Result<Option<OwnedFd>, String> {
        fsat::walk(&self.root, comps, create).map_err(|e| match e {
            WalkError::Symlink(p) => format!("its parent {p} is a symlink"),
            WalkError::NotDir(p) => format!("its parent {p} is not a directory"),
            WalkError::Io(e) => format!("could not open its parent: {e}"),
        })
    }

    fn dir(&self, parent: &OwnedFd, name: &OsStr, mode: Mode, owner: (u32, u32)) -> io::Result<()> {
        match fsat::kind(parent, name)? {
            Some(k) if k == SFlag::S_IFDIR => {}
            Some(_) => {
                fsat::remove(parent, name)?;
                mkdirat(parent, name, Mode::from_bits_truncate(0o700))?;
            }
            None => mkdirat(parent, name, Mode::from_bits_truncate(0o700))?,
        }
        let fd = openat(
            parent,
            name,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )?;
        self.own(&fd, owner)?;
        Ok(fchmod(&fd, mode)?)
    }

    fn file(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        data: &mut impl Read,
        mode: Mode,
        owner: (u32, u32),
        mtime: u64,
    ) -> io::Result<u64> {
        fsat::remove(parent, name)?;
        let fd = openat(
            parent,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )?;
        let mut file = File::from(fd);
        let written = io::copy(data, &mut file)?;
        // chown clears setuid and setgid: the mode goes last.
        self.own(&file, owner)?;
        fchmod(&file, mode)?;
        let t = TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
        nix::sys::stat::futimens(&file, &t, &t)?;
        Ok(written)
    }

    fn symlink(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        target: &[u8],
        owner: (u32, u32),
    ) -> io::Result<()> {
        fsat::remove(parent, name)?;
        symlinkat(OsStr::from_bytes(target), parent, name)?;
        if self.set_owner {
            fchownat(
                parent,
                name,
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        Ok(())
    }

    /// Links `name` to `target`, a path from the root.
    fn hard_link(&self, parent: &OwnedFd, name: &OsStr, target: &[u8]) -> Result<(), String> {
        let comps =
            whiteout::components(target).map_err(|r| format!("its hard link target: {r}"))?;
        let Some((tname, tparent)) = comps.split_last() else {
            return Err("its hard link points at the root".into());
        };
        let tdir = self
            .parent(tparent, false)
            .map_err(|r| format!("its hard link target: {r}"))?
            .ok_or("its hard link target does not exist")?;
        let tname = OsStr::from_bytes(tname);
        match fsat::kind(&tdir, tname).map_err(|e| e.to_string())? {
            None => return Err("its hard link target does not exist".into()),
            Some(k) if k == SFlag::S_IFDIR => {
                return Err("its hard link target is a directory".into());
            }
            Some(_) => {}
        }
        let same = |a: &OwnedFd, b: &OwnedFd| {
            let (Ok(a), Ok(b)) = (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) else {
                return false;
            };
            (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        };
        if tname == name && same(&tdir, parent) {
            return Ok(());
        }
        fsat::remove(parent, name).map_err(|e| e.to_string())?;
        linkat(&tdir, tname, parent, name, AtFlags::empty())
            .map_err(|e| format!("could not link: {e}"))
    }

    fn fifo(
        &self,
        parent: &OwnedFd,
        name: &OsStr,
        mode: Mode,
        owner: (u32, u32),
    ) -> io::Result<()> {
        fsat::remove(parent, name)?;
        mkfifoat(parent, name, Mode::from_bits_truncate(0o600))?;
        if self.set_owner {
            fchownat(
                parent,
                name,
                Some(Uid::from_raw(owner.0)),
                Some(Gid::from_raw(owner.1)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        // Just made by us in a directory only we write: not a symlink.
        Ok(fchmodat(parent, name, mode, FchmodatFlags::FollowSymlink)?)
    }

    fn own(&self, fd: &impl std::os::fd::AsFd, (uid, gid): (u32, u32)) -> io::Result<()> {
        if self.set_owner {
            fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
        Ok(())
    }
}

/// Whether this layer wrote `path` or anything below it.
fn wrote_below(written: &BTreeSet<Vec<u8>>, path: &[u8]) -> bool {
    let lo = [path, b"/"].concat();
    let hi = [path, b"0"].concat(); // '0' follows '/'
    written.contains(path) || written.range(lo..hi).next().is_some()
}

fn id(v: io::Result<u64>, refuse: &impl Fn(String) -> OciError) -> Result<u32, OciError> {
    v.ok()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| refuse("its owner is not a 32-bit id".into()))
}
