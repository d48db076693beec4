//! The disk limit of a sandbox: its writable layer lives on a filesystem of
//! exactly `disk_mb`.
//!
//! runsc keeps the root overlay's upper layer (and `/tmp`'s, see `bundle`)
//! in one filestore file inside the `--overlay2=…:dir=` directory and has no
//! size option for it. So that directory is the mount point of an ext4
//! filesystem in a sparse image file of the sandbox's size:
//!
//! ```text
//! <state_dir>/disks/<mb>.img         formatted once per size, never mounted
//! <state_dir>/sandboxes/<id>/
//!     disk.img                       sparse copy of the one of its size
//!     overlay/                       its mount point (loop device)
//! ```
//!
//! The sentry allocates filestore space with `fallocate`: a write past the
//! limit fails with `ENOSPC` inside the sandbox, and the sandbox, the host
//! and other sandboxes go on.
//!
//! - attach: started by `create` in the background ([`Disks::start_attach`])
//!   and awaited by the launch just before runsc ([`Disks::ready`]), so it
//!   overlaps the network setup and addressing; `destroy` and the removal
//!   of an old instance wait for it first ([`Disks::settle`]). It copies
//!   the formatted image of the size (only its data extents:
//!   ~0.4 MiB for 256 MiB, ~4 MiB for 10 GiB), attach it to a loop device
//!   with autoclear (`loop_device`: it goes with the last unmount) and
//!   mount it. Mount options: `discard` (what the sandbox deletes is
//!   punched out of the image, so the host gets it back), `noinit_itable`
//!   (no background zeroing of inode tables that would fill the sparse
//!   image), `nosuid,nodev,noexec`. No process is started.
//! - release: unmount, detach any loop device still backed by the image (one
//!   left by a crash between loop setup and mount, or one still held), and
//!   remove the image. Each step skips what is already gone, so release is
//!   idempotent and cleans up after a crashed daemon. runsc's private mount
//!   namespace holds a copy of the mount while the sandbox runs: the loop
//!   device is freed when that namespace goes too.
//!
//! Layout: a checkpoint records the mounts it was taken with and restores
//! only into the same ones. An instance's bundle directory, and every
//! checkpoint image taken of it, carry a marker file when its `/tmp` is on
//! the disk ([`Layout::mark`]). One without it (an instance started by an
//! older Warren, or restored from its image) is restored as it was taken:
//! overlay on the root only, `/tmp` in memory; its root filesystem writes
//! are still limited.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::mount::MsFlags;
use tokio::process::Command;
use tokio::task::JoinHandle;
use warren_core::SandboxId;

use super::loop_device;
use crate::RuntimeError;

const MIB: u64 = 1024 * 1024;
/// The marker file of bundles and checkpoint images whose `/tmp` is on the
/// disk.
const TMP_ON_DISK_MARKER: &str = "warren-tmp-on-disk";
/// The marker file of bundles whose root is written directly.
const DIRECT_MARKER: &str = "warren-direct-root";
/// ext4's own mount options of every sandbox's disk (the generic ones are
/// `nosuid,nodev,noexec`).
const EXT4_OPTIONS: &str = "discard,noinit_itable";

/// The formatted empty images, one per size, under `<state_dir>/disks`,
/// and the attaches under way.
#[derive(Debug)]
pub(super) struct Disks {
    dir: PathBuf,
    pending: std::sync::Mutex<HashMap<SandboxId, JoinHandle<Result<(), RuntimeError>>>>,
}

/// Which mounts a sandbox's instance has (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// `/tmp` bind-mounted and overlaid like the root, on the disk.
    TmpOnDisk,
    /// Only the root overlaid; runsc's own `/tmp` (memory).
    RootOnly,
    /// No overlay: writes go to the root directory itself (`RootFs::WritableDir`).
    Direct,
}

impl Layout {
    /// The layout recorded in `dir` (a bundle or a checkpoint image).
    pub fn of(dir: &Path) -> Self {
        if dir.join(DIRECT_MARKER).exists() {
            Self::Direct
        } else if dir.join(TMP_ON_DISK_MARKER).exists() {
            Self::TmpOnDisk
        } else {
            Self::RootOnly
        }
    }

    /// Records this layout in `dir` (a bundle or a checkpoint image).
    pub fn mark(self, dir: &Path) -> Result<(), RuntimeError> {
        let marker = match self {
            Self::RootOnly => return Ok(()),
            Self::TmpOnDisk => TMP_ON_DISK_MARKER,
            Self::Direct => DIRECT_MARKER,
        };
        let path = dir.join(marker);
        std::fs::write(&path, b"").map_err(|e| io_err(&path, "writing", e))
    }

