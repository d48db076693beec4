//! Loop devices for sandboxes' disk images, set up with the kernel's ioctls
//! rather than `losetup`/`mount -o loop` (no process to start on the create
//! path).
//!
//! - attach: `LOOP_CTL_GET_FREE` on `/dev/loop-control`, then
//!   `LOOP_CONFIGURE` (Linux 5.8+) with `LO_FLAGS_AUTOCLEAR` and
//!   `LO_FLAGS_DIRECT_IO` (the image is read and written past the host's
//!   page cache: the sandbox's pages are cached once, in its own
//!   filesystem, not twice; the kernel falls back to buffered I/O where the
//!   image's filesystem cannot do direct I/O); a device taken
//!   by someone else between the two is `EBUSY` and the next free one is
//!   tried. Autoclear detaches the device when its last user goes: the
//!   returned descriptor, then the filesystem mounted from it.
//! - find: `/sys/block/loop*/loop/backing_file` names each device's image.
//! - detach: `LOOP_CLR_FD`; on a device still in use the kernel sets
//!   autoclear instead.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
/// How many devices taken under us are tolerated before giving up.
const ATTACH_TRIES: usize = 16;

/// `struct loop_info64` of `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// An attached loop device: `path`, held open by `file` until dropped.
pub(super) struct LoopDevice {
    pub path: PathBuf,
    pub _file: File,
}

/// Attaches `image` (opened read-write) to a free loop device with
/// autoclear.
pub(super) fn attach(image: &Path) -> io::Result<LoopDevice> {
    let backing = OpenOptions::new().read(true).write(true).open(image)?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let mut last = io::Error::from_raw_os_error(libc::EBUSY);
    for _ in 0..ATTACH_TRIES {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let path = PathBuf::from(format!("/dev/loop{n}"));
        let device = OpenOptions::new().read(true).write(true).open(&path)?;
        // SAFETY: an all-zero loop_config is valid; the fields are set below.
        let mut config: LoopConfig = unsafe { std::mem::zeroed() };
        config.fd = u32::try_from(backing.as_raw_fd()).map_err(io::Error::other)?;
        config.info.flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        let name = image.as_os_str().as_encoded_bytes();
        let len = name.len().min(config.info.file_name.len() - 1);
        config.info.file_name[..len].copy_from_slice(&name[..len]);
        // SAFETY: LOOP_CONFIGURE reads one loop_config, which lives on our
        // stack for the call.
        let r = unsafe {
            libc::ioctl(
                device.as_raw_fd(),
                LOOP_CONFIGURE as _,
                &config as *const LoopConfig,
            )
        };
        if r == 0 {
            return Ok(LoopDevice {
                path,
                _file: device,
            });
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::EBUSY) {
            return Err(last);
        }
    }
    Err(last)
}

/// `/dev/loopN` of every loop device whose backing file is `image`.
pub(super) fn devices_of(image: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    let want = image.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with("loop")) else {
            continue;
        };
        let Ok(backing) = std::fs::read(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.strip_suffix(b"\n").unwrap_or(&backing);
        // A removed image reads as "<path> (deleted)".
        let backing = backing.strip_suffix(b" (deleted)").unwrap_or(backing);
        if backing == want {
            found.push(Path::new("/dev").join(name));
        }
    }
    found
}

/// Detaches `device` now, or when its last user goes.
pub(super) fn detach(device: &Path) -> io::Result<()> {
    let f = match File::open(device) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    // SAFETY: LOOP_CLR_FD takes no argument and touches no user memory.
    if unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD as _, 0) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Already detached.
        Some(libc::ENXIO) => Ok(()),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_structs_have_their_sizes() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }
}
