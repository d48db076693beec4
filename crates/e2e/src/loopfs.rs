//! A small ext4 filesystem of a test's own: an image file in a temporary
//! directory of `/dev/shm` (so its syncs cost no host disk flush: a
//! database on it starts as fast as anywhere), mounted through a loop
//! device, unmounted (and the image removed) on drop, also when the test
//! fails. Needs root.
//!
//! A daemon whose data directory lives on it must be dropped before it
//! (declare the [`LoopFs`] first: locals drop in reverse order).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use tempfile::TempDir;

/// A mounted ext4 filesystem; see the module docs.
pub struct LoopFs {
    dir: TempDir,
    mounted: bool,
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("{cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl LoopFs {
    /// Makes and mounts an ext4 filesystem of `size_mb` MiB with no blocks
    /// reserved for root (the daemon runs as root: it could use them).
    pub fn new(size_mb: u64) -> anyhow::Result<Self> {
        let shm = std::path::Path::new("/dev/shm");
        let parent = match shm.is_dir() {
            true => shm.to_path_buf(),
            false => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix("warren-e2e-fs-")
            .tempdir_in(parent)?;
        let image = dir.path().join("fs.img");
        std::fs::File::create(&image)?.set_len(size_mb * 1024 * 1024)?;
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image))?;
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt)?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt))?;
        Ok(Self { dir, mounted: true })
    }

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Bytes still free for writing.
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        let st = nix::sys::statvfs::statvfs(&self.path())?;
        Ok(st.blocks_available() * st.fragment_size())
    }

    /// Fills the filesystem: one file takes every free block (allocated,
    /// not sparse), a second one the rest until `ENOSPC`. Dropping (or
    /// [`Filler::free`]) the result deletes them and gives the space back.
    pub fn fill(&self) -> anyhow::Result<Filler> {
        let bulk = self.path().join("filler");
        let free = self.free_bytes()?;
        let mib = 1024 * 1024;
        if free > mib {
            run(Command::new("fallocate")
                .arg("-l")
                .arg((free - mib).to_string())
                .arg(&bulk))?;
        }
        let rest = self.path().join("filler-rest");
        let mut f = std::fs::File::create(&rest)?;
        let block = vec![0xa5u8; 4096];
        loop {
            use std::io::Write;
            match f.write(&block) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e).context("filling"),
            }
        }
        // Blocks are reserved when written (delayed allocation): the sync
        // only makes them real.
        let _ = f.sync_all();
        Ok(Filler(vec![bulk, rest]))
    }
}

/// The files that fill a [`LoopFs`]; deleted on drop, so that a failing
/// test's daemon can still clean up before the filesystem goes.
pub struct Filler(Vec<PathBuf>);

impl Filler {
    /// Deletes the files.
    pub fn free(self) -> anyhow::Result<()> {
        for f in &self.0 {
            std::fs::remove_file(f).with_context(|| format!("removing {}", f.display()))?;
        }
        Ok(())
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        let mnt = self.path();
        // A busy mount (a process still inside) gets a few tries, then is
        // detached lazily; the loop device goes with the last user.
        for _ in 0..10 {
            let ok = Command::new("umount")
                .arg(&mnt)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                self.mounted = false;
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        self.mounted = false;
    }
}
