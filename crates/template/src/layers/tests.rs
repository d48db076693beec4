use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::*;
use crate::dockerfile::plan;
use crate::oci::{Applier, Limits};

fn cp(from: &Path, to: &Path) {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Path, type and mode, owner, symlink target and file content.
type Shape = (PathBuf, u32, u32, Option<PathBuf>, Vec<u8>);

/// What a tree holds, entry by entry.
fn shape(root: &Path) -> Vec<Shape> {
    walk(root)
        .unwrap()
        .entries
        .into_iter()
        .map(|(p, e)| {
            let data = if e.mode & libc::S_IFMT == libc::S_IFREG {
                fs::read(root.join(&p)).unwrap()
            } else {
                Vec::new()
            };
            (p, e.mode, e.uid, e.target, data)
        })
        .collect()
}

fn base(root: &Path) {
    fs::create_dir_all(root.join("etc/conf.d")).unwrap();
    fs::create_dir_all(root.join("srv/old/deep")).unwrap();
    fs::write(root.join("etc/keep"), "keep").unwrap();
    fs::write(root.join("etc/change"), "before").unwrap();
    fs::write(root.join("etc/gone"), "gone").unwrap();
    fs::write(root.join("etc/mode"), "mode").unwrap();
    fs::write(root.join("etc/conf.d/a"), "a").unwrap();
    fs::write(root.join("srv/old/deep/f"), "f").unwrap();
    symlink("keep", root.join("etc/link")).unwrap();
    fs::create_dir_all(root.join("swap")).unwrap();
    fs::write(root.join("swap/child"), "c").unwrap();
}

/// Applies the change `step` makes to a copy of `base` as a layer on
/// another copy and checks both trees end equal; returns the changes.
fn round_trip(step: impl FnOnce(&Path)) -> Changes {
    round_trip_in(step).0
}

/// [`round_trip`], keeping the directory (`replay` in it is the copy the
/// layer was applied to).
fn round_trip_in(step: impl FnOnce(&Path)) -> (Changes, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let (orig, work, replay) = (
        tmp.path().join("orig"),
        tmp.path().join("work"),
        tmp.path().join("replay"),
    );
    fs::create_dir(&orig).unwrap();
    base(&orig);
    cp(&orig, &work);
    cp(&orig, &replay);
    let before = walk(&work).unwrap();
    step(&work);
    let after = walk(&work).unwrap();
    let changes = Changes::between(&before, &after);
    let mut layer = Vec::new();
    write_layer(&work, &after, &changes, &mut layer).unwrap();
    let mut applier = Applier::new(&replay, Limits::default()).unwrap();
    applier.apply(1, &layer[..]).unwrap();
    assert_eq!(shape(&replay), shape(&work));
    (changes, tmp)
}

fn names(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn an_unchanged_tree_makes_an_empty_layer() {
    assert!(round_trip(|_| {}).is_empty());
}

#[test]
fn new_and_changed_files_are_written() {
    let c = round_trip(|w| {
        fs::write(w.join("etc/new"), "new").unwrap();
        fs::write(w.join("etc/change"), "after, longer").unwrap();
        fs::create_dir_all(w.join("opt/tool/bin")).unwrap();
        fs::write(w.join("opt/tool/bin/run"), "#!/bin/sh\n").unwrap();
    });
    let w = names(&c.write);
    for p in ["etc/new", "etc/change", "opt", "opt/tool/bin/run"] {
        assert!(w.contains(&p.to_owned()), "{w:?}");
    }
    assert!(!w.contains(&"etc/keep".to_owned()), "{w:?}");
    assert!(c.delete.is_empty());
}

#[test]
fn a_deleted_file_becomes_a_whiteout() {
    let c = round_trip(|w| fs::remove_file(w.join("etc/gone")).unwrap());
    assert_eq!(names(&c.delete), ["etc/gone"]);
}

#[test]
fn a_deleted_directory_is_one_whiteout() {
    let c = round_trip(|w| fs::remove_dir_all(w.join("srv/old")).unwrap());
    assert_eq!(names(&c.delete), ["srv/old"]);
}

#[test]
fn a_directory_replaced_by_a_file_and_back() {
    round_trip(|w| {
        fs::remove_dir_all(w.join("swap")).unwrap();
        fs::write(w.join("swap"), "now a file").unwrap();
        fs::remove_file(w.join("etc/keep")).unwrap();
        fs::create_dir(w.join("etc/keep")).unwrap();
    });
    // A directory emptied and filled again keeps only what is new.
    let c = round_trip(|w| {
        fs::remove_dir_all(w.join("swap")).unwrap();
        fs::create_dir(w.join("swap")).unwrap();
        fs::write(w.join("swap/other"), "o").unwrap();
    });
    assert_eq!(names(&c.delete), ["swap/child"]);
}

#[test]
fn symlink_and_mode_changes_are_written() {
    let c = round_trip(|w| {
        fs::remove_file(w.join("etc/link")).unwrap();
        symlink("/etc/change", w.join("etc/link")).unwrap();
        fs::set_permissions(w.join("etc/mode"), fs::Permissions::from_mode(0o4750)).unwrap();
    });
    let w = names(&c.write);
    assert!(w.contains(&"etc/link".to_owned()), "{w:?}");
    assert!(w.contains(&"etc/mode".to_owned()), "{w:?}");
}

#[test]
fn hard_links_stay_links() {
    use std::os::unix::fs::MetadataExt;
    let (_, tmp) = round_trip_in(|w| {
        fs::write(w.join("etc/one"), "shared").unwrap();
        fs::hard_link(w.join("etc/one"), w.join("etc/two")).unwrap();
    });
    let replay = tmp.path().join("replay");
    let one = fs::metadata(replay.join("etc/one")).unwrap();
    let two = fs::metadata(replay.join("etc/two")).unwrap();
    assert_eq!(one.ino(), two.ino());
}

#[test]
fn a_name_that_reads_as_a_whiteout_is_not_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let before = walk(tmp.path()).unwrap();
    fs::write(tmp.path().join(".wh.x"), "").unwrap();
    let after = walk(tmp.path()).unwrap();
    let c = Changes::between(&before, &after);
    let err = write_layer(tmp.path(), &after, &c, Vec::new()).unwrap_err();
    assert!(matches!(err, LayerError::NotCacheable(_)), "{err}");
}

#[test]
fn keys_chain_and_ignore_line_numbers() {
    let a = plan("FROM tiny\nRUN echo 1\nRUN echo 2\n", &Default::default()).unwrap();
    let b = plan("FROM tiny\n\nRUN echo 1\nRUN echo 3\n", &Default::default()).unwrap();
    let k0 = first_key("tiny@abc");
    assert_ne!(k0, first_key("tiny@abd"));
    let ka1 = step_key(&k0, &a.steps[0], None);
    let kb1 = step_key(&k0, &b.steps[0], None);
    assert_eq!(ka1, kb1);
    assert_ne!(
        step_key(&ka1, &a.steps[1], None),
        step_key(&kb1, &b.steps[1], None)
    );
    assert_ne!(ka1, step_key(&k0, &a.steps[0], Some("digest")));
    assert_ne!(ka1, step_key(&first_key("tiny@abd"), &a.steps[0], None));
}

fn key(n: u8) -> String {
    format!("{:064x}", n)
}

fn layer_of(len: usize) -> impl FnOnce(&mut dyn std::io::Write) -> Result<(), LayerError> {
    move |w| {
        w.write_all(&vec![7u8; len])
            .map_err(LayerError::io("write"))
    }
}

#[test]
fn the_cache_drops_least_recently_used_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let caps = Caps {
        total: 3000,
        per_layer: 1500,
    };
    let cache = LayerCache::open(tmp.path().join(".layers"), caps).unwrap();
    assert_eq!(
        cache.put(&key(1), 1000, layer_of(1000)).unwrap(),
        Some(1000)
    );
    assert_eq!(
        cache.put(&key(2), 1000, layer_of(1000)).unwrap(),
        Some(1000)
    );
    // Key 1 is used later than key 2.
    let old = SystemTime::now() - Duration::from_secs(60);
    File::options()
        .write(true)
        .open(cache.dir().join(format!("{}.tar", key(2))))
        .unwrap()
        .set_modified(old)
        .unwrap();
    File::options()
        .write(true)
        .open(cache.dir().join(format!("{}.tar", key(1))))
        .unwrap()
        .set_modified(old - Duration::from_secs(60))
        .unwrap();
    assert!(cache.get(&key(1)).is_some());
    assert_eq!(
        cache.put(&key(3), 1200, layer_of(1200)).unwrap(),
        Some(1200)
    );
    assert!(cache.get(&key(2)).is_none(), "the least recently used goes");
    assert!(cache.get(&key(1)).is_some());
    assert!(cache.get(&key(3)).is_some());
    // Past the per-layer cap: not kept, by its expected or its real size.
    assert_eq!(cache.put(&key(4), 2000, layer_of(10)).unwrap(), None);
    assert_eq!(cache.put(&key(5), 10, layer_of(2000)).unwrap(), None);
    assert!(cache.get(&key(4)).is_none() && cache.get(&key(5)).is_none());
    assert!(cache.get("../x").is_none());
}

