//! Hostile layers and whole images. Every hostile case runs in a temporary
//! directory holding the root and a sentinel sibling, and checks that the
//! sentinel and the directory around the root are untouched.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use super::testing::{self, Entry::*, layer};
use super::*;

struct Scene {
    dir: tempfile::TempDir,
    root: PathBuf,
    sentinel: PathBuf,
}

fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let sentinel = dir.path().join("sentinel");
    fs::create_dir(&root).unwrap();
    fs::create_dir(&sentinel).unwrap();
    fs::write(sentinel.join("keep"), "x").unwrap();
    Scene {
        dir,
        root,
        sentinel,
    }
}

impl Scene {
    fn apply(&self, layers: &[Vec<u8>]) -> Result<(), OciError> {
        let mut a = Applier::new(&self.root, Limits::default())?;
        for (i, l) in layers.iter().enumerate() {
            a.apply(i + 1, &l[..])?;
        }
        Ok(())
    }

    fn abs_sentinel(&self) -> String {
        self.sentinel.to_str().unwrap().to_owned()
    }

    /// Nothing appeared next to the root, nothing changed in the sentinel.
    fn assert_outside_untouched(&self) {
        let mut around: Vec<_> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        around.sort();
        assert_eq!(around, ["root", "sentinel"]);
        let inside: Vec<_> = fs::read_dir(&self.sentinel)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(inside, ["keep"]);
        let keep = self.sentinel.join("keep");
        assert_eq!(fs::read_to_string(&keep).unwrap(), "x");
        let md = fs::metadata(&keep).unwrap();
        assert_eq!((md.nlink(), md.uid(), md.mode() & 0o7777), (1, 0, 0o644));
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.root.join(rel)).is_ok()
    }
}

fn unsafe_err(r: Result<(), OciError>) -> String {
    match r {
        Err(e @ OciError::Unsafe { .. }) => e.to_string(),
        other => panic!("expected a refused entry, got {other:?}"),
    }
}

#[test]
fn dot_dot_is_refused() {
    let s = scene();
    for path in ["../x", "a/../../x", "../sentinel/keep"] {
        let err = unsafe_err(s.apply(&[layer(&[File(path, b"evil")])]));
        assert!(err.contains("`..`"), "{err}");
        s.assert_outside_untouched();
    }
}

#[test]
fn absolute_paths_land_inside_the_root() {
    let s = scene();
    let abs = format!("{}/keep", s.abs_sentinel());
    s.apply(&[layer(&[File("/abs", b"in"), File(&abs, b"evil")])])
        .unwrap();
    assert_eq!(s.read("abs"), "in");
    assert_eq!(s.read(&abs[1..]), "evil");
    s.assert_outside_untouched();
}

