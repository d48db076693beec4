//! One daemon per data directory.
//!
//! Two daemons on one data directory would share its store, runsc state,
//! snapshots and address ranges while each believes it owns them: both
//! would reconcile, reap and tear down the other's sandboxes. At start the
//! daemon takes an exclusive `flock` on `<data>/daemon.lock`, writes its
//! pid there, and holds the lock for its whole life; the kernel drops the
//! lock when the process ends, however it ends, so a killed daemon never
//! leaves a stale lock behind. A daemon that finds the lock held tries
//! again for [`ENDING_GRACE`] (a daemon just killed may hold it a moment
//! longer: its last references to the file are dropped as it ends), then
//! is refused with the holder's pid.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// The held lock; dropping it releases the data directory.
pub struct DataLock {
    _file: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum DataLockError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "another warren daemon (pid {pid}) is using the data directory {dir}; stop it first, or give this one its own --data-dir"
    )]
    InUse { pid: String, dir: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: String, source: nix::Error },
}

/// How long a held lock is waited for.
pub const ENDING_GRACE: Duration = Duration::from_secs(5);
/// Between two tries.
const RETRY: Duration = Duration::from_millis(100);

/// Takes `data`'s lock, waiting up to `grace` for a daemon that is ending,
/// or says which daemon holds it.
pub fn lock(data: &Path, grace: Duration) -> Result<DataLock, DataLockError> {
    let deadline = Instant::now() + grace;
    loop {
        match try_lock(data) {
            Err(DataLockError::InUse { .. }) if Instant::now() < deadline => {
                std::thread::sleep(RETRY);
            }
            result => return result,
        }
    }
}

fn try_lock(data: &Path) -> Result<DataLock, DataLockError> {
    let path = data.join("daemon.lock");
    let shown = path.display().to_string();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| DataLockError::Open {
            path: shown.clone(),
            source,
        })?;
    let mut held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(held) => held,
        Err((mut file, nix::Error::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(DataLockError::InUse {
                pid: pid.trim().chars().take(20).collect(),
                dir: data.display().to_string(),
            });
        }
        Err((_, source)) => {
            return Err(DataLockError::Lock {
                path: shown,
                source,
            });
        }
    };
    // The pid is informative only: the lock is the flock.
    let _ = held.set_len(0);
    let _ = held.rewind();
    let _ = writeln!(held, "{}", std::process::id());
    Ok(DataLock { _file: held })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path(), Duration::ZERO).unwrap();
        match lock(dir.path(), Duration::from_millis(300)) {
            Err(DataLockError::InUse { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string());
            }
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("a second lock of one data directory was granted"),
        }
        // A holder that lets go while the next one waits hands it over.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        assert!(lock(dir.path(), Duration::from_secs(5)).is_ok());
        release.join().unwrap();
    }
}
