//! Image fixtures for tests (this crate's and the end-to-end suite's):
//! layer tars with any entry, including ones no well-behaved tool writes,
//! packed as an OCI layout, an `oci-archive` or a `docker-archive`.

use std::fs;
use std::io::Write;
use std::path::Path;

use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

/// One entry of a layer.
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    /// A file with a mode and an owner (uid = gid).
    Owned(&'a str, &'a [u8], u32, u64),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
}

/// A layer tar of `entries`, names written byte for byte (up to 100 bytes).
pub fn layer(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (path, kind, data, mode, uid, link): (&str, EntryType, &[u8], u32, u64, &str) = match *e
        {
            Entry::File(p, d) => (p, EntryType::Regular, d, 0o644, 0, ""),
            Entry::Owned(p, d, m, u) => (p, EntryType::Regular, d, m, u, ""),
            Entry::Dir(p) => (p, EntryType::Directory, b"", 0o755, 0, ""),
            Entry::Symlink(p, t) => (p, EntryType::Symlink, b"", 0o777, 0, t),
            Entry::HardLink(p, t) => (p, EntryType::Link, b"", 0o644, 0, t),
            Entry::CharDevice(p) => (p, EntryType::Char, b"", 0o666, 0, ""),
        };
        let mut h = Header::new_gnu();
        {
            let old = h.as_old_mut();
            old.name[..path.len()].copy_from_slice(path.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append(&h, data).expect("append to a Vec");
    }
    b.into_inner().expect("finish a Vec")
}

/// `data` gzip-compressed.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("compress into a Vec");
    e.finish().expect("compress into a Vec")
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// An image config (linux/amd64) with `env`, `cmd`, `working_dir` and
/// `user`, for layers whose uncompressed tars are `tars`.
pub fn config(
    tars: &[&[u8]],
    env: &[&str],
    cmd: &[&str],
    working_dir: &str,
    user: &str,
) -> Vec<u8> {
    let diff_ids: Vec<String> = tars.iter().map(|t| digest(t)).collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Cmd": cmd, "WorkingDir": working_dir, "User": user},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("serialise")
}

/// Writes an OCI layout to `dir`: `blobs` are the layer blobs as stored
/// (compressed or not), in order.
pub fn oci_layout(dir: &Path, config: &[u8], blobs: &[Vec<u8>]) {
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).expect("create blobs/sha256");
    let put = |data: &[u8]| {
        let d = digest(data);
        fs::write(blob_dir.join(&d[7..]), data).expect("write blob");
        serde_json::json!({"digest": d, "size": data.len()})
    };
    let mut cfg = put(config);
    cfg["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    let layers: Vec<_> = blobs
        .iter()
        .map(|b| {
            let mut d = put(b);
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip".into();
            d
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg,
        "layers": layers,
    }))
    .expect("serialise");
    let mut m = put(&manifest);
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    m["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [m]});
    fs::write(dir.join("index.json"), index.to_string()).expect("write index.json");
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

/// Tars the directory `dir` into `out` (an `oci-archive` of a layout).
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(fs::File::create(out).expect("create archive"));
    b.append_dir_all(".", dir).expect("tar the layout");
    b.finish().expect("finish the archive");
}

/// Writes a `docker save` archive to `out`; `tars` are uncompressed layers.
pub fn docker_archive(out: &Path, config: &[u8], tars: &[&[u8]]) {
    let mut b = tar::Builder::new(fs::File::create(out).expect("create archive"));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, name, data).expect("append");
    };
    let config_name = format!("{}.json", &digest(config)[7..]);
    add(&config_name, config);
    let mut layers = Vec::new();
    for t in tars {
        let name = format!("{}/layer.tar", &digest(t)[7..]);
        add(&name, t);
        layers.push(name);
    }
    let manifest =
        serde_json::json!([{"Config": config_name, "RepoTags": ["test:latest"], "Layers": layers}]);
    add("manifest.json", manifest.to_string().as_bytes());
    b.into_inner().expect("finish the archive");
}
