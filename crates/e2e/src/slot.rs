//! Host-wide slots for tests that run in parallel processes: the numbers
//! `0..count` of a kind, each claimed with an exclusive `flock` on a file
//! in the system's temporary directory. A claim lasts while the returned
//! file is open, and ends with it, also when the test process dies, so no
//! two live tests ever hold one slot and a crashed test never keeps one.

use std::os::fd::AsRawFd;

/// Claims a free slot of `kind` out of `0..count`, trying from `start` on;
/// `None` when every one is taken.
pub fn claim(kind: &str, count: u32, start: u32) -> std::io::Result<Option<(u32, std::fs::File)>> {
    for i in 0..count {
        let n = (start + i) % count;
        let path = std::env::temp_dir().join(format!("warren-e2e-{kind}-{n}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some((n, file)));
        }
    }
    Ok(None)
}
