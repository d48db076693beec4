//! How uploads look to watchers.
//!
//! An upload (`files.rs`) is written under a staging name beside its
//! target, `.NAME.upload-<agent pid>-<n>`, and renamed over the target once
//! whole, so a reader never sees half a file and a failed upload leaves
//! the target as it was. envd writes in place instead, and E2B's clients
//! expect what inotify shows for that: `CREATE` (for a new file), `CHMOD`
//! (the chown) and `WRITE`, all on the real name. So watchers (`watch.rs`)
//! drop every event of a staging name, and the rename's arrival of the
//! target (`IN_MOVED_TO`) reads as that sequence when the upload announced
//! it just before renaming ([`expect_landing`]). An announcement counts for
//! [`LANDING_WINDOW`] (every watcher sees the same kernel event, so it is
//! not used up), and a rename that failed withdraws it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use warren_envd::filesystem::EventType;

/// How long an announced landing is recognised.
pub const LANDING_WINDOW: Duration = Duration::from_secs(5);

/// Announced landings: target, whether it existed before, when.
static LANDINGS: Mutex<Vec<(PathBuf, bool, Instant)>> = Mutex::new(Vec::new());

/// The staging name of the `n`th upload to a file named `name`.
pub fn staging_name(name: &str, n: u64) -> String {
    format!(".{name}.upload-{}-{n}", std::process::id())
}

/// Whether `path` is an upload's staging name (this agent's).
pub fn is_staging(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let marker = format!(".upload-{}-", std::process::id());
    name.starts_with('.')
        && name.rfind(&marker).is_some_and(|at| {
            let n = &name[at + marker.len()..];
            at > 1 && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
        })
}

fn landings() -> std::sync::MutexGuard<'static, Vec<(PathBuf, bool, Instant)>> {
    LANDINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Announces that an upload is about to rename onto `target`.
pub fn expect_landing(target: &Path, existed: bool) {
    let mut all = landings();
    all.retain(|(p, _, at)| at.elapsed() < LANDING_WINDOW && p != target);
    all.push((target.to_path_buf(), existed, Instant::now()));
}

/// Withdraws the announcement of a rename that failed.
pub fn withdraw_landing(target: &Path) {
    landings().retain(|(p, _, _)| p != target);
}

/// What a watcher shows for `path` arriving by rename: envd's in-place
/// write for an announced upload, else a plain `CREATE`.
pub fn arrival_events(path: &Path) -> Vec<EventType> {
    let existed = landings()
        .iter()
        .find(|(p, _, at)| p == path && at.elapsed() < LANDING_WINDOW)
        .map(|(_, existed, _)| *existed);
    match existed {
        Some(true) => vec![EventType::Chmod, EventType::Write],
        Some(false) => vec![EventType::Create, EventType::Chmod, EventType::Write],
        None => vec![EventType::Create],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_are_recognised_and_nothing_else() {
        let staged = staging_name("notes.txt", 7);
        assert!(is_staging(Path::new(&format!("/home/user/{staged}"))));
        for other in [
            "notes.txt",
            ".notes.txt",
            ".notes.txt.upload-1-x",
            ".upload-1-2",
            ".notes.txt.upload-999999999-",
        ] {
            assert!(!is_staging(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn an_announced_landing_reads_as_an_in_place_write() {
        let new = Path::new("/tmp/staged-test/new.txt");
        let old = Path::new("/tmp/staged-test/old.txt");
        let moved = Path::new("/tmp/staged-test/moved.txt");
        expect_landing(new, false);
        expect_landing(old, true);
        assert_eq!(
            arrival_events(new),
            [EventType::Create, EventType::Chmod, EventType::Write]
        );
        assert_eq!(arrival_events(old), [EventType::Chmod, EventType::Write]);
        assert_eq!(arrival_events(moved), [EventType::Create], "a plain mv");
        withdraw_landing(new);
        assert_eq!(arrival_events(new), [EventType::Create]);
    }
}