use std::fs::File;

#[test]
fn stale_temporaries_are_swept_and_failed_writes_leave_none() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(".layers");
    let cache = LayerCache::open(&dir, Caps::default()).unwrap();
    let err = cache
        .put(&key(1), 10, |_| Err(LayerError::NotCacheable("no".into())))
        .unwrap_err();
    assert!(matches!(err, LayerError::NotCacheable(_)));
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    let stale = dir.join(".tmp-crashed.tar");
    let fresh = dir.join(".tmp-writing.tar");
    fs::write(&stale, "half").unwrap();
    fs::write(&fresh, "half").unwrap();
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - STALE_TEMP - Duration::from_secs(1))
        .unwrap();
    LayerCache::open(&dir, Caps::default()).unwrap();
    assert!(!stale.exists());
    assert!(fresh.exists(), "another writer's temporary stays");
}

#[test]
fn nothing_outside_the_tree_is_walked_or_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
    fs::create_dir_all(root.join("d")).unwrap();
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("f"), "host secret").unwrap();
    symlink(&outside, root.join("link")).unwrap();
    let before = walk(&root).unwrap();
    assert!(!before.entries.contains_key(Path::new("link/f")));
    fs::write(root.join("d/f"), "mine").unwrap();
    let after = walk(&root).unwrap();
    let changes = Changes::between(&before, &after);
    // The directory becomes a symlink to the host between walk and read.
    fs::remove_dir_all(root.join("d")).unwrap();
    symlink(&outside, root.join("d")).unwrap();
    let mut layer = Vec::new();
    let err = write_layer(&root, &after, &changes, &mut layer).unwrap_err();
    assert!(matches!(err, LayerError::Io { .. }), "{err}");
    assert!(!String::from_utf8_lossy(&layer).contains("host secret"));
    // A walk that meets such a swap fails instead of following it.
    fs::remove_file(root.join("d")).unwrap();
    fs::create_dir(root.join("d")).unwrap();
    let fd = crate::oci::fsat::open_root(&root).unwrap();
    fs::remove_dir(root.join("d")).unwrap();
    symlink(&outside, root.join("d")).unwrap();
    assert!(super::tree::open_dir(&fd, Path::new("d")).is_err());
}