    /// runsc's `--overlay2` mount selector.
    pub fn overlay_scope(self) -> &'static str {
        match self {
            Self::TmpOnDisk => "all",
            Self::RootOnly => "root",
            Self::Direct => "none",
        }
    }
}

/// The image file of the sandbox whose directory is `sandbox_dir`.
pub(super) fn image_path(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("disk.img")
}

impl Disks {
    /// Removes images a crashed runtime left half-formatted.
    pub fn new(dir: PathBuf) -> Self {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Self {
            dir,
            pending: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<SandboxId, JoinHandle<Result<(), RuntimeError>>>> {
        // The map stays consistent even if a holder panicked.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts attaching sandbox `id`'s disk (see [`Self::attach`]) in the
    /// background.
    pub fn start_attach(&self, id: &SandboxId, image: PathBuf, mount_point: PathBuf, disk_mb: u32) {
        let dir = self.dir.clone();
        let task =
            tokio::spawn(async move { Self::attach(&dir, &image, &mount_point, disk_mb).await });
        if let Some(old) = self.lock_pending().insert(id.clone(), task) {
            // Only a create over a sandbox not destroyed gets here.
            old.abort();
        }
    }

    /// Waits for sandbox `id`'s attach, if one is under way: its result.
    pub async fn ready(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let task = self.lock_pending().remove(id);
        match task {
            None => Ok(()),
            Some(task) => task.await.map_err(|e| RuntimeError::Command {
                op: format!("attaching the disk of sandbox {id}"),
                detail: e.to_string(),
            })?,
        }
    }

    /// Waits for sandbox `id`'s attach, if one is under way, whatever its
    /// result: what it left is then there to release.
    pub async fn settle(&self, id: &SandboxId) {
        if let Err(e) = self.ready(id).await {
            tracing::debug!(sandbox = %id, error = %e, "a disk attach failed before its release");
        }
    }

    /// Puts a fresh filesystem of `disk_mb` MiB at `mount_point` (an empty
    /// directory), its image at `image`; `dir` holds the formatted images.
    async fn attach(
        dir: &Path,
        image: &Path,
        mount_point: &Path,
        disk_mb: u32,
    ) -> Result<(), RuntimeError> {
        let base = Self::formatted(dir, disk_mb).await?;
        let (image, mount_point) = (image.to_owned(), mount_point.to_owned());
        tokio::task::spawn_blocking(move || {
            sparse_copy(&base, &image).map_err(|e| io_err(&image, "writing", e))?;
            mount(&image, &mount_point)
        })
        .await
        .map_err(|e| RuntimeError::Command {
            op: "attaching a sandbox's disk".into(),
            detail: e.to_string(),
        })?
    }

    /// The formatted empty image of `disk_mb`, made if there is none yet.
    /// Made under a temporary name and renamed, so a concurrent attach of
    /// the same size never sees half an image.
    async fn formatted(dir: &Path, disk_mb: u32) -> Result<PathBuf, RuntimeError> {
        let path = dir.join(format!("{disk_mb}.img"));
        if path.exists() {
            return Ok(path);
        }
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, "creating", e))?;
        let tmp = dir.join(format!(
            ".{disk_mb}.img.{}.{}",
            std::process::id(),
            next_serial()
        ));
        let file = File::create(&tmp).map_err(|e| io_err(&tmp, "creating", e))?;
        file.set_len(u64::from(disk_mb) * MIB)
            .map_err(|e| io_err(&tmp, "sizing", e))?;
        drop(file);
        let mut cmd = Command::new("mkfs.ext4");
        // No journal: a sandbox's disk does not outlive a host crash anyway.
        // No reserved blocks: all of it is the sandbox's.
        cmd.args([
            "-q",
            "-F",
            "-O",
            "^has_journal",
            "-m",
            "0",
            "-E",
            "lazy_itable_init=1,nodiscard",
        ])
        .arg(&tmp);
        if let Err(e) = run("mkfs.ext4", cmd).await {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, "replacing", e))?;
        Ok(path)
    }
}

/// Mounts `image` at `mount_point` through a new loop device.
fn mount(image: &Path, mount_point: &Path) -> Result<(), RuntimeError> {
    let device = loop_device::attach(image).map_err(|e| io_err(image, "attaching", e))?;
    nix::mount::mount(
        Some(&device.path),
        mount_point,
        Some("ext4"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(EXT4_OPTIONS),
    )
    .map_err(|e| io_err(mount_point, "mounting a disk on", io::Error::from(e)))
    // Dropping `device` leaves the mount its only user (autoclear).
}

/// Unmounts `mount_point`, detaches every loop device backed by `image` and
/// removes `image`; what is already gone is skipped.
pub(super) async fn release(image: &Path, mount_point: &Path) -> Result<(), RuntimeError> {
    let (image, mount_point) = (image.to_owned(), mount_point.to_owned());
    tokio::task::spawn_blocking(move || release_blocking(&image, &mount_point))
        .await
        .map_err(|e| RuntimeError::Command {
            op: "releasing a sandbox's disk".into(),
            detail: e.to_string(),
        })?
}

fn release_blocking(image: &Path, mount_point: &Path) -> Result<(), RuntimeError> {
    unmount(mount_point)?;
    for device in loop_device::devices_of(image) {
        loop_device::detach(&device).map_err(|e| io_err(&device, "detaching", e))?;
    }
    match std::fs::remove_file(image) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(image, "removing", e)),
        _ => Ok(()),
    }
}

