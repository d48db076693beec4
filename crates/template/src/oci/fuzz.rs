//! Fuzz targets for image import: layer tars applied to a root (nothing
//! may be written outside it, whatever the tar says; every failure is an
//! [`OciError`]) and the documents that describe an image (index,
//! manifests, config, the archive around them). Budget and reproduction:
//! see the `warren-fuzz` crate.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use warren_fuzz::{Target, corpus_dir};

use super::digest::Digest;
use super::source::Files;
use super::testing::{Entry::*, gzip, layer};
use super::*;

fn target(name: &str) -> Target {
    Target::new(name, corpus_dir(env!("CARGO_MANIFEST_DIR"), name))
}

/// A root next to a sentinel directory the layers must never reach.
struct Scene {
    _dir: tempfile::TempDir,
    base: PathBuf,
    root: PathBuf,
    sentinel: PathBuf,
    /// Of the sentinel's file and of the sentinel directory.
    before: Vec<Facts>,
}

/// (dev, ino, nlink, uid, gid, mode, size, mtime in ns) of a path.
type Facts = (u64, u64, u64, u32, u32, u32, u64, i64);

fn facts(path: &Path) -> Facts {
    let m = fs::symlink_metadata(path).unwrap();
    let mtime = m.mtime() * 1_000_000_000 + m.mtime_nsec();
    (
        m.dev(),
        m.ino(),
        m.nlink(),
        m.uid(),
        m.gid(),
        m.mode(),
        m.size(),
        mtime,
    )
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        let root = base.join("root");
        let sentinel = base.join("sentinel");
        fs::create_dir(&sentinel).unwrap();
        fs::write(sentinel.join("keep"), "x").unwrap();
        fs::set_permissions(sentinel.join("keep"), fs::Permissions::from_mode(0o644)).unwrap();
        let before = vec![facts(&sentinel.join("keep")), facts(&sentinel)];
        Self {
            _dir: dir,
            base,
            root,
            sentinel,
            before,
        }
    }

    /// Empties the root for the next input (directories a layer made
    /// unreadable are opened up first; symlinks are removed, not followed).
    fn reset(&self) {
        if fs::remove_dir_all(&self.root).is_err() {
            open_up(&self.root);
            let _ = fs::remove_dir_all(&self.root);
        }
        fs::create_dir(&self.root).unwrap();
    }

    fn assert_outside_untouched(&self) {
        let mut around: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        around.sort();
        assert_eq!(
            around,
            ["root", "sentinel"],
            "something was written next to the root"
        );
        let inside: Vec<_> = fs::read_dir(&self.sentinel)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(inside, ["keep"], "something was written into the sentinel");
        assert_eq!(fs::read(self.sentinel.join("keep")).unwrap(), b"x");
        let after = vec![facts(&self.sentinel.join("keep")), facts(&self.sentinel)];
        assert_eq!(
            after, self.before,
            "the sentinel changed (linked, chmod, chown or written)"
        );
    }
}

fn open_up(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path());
            }
        }
    }
}

/// The first byte splits the rest into one or two layers (at a multiple of
/// 512 bytes); each may be gzip-compressed.
fn apply_layers(scene: &Scene, input: &[u8]) {
    let Some((&split, rest)) = input.split_first() else {
        return;
    };
    let layers: Vec<&[u8]> = if split & 1 == 1 {
        let at = (usize::from(split >> 1) * 512).min(rest.len());
        vec![&rest[..at], &rest[at..]]
    } else {
        vec![rest]
    };
    scene.reset();
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 256,
    };
    if let Ok(mut applier) = Applier::new(&scene.root, limits) {
        for (i, l) in layers.into_iter().enumerate() {
            let outcome = decompress(Box::new(std::io::Cursor::new(l.to_vec())), "layer")
                .and_then(|r| applier.apply(i + 1, r));
            if outcome.is_err() {
                break;
            }
        }
    }
    scene.assert_outside_untouched();
}

