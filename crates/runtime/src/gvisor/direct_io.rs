//! Whether a checkpoint image can be written and read past the page cache.
//!
//! `runsc checkpoint --direct` writes the pages file with `O_DIRECT`. On the
//! machine measured (docs/benchmarks.md) that is ~3× faster than through
//! the page cache for a 200 MiB image, the pages are on disk when runsc returns
//! (the flush that makes the image durable then costs milliseconds), and
//! they are not charged to the sandbox's memory cgroup, where a large
//! image would compete with the sandbox's own memory. `restore --direct`
//! reads them the same way. A filesystem that refuses `O_DIRECT` gets the
//! page cache, as before.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The pages file of a runsc image.
const PAGES: &str = "pages.img";

/// Whether a new file in `dir` can be opened for writing with `O_DIRECT`.
pub(super) fn writable(dir: &Path) -> bool {
    let probe = dir.join(".direct-io-probe");
    let ok = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe)
        .is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// Whether the pages file of the image in `image` opens with `O_DIRECT`.
pub(super) fn readable(image: &Path) -> bool {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(image.join(PAGES))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_directory_takes_direct_io_and_a_missing_image_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(writable(tmp.path()));
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        assert!(!readable(tmp.path()));
        std::fs::write(tmp.path().join(PAGES), vec![0u8; 4096]).unwrap();
        assert!(readable(tmp.path()));
        assert!(!writable(&tmp.path().join("missing")));
    }
}