#[test]
fn symlinked_parents_are_never_followed() {
    let s = scene();
    let abs = s.abs_sentinel();
    let links = layer(&[
        Symlink("a", &abs),
        Symlink("b", "../sentinel"),
        Symlink("c", "b"),
    ]);
    s.apply(std::slice::from_ref(&links)).unwrap();
    // Symlinks are stored as they are.
    assert_eq!(fs::read_link(s.root.join("a")).unwrap(), s.sentinel);
    for evil in [
        File("a/evil", b"evil"),
        File("b/evil", b"evil"),
        File("c/evil", b"evil"),
        Dir("a/sub"),
        Symlink("a/link", "/"),
        File("a/keep", b"overwritten"),
    ] {
        let err = unsafe_err(s.apply(&[links.clone(), layer(&[evil])]));
        assert!(err.contains("is a symlink"), "{err}");
        s.assert_outside_untouched();
    }
    // In the same layer too.
    let err = unsafe_err(s.apply(&[layer(&[Symlink("d", &abs), File("d/evil", b"e")])]));
    assert!(err.contains("its parent d is a symlink"), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    let s = scene();
    let target = format!("{}/keep", s.abs_sentinel());
    s.apply(&[
        layer(&[Symlink("f", &target), Symlink("g", "../sentinel/keep")]),
        layer(&[File("f", b"new"), File("g", b"new")]),
    ])
    .unwrap();
    assert!(fs::symlink_metadata(s.root.join("f")).unwrap().is_file());
    assert_eq!(s.read("f"), "new");
    assert_eq!(s.read("g"), "new");
    s.assert_outside_untouched();
}

#[test]
fn hard_links_stay_inside_the_root() {
    let s = scene();
    let abs = s.abs_sentinel();
    let err = unsafe_err(s.apply(&[layer(&[HardLink("h", "../sentinel/keep")])]));
    assert!(err.contains("`..`"), "{err}");
    // An absolute target means the root's path, which does not exist.
    let err = unsafe_err(s.apply(&[layer(&[HardLink("h", &format!("{abs}/keep"))])]));
    assert!(err.contains("does not exist"), "{err}");
    let err = unsafe_err(s.apply(&[layer(&[Symlink("s", &abs), HardLink("h", "s/keep")])]));
    assert!(err.contains("is a symlink"), "{err}");
    s.assert_outside_untouched();
    // A link to a symlink links the symlink itself; one to a file shares it.
    s.apply(&[layer(&[
        Symlink("t", &format!("{abs}/keep")),
        HardLink("u", "t"),
        File("f", b"data"),
        HardLink("g", "f"),
        Dir("d"),
    ])])
    .unwrap();
    assert!(fs::symlink_metadata(s.root.join("u")).unwrap().is_symlink());
    assert_eq!(fs::metadata(s.root.join("f")).unwrap().nlink(), 2);
    let err = unsafe_err(s.apply(&[layer(&[HardLink("e", "d")])]));
    assert!(err.contains("is a directory"), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn whiteouts_remove_files_directories_and_symlinks_not_their_targets() {
    let s = scene();
    let abs = s.abs_sentinel();
    s.apply(&[
        layer(&[
            Dir("d"),
            File("d/f", b"lower"),
            Dir("d/sub"),
            File("d/sub/g", b"lower"),
            Symlink("s", &abs),
            File("kept", b"lower"),
        ]),
        layer(&[
            File(".wh.d", b""),
            File(".wh.s", b""),
            File("d/new", b"upper"),
        ]),
    ])
    .unwrap();
    assert!(!s.exists("s"));
    assert_eq!(s.read("kept"), "lower");
    // The parent went, then this layer made it again with only its own file.
    let names: Vec<_> = fs::read_dir(s.root.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["new"]);
    assert!(!s.exists(".wh.d"));
    s.assert_outside_untouched();
    // A whiteout below a symlink is refused, not applied to its target.
    let err = unsafe_err(s.apply(&[layer(&[Symlink("t", &abs), File("t/.wh.keep", b"")])]));
    assert!(err.contains("is a symlink"), "{err}");
    s.assert_outside_untouched();
}

#[test]
fn opaque_directories_keep_only_this_layers_entries() {
    for marker_first in [true, false] {
        let s = scene();
        let mut upper = vec![
            File("o/new", b"upper"),
            Dir("o/sub2"),
            File("o/sub2/y", b"upper"),
            // Its parent is made implicitly, and kept.
            File("o/implicit/z", b"upper"),
        ];
        let marker = File("o/.wh..wh..opq", b"");
        if marker_first {
            upper.insert(0, marker);
        } else {
            upper.push(marker);
        }
        s.apply(&[
            layer(&[
                Dir("o"),
                File("o/old", b"lower"),
                Dir("o/sub"),
                File("o/sub/x", b"lower"),
                File("other", b"lower"),
            ]),
            layer(&upper),
        ])
        .unwrap();
        let mut names: Vec<_> = fs::read_dir(s.root.join("o"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["implicit", "new", "sub2"],
            "marker first: {marker_first}"
        );
        assert_eq!(s.read("o/implicit/z"), "upper");
        assert_eq!(s.read("other"), "lower");
        s.assert_outside_untouched();
    }
}

#[test]
fn owners_and_modes_are_kept_and_devices_skipped() {
    let s = scene();
    let mut a = Applier::new(&s.root, Limits::default()).unwrap();
    let stats = a
        .apply(
            1,
            &layer(&[
                Owned("su", b"#!", 0o4755, 0),
                Owned("mine", b"1", 0o640, 1234),
                CharDevice("null"),
            ])[..],
        )
        .unwrap();
    assert_eq!(stats.skipped_devices, 1);
    assert!(!s.exists("null"));
    let su = fs::metadata(s.root.join("su")).unwrap();
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    let mine = fs::metadata(s.root.join("mine")).unwrap();
    assert_eq!(
        (mine.mode() & 0o7777, mine.uid(), mine.gid()),
        (0o640, 1234, 1234)
    );
    s.assert_outside_untouched();
}

#[test]
fn sizes_and_entry_counts_are_bounded() {
    let s = scene();
    let few = Limits {
        max_bytes: 1 << 20,
        max_entries: 2,
    };
    let err = Applier::new(&s.root, few)
        .unwrap()
        .apply(1, &layer(&[Dir("a"), Dir("b"), Dir("c")])[..])
        .unwrap_err();
    assert!(matches!(err, OciError::Limit(_)), "{err}");
    let small = Limits {
        max_bytes: 3,
        max_entries: 10,
    };
    let err = Applier::new(&s.root, small)
        .unwrap()
        .apply(1, &layer(&[File("big", b"four")])[..])
        .unwrap_err();
    assert!(matches!(err, OciError::Limit(_)), "{err}");
}

/// A two-layer image: the lower layer has `lower.txt` and `gone.txt`, the
/// upper (gzip) whites out `gone.txt` and adds `top.txt`.
struct Fixture {
    tars: [Vec<u8>; 2],
    config: Vec<u8>,
}

fn fixture() -> Fixture {
    let lower = layer(&[
        Dir("etc"),
        Symlink(".warren", "/etc"),
        File("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        File("lower.txt", b"lower"),
        File("gone.txt", b"gone"),
    ]);
    let upper = layer(&[File(".wh.gone.txt", b""), File("top.txt", b"top")]);
    let config = testing::config(
        &[&lower, &upper],
        &["FOO=bar", "PATH=/usr/bin:/bin"],
        &["/bin/sh", "-c", "echo hi"],
        "/srv",
        "1000",
    );
    Fixture {
        tars: [lower, upper],
        config,
    }
}

fn check_imported(rootfs: &Path, cfg: &ImageConfig) {
    assert_eq!(fs::read_to_string(rootfs.join("top.txt")).unwrap(), "top");
    assert_eq!(
        fs::read_to_string(rootfs.join("lower.txt")).unwrap(),
        "lower"
    );
    assert!(!rootfs.join("gone.txt").exists());
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.ends_with("user:x:1000:1000::/home/user:/bin/sh\n"),
        "{passwd}"
    );
    assert!(rootfs.join("home/user").is_dir());
    let warren = fs::symlink_metadata(rootfs.join(".warren")).unwrap();
    assert!(warren.is_dir());
    assert_eq!(fs::read_dir(rootfs.join(".warren")).unwrap().count(), 0);
    assert_eq!(cfg.env.get("FOO").map(String::as_str), Some("bar"));
    assert_eq!(cfg.cmd, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
    assert_eq!(cfg.user.as_deref(), Some("1000"));
}

fn run(source: &str, dest: &Path) -> Result<ImageConfig, OciError> {
    import(
        &source.parse().unwrap(),
        dest,
        Limits::default(),
        &mut |_| {},
    )
}

#[test]
fn imports_oci_layouts_oci_archives_and_docker_archives() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    testing::oci_layout(
        &layout,
        &f.config,
        &[f.tars[0].clone(), testing::gzip(&f.tars[1])],
    );
    let archive = dir.path().join("image.tar");
    testing::tar_dir(&layout, &archive);
    let docker = dir.path().join("docker.tar");
    testing::docker_archive(&docker, &f.config, &[&f.tars[0], &f.tars[1]]);
    for (i, source) in [
        format!("oci:{}", layout.display()),
        format!("oci-archive:{}", archive.display()),
        format!("docker-archive:{}", docker.display()),
    ]
    .iter()
    .enumerate()
    {
        let rootfs = dir.path().join(format!("rootfs{i}"));
        let cfg = run(source, &rootfs).unwrap_or_else(|e| panic!("{source}: {e}"));
        check_imported(&rootfs, &cfg);
    }
    let err = run(
        &format!("oci-archive:{}", docker.display()),
        &dir.path().join("x"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("docker-archive:"), "{err}");
}

#[test]
fn a_blob_that_does_not_match_its_digest_is_named() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    testing::oci_layout(&layout, &f.config, &[f.tars[0].clone(), f.tars[1].clone()]);
    let blob = testing::digest(&f.tars[1]);
    let path = layout.join("blobs/sha256").join(&blob[7..]);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    fs::write(&path, bytes).unwrap();
    let err = run(&format!("oci:{}", layout.display()), &dir.path().join("r")).unwrap_err();
    assert!(matches!(err, OciError::Digest { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("blob blobs/sha256/{}", &blob[7..])),
        "{err}"
    );
    assert!(!dir.path().join("r/top.txt").exists());

    // A docker layer is checked against the config's diff_ids.
    let docker = dir.path().join("docker.tar");
    let mut evil = f.tars[1].clone();
    evil[1024] ^= 1; // the first byte of top.txt
    testing::docker_archive(&docker, &f.config, &[&f.tars[0], &evil]);
    let err = run(
        &format!("docker-archive:{}", docker.display()),
        &dir.path().join("d"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("layer.tar (uncompressed) does not match"),
        "{err}"
    );
}

#[test]
fn foreign_platforms_and_sources_are_refused() {
    assert!("tar:/x".parse::<ImageSource>().is_err());
    assert!("/x".parse::<ImageSource>().is_err());
    assert_eq!(
        "docker-archive:/a:b".parse::<ImageSource>().unwrap(),
        ImageSource {
            format: ImageFormat::DockerArchive,
            path: "/a:b".into()
        }
    );
    let cfg = br#"{"architecture":"arm64","os":"linux"}"#;
    let d = Digest::parse(&testing::digest(cfg)).unwrap();
    let err = config::parse(cfg, &d).unwrap_err().to_string();
    assert!(err.contains("linux/arm64"), "{err}");
}

#[test]
fn warrens_additions_never_go_through_the_images_symlinks() {
    for link in ["etc", "home", "etc/skel"] {
        let s = scene();
        let abs = s.abs_sentinel();
        let mut entries = vec![
            Dir("etc"),
            File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        ];
        if link == "etc" {
            entries.clear();
        }
        entries.push(Symlink(link, &abs));
        let tar = layer(&entries);
        let config = testing::config(&[&tar], &[], &[], "", "");
        let layout = s.dir.path().join("sentinel-free");
        testing::oci_layout(&layout, &config, &[tar]);
        let rootfs = s.root.join("rootfs");
        let err = run(&format!("oci:{}", layout.display()), &rootfs).unwrap_err();
        assert!(
            err.to_string().contains(&format!("/{link} is a symlink")),
            "{err}"
        );
        fs::remove_dir_all(&layout).unwrap();
        s.assert_outside_untouched();
    }
}

#[test]
fn huge_extended_headers_are_refused_long_names_are_fine() {
    let s = scene();
    let mut b = tar::Builder::new(Vec::new());
    let long = format!("{}/f", "d".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    b.append_data(&mut h, &long, &b"ok"[..]).unwrap();
    let fine = b.into_inner().unwrap();
    s.apply(std::slice::from_ref(&fine)).unwrap();
    assert_eq!(s.read(&long), "ok");

    // A PAX header of 4 MiB (all of it there, as a gzip bomb would make it).
    let mut pax = tar::Header::new_ustar();
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_size(4 << 20);
    pax.set_mode(0o644);
    pax.set_uid(0);
    pax.set_gid(0);
    pax.set_mtime(0);
    pax.set_path("pax").unwrap();
    pax.set_cksum();
    let mut bomb = pax.as_bytes().to_vec();
    bomb.extend(std::iter::repeat_n(b'a', 4 << 20));
    bomb.extend(layer(&[File("after", b"x")]));
    let err = s.apply(&[bomb]).unwrap_err();
    assert!(format!("{err:?}").contains("bytes of headers"), "{err:?}");
    assert!(!s.exists("after"));
    s.assert_outside_untouched();
}

/// Runs `umoci ARGS` in `dir` (scripts/deps.sh installs umoci).
fn umoci(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("umoci")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("umoci runs (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "umoci {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn imports_what_umoci_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rootfs = d.join("bundle/rootfs");
    umoci(d, &["init", "--layout", "img"]);
    umoci(d, &["new", "--image", "img:t"]);
    umoci(d, &["unpack", "--image", "img:t", "bundle"]);
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::create_dir_all(rootfs.join("d")).unwrap();
    fs::write(rootfs.join("d/x"), "x").unwrap();
    fs::write(rootfs.join("lower.txt"), "lower").unwrap();
    fs::write(rootfs.join("gone.txt"), "gone").unwrap();
    std::os::unix::fs::symlink("/etc", rootfs.join("link")).unwrap();
    umoci(d, &["repack", "--image", "img:t", "bundle"]);
    fs::remove_file(rootfs.join("gone.txt")).unwrap();
    fs::remove_dir_all(rootfs.join("d")).unwrap();
    fs::write(rootfs.join("top.txt"), "top").unwrap();
    umoci(d, &["repack", "--image", "img:t", "bundle"]);
    umoci(
        d,
        &[
            "config",
            "--image",
            "img:t",
            "--config.env",
            "FOO=bar",
            "--config.cmd",
            "/bin/sh",
        ],
    );
    let archive = d.join("img.tar");
    testing::tar_dir(&d.join("img"), &archive);
    for (i, source) in [
        format!("oci:{}", d.join("img").display()),
        format!("oci-archive:{}", archive.display()),
    ]
    .iter()
    .enumerate()
    {
        let out = d.join(format!("out{i}"));
        let cfg = run(source, &out).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(fs::read_to_string(out.join("top.txt")).unwrap(), "top");
        assert_eq!(fs::read_to_string(out.join("lower.txt")).unwrap(), "lower");
        assert!(!out.join("gone.txt").exists());
        assert!(!out.join("d").exists());
        assert_eq!(fs::read_link(out.join("link")).unwrap(), Path::new("/etc"));
        assert_eq!(cfg.env.get("FOO").map(String::as_str), Some("bar"));
        assert_eq!(cfg.cmd, ["/bin/sh"]);
    }
}