#[test]
fn fuzz_oci_layer_tar() {
    let scene = Scene::new();
    let abs = scene.sentinel.to_str().unwrap().to_owned();
    let abs_keep = format!("{abs}/keep");
    let one = |l: Vec<u8>| [vec![0u8], l].concat();
    let two = |a: Vec<u8>, b: Vec<u8>| {
        assert_eq!(a.len() % 512, 0);
        let blocks = a.len() / 512;
        [vec![((blocks as u8) << 1) | 1], a, b].concat()
    };
    let links = || {
        layer(&[
            Symlink("a", &abs),
            Symlink("b", "../sentinel"),
            Symlink("c", "b"),
        ])
    };
    target("oci_layer_tar")
        .max_len(256 << 10)
        .seed(one(layer(&[
            Dir("d"),
            File("d/f", b"data"),
            Owned("d/s", b"suid", 0o4755, 1000),
            HardLink("d/g", "d/f"),
            Symlink("d/l", "f"),
            CharDevice("null"),
            File(".wh.gone", b""),
            File("d/.wh..wh..opq", b""),
        ])))
        .seed(one(layer(&[Symlink("a", &abs), File("a/evil", b"evil")])))
        .seed(two(
            links(),
            layer(&[File("b/evil", b"e"), HardLink("h", "a/keep")]),
        ))
        .seed(two(
            links(),
            layer(&[File(".wh.a", b""), File("c/.wh.keep", b"")]),
        ))
        .seed(one(layer(&[
            HardLink("h", "../sentinel/keep"),
            File("../x", b"e"),
        ])))
        .seed(one(layer(&[
            Symlink("t", &abs_keep),
            HardLink("u", "t"),
            File("t", b"new"),
        ])))
        .seed(one(gzip(&layer(&[
            Dir("o"),
            File("o/x", b"gz"),
            Symlink("o/up", ".."),
        ]))))
        .tokens([
            abs.as_str(),
            abs_keep.as_str(),
            "../sentinel",
            "..",
            "/",
            "./",
            ".wh.",
            ".wh..wh..opq",
            "././@LongLink",
            "PaxHeader",
            "path=",
            "linkpath=",
            "0000777\0",
            "ustar\0",
            "ustar  \0",
        ])
        .run(|input| apply_layers(&scene, input));
}

/// The first byte picks the document: an image config, an OCI layout's
/// `index.json`, a docker archive's `manifest.json`, a whole archive; the
/// text is also read as an image source and a digest.
fn documents(dir: &Path, input: &[u8]) {
    let Some((&kind, doc)) = input.split_first() else {
        return;
    };
    let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
    if let Ok(text) = std::str::from_utf8(doc) {
        let _ = text.parse::<ImageSource>();
        if let Ok(d) = Digest::parse(text) {
            assert_eq!(d.as_str(), text);
            assert_eq!(d.blob_path(), format!("blobs/sha256/{}", d.hex()));
        }
    }
    match kind % 4 {
        0 => {
            if let Ok((config, diff_ids)) = config::parse(doc, &digest) {
                let _ = (config, diff_ids.len());
            }
        }
        1 => {
            fs::write(dir.join("index.json"), doc).unwrap();
            let _ = layout::read(&Files::dir(dir));
        }
        2 => {
            fs::write(dir.join("manifest.json"), doc).unwrap();
            let _ = docker::read(&Files::dir(dir));
        }
        _ => {
            let path = dir.join("image.tar");
            fs::write(&path, doc).unwrap();
            if let Ok(files) = Files::archive(&path) {
                let _ = docker::read(&files);
                if files.has("index.json") {
                    let _ = layout::read(&files);
                }
            }
        }
    }
}

#[test]
fn fuzz_oci_image_documents() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let layer_tar = layer(&[File("etc/hostname", b"x")]);
    let fixture = testing::config(&[&layer_tar], &["PATH=/bin"], &["sh"], "/", "0:0");
    testing::oci_layout(docs.path(), &fixture, std::slice::from_ref(&layer_tar));
    let index = fs::read(docs.path().join("index.json")).unwrap();
    let archive = docs.path().join("docker.tar");
    testing::docker_archive(&archive, &fixture, &[&layer_tar]);
    target("oci_image_documents")
        .seed([vec![0], fixture.clone()].concat())
        .seed([vec![1], index].concat())
        .seed(
            [
                vec![2],
                br#"[{"Config":"blobs/sha256/aa.json","RepoTags":[],"Layers":["l.tar"]}]"#.to_vec(),
            ]
            .concat(),
        )
        .seed([vec![3], fs::read(&archive).unwrap()].concat())
        .tokens([
            "\"sha256:",
            "\"os\":\"linux\"",
            "\"architecture\":\"arm64\"",
            "\"manifests\":[",
            "\"platform\":{",
            "\"size\":18446744073709551615",
            "\"Env\":[\"A\"]",
            "\"diff_ids\":[]",
            "oci-archive:",
            "docker-archive:/",
        ])
        .run(|input| documents(dir.path(), input));
}

#[test]
fn the_outside_check_sees_a_write_a_link_and_a_chmod() {
    type Change = fn(&Scene);
    let changes: [Change; 3] = [
        |s| fs::write(s.sentinel.join("new"), "x").unwrap(),
        |s| fs::hard_link(s.sentinel.join("keep"), s.root.join("h")).unwrap(),
        |s| {
            fs::set_permissions(s.sentinel.join("keep"), fs::Permissions::from_mode(0o4755))
                .unwrap()
        },
    ];
    for change in changes {
        let scene = Scene::new();
        scene.reset();
        change(&scene);
        let caught = std::panic::catch_unwind(|| scene.assert_outside_untouched());
        assert!(caught.is_err());
    }
}