/// Unmounts `path` if something is mounted there.
fn unmount(path: &Path) -> Result<(), RuntimeError> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| io_err(path, "unmounting", io::Error::other(e)))?;
    // Mounts stack: take them all.
    loop {
        // SAFETY: a valid NUL-terminated path; umount2 reads nothing else.
        if unsafe { libc::umount2(c_path.as_ptr(), 0) } == 0 {
            continue;
        }
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            // Not a mount point, or no such directory: nothing mounted.
            Some(libc::EINVAL | libc::ENOENT) => Ok(()),
            Some(libc::EBUSY) => {
                // Something on the host still has files open in it: detach
                // it now, the filesystem goes when they close.
                // SAFETY: as above.
                if unsafe { libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) } == 0 {
                    Ok(())
                } else {
                    Err(io_err(path, "unmounting", io::Error::last_os_error()))
                }
            }
            _ => Err(io_err(path, "unmounting", e)),
        };
    }
}

/// Copies `from` to a new file `to` of the same size, writing only the
/// data extents: the holes stay holes.
fn sparse_copy(from: &Path, to: &Path) -> io::Result<()> {
    let src = File::open(from)?;
    let len = src.metadata()?.len();
    let dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    dst.set_len(len)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: u64 = 0;
    while pos < len {
        let Some(data) = seek(&src, pos, libc::SEEK_DATA)? else {
            break;
        };
        let hole = seek(&src, data, libc::SEEK_HOLE)?.unwrap_or(len);
        let mut at = data;
        while at < hole {
            let want = usize::try_from((hole - at).min(buf.len() as u64)).unwrap_or(buf.len());
            let n = src.read_at(&mut buf[..want], at)?;
            if n == 0 {
                break;
            }
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// `lseek(fd, from, whence)`; `None` past the last data (`ENXIO`).
fn seek(f: &File, from: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    let offset = libc::off_t::try_from(from).map_err(io::Error::other)?;
    // SAFETY: lseek on an open descriptor we own.
    let at = unsafe { libc::lseek(f.as_raw_fd(), offset, whence) };
    if at < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENXIO) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(at as u64))
}

fn next_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

async fn run(op: &str, mut cmd: Command) -> Result<(), RuntimeError> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| RuntimeError::Io {
            op: format!("starting {op}"),
            source: e,
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(RuntimeError::Command {
        op: op.to_owned(),
        detail: format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    })
}

fn io_err(path: &Path, what: &str, source: io::Error) -> RuntimeError {
    RuntimeError::Io {
        op: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_copy_keeps_data_and_holes() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("a");
        let f = File::create(&from).unwrap();
        f.set_len(64 * MIB).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(b"middle", 20 * MIB).unwrap();
        f.write_all_at(b"tail", 64 * MIB - 4).unwrap();
        drop(f);
        let to = tmp.path().join("b");
        sparse_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        use std::os::unix::fs::MetadataExt;
        // Allocated 512-byte blocks: a few pages, not 64 MiB.
        assert!(std::fs::metadata(&to).unwrap().blocks() < 1024);
        // The destination must be new.
        assert!(sparse_copy(&from, &to).is_err());
    }

    #[test]
    fn images_say_their_layout() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Layout::of(tmp.path()), Layout::RootOnly);
        Layout::RootOnly.mark(tmp.path()).unwrap();
        assert_eq!(Layout::of(tmp.path()), Layout::RootOnly);
        Layout::TmpOnDisk.mark(tmp.path()).unwrap();
        assert_eq!(Layout::of(tmp.path()), Layout::TmpOnDisk);
    }

    #[test]
    fn release_of_nothing_is_done() {
        let tmp = tempfile::tempdir().unwrap();
        release_blocking(&tmp.path().join("disk.img"), &tmp.path().join("overlay")).unwrap();
        std::fs::create_dir(tmp.path().join("overlay")).unwrap();
        release_blocking(&tmp.path().join("disk.img"), &tmp.path().join("overlay")).unwrap();
    }
}
