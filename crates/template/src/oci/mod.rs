//! Importing OCI and Docker images as templates.
//!
//! Sources: an OCI layout directory (`oci:DIR`), a tar of one
//! (`oci-archive:PATH`) or a `docker save` archive (`docker-archive:PATH`).
//! The image is read ([`layout`], [`docker`]), every blob checked against
//! its sha256 digest, the layers applied in order to an empty root
//! ([`apply`]; gzip or uncompressed, detected by their first bytes), and
//! the root made fit for Warren ([`prepare`]: the `user` account, `/tmp`).
//! The config's Env, WorkingDir, User, Entrypoint and Cmd are kept
//! ([`ImageConfig`]).
//!
//! Everything here is blocking; the store runs it on a worker thread.

mod apply;
mod budget;
mod config;
mod digest;
mod docker;
mod error;
pub(crate) mod fsat;
mod layout;
mod prepare;
mod source;
pub mod testing;
mod whiteout;

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use apply::{Applier, LayerStats, Limits};
pub use config::ImageConfig;
pub use error::OciError;

use digest::{Digest, Hashing};
use source::Files;

/// Largest JSON document (index, manifest, config) read.
const MAX_JSON: u64 = 16 << 20;

/// How an image is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A tar of an OCI image layout.
    OciArchive,
    /// An OCI image layout directory.
    OciDir,
    /// A `docker save` tar.
    DockerArchive,
}

impl ImageFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OciArchive => "oci-archive",
            Self::OciDir => "oci",
            Self::DockerArchive => "docker-archive",
        }
    }
}

impl FromStr for ImageFormat {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, OciError> {
        [Self::OciArchive, Self::OciDir, Self::DockerArchive]
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                OciError::invalid(format!(
                    "unknown image format {s:?}; use oci-archive, oci or docker-archive"
                ))
            })
    }
}

/// An image on this host: `FORMAT:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSource {
    pub format: ImageFormat,
    pub path: PathBuf,
}

impl FromStr for ImageSource {
    type Err = OciError;
    fn from_str(s: &str) -> Result<Self, OciError> {
        let (format, path) = s.split_once(':').ok_or_else(|| {
            OciError::invalid(format!(
                "{s:?} names no format; write oci-archive:PATH, oci:DIR or docker-archive:PATH"
            ))
        })?;
        if path.is_empty() {
            return Err(OciError::invalid(format!("{s:?} names no path")));
        }
        Ok(Self {
            format: format.parse()?,
            path: PathBuf::from(path),
        })
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.format.as_str(), self.path.display())
    }
}

/// An image's config and layers, as its manifest lists them.
pub(crate) struct Image {
    config_digest: Digest,
    config: Vec<u8>,
    layers: Vec<LayerRef>,
}

/// One layer: where its blob is, and what to check it against.
pub(crate) struct LayerRef {
    path: String,
    /// The blob's own digest (OCI layouts); checked before it is applied.
    digest: Option<Digest>,
    size: Option<u64>,
}

/// Imports `source` into `rootfs` (which must not exist yet) and returns
/// the image's config. `log` gets a line per step.
pub fn import(
    source: &ImageSource,
    rootfs: &Path,
    limits: Limits,
    log: &mut dyn FnMut(String),
) -> Result<ImageConfig, OciError> {
    let files = match source.format {
        ImageFormat::OciDir => Files::dir(&source.path),
        _ => Files::archive(&source.path)?,
    };
    let image = match source.format {
        ImageFormat::DockerArchive => docker::read(&files)?,
        _ if !files.has("index.json") => {
            return Err(OciError::invalid(
                "no index.json: not an OCI image layout (for `docker save` output use docker-archive:)",
            ));
        }
        _ => layout::read(&files)?,
    };
    let (config, diff_ids) = config::parse(&image.config, &image.config_digest)?;
    if diff_ids.len() != image.layers.len() {
        return Err(OciError::invalid(format!(
            "the config lists {} layer digests, the manifest {} layers",
            diff_ids.len(),
            image.layers.len()
        )));
    }
    fs::create_dir(rootfs).map_err(OciError::io(format!("create {}", rootfs.display())))?;
    fs::set_permissions(rootfs, fs::Permissions::from_mode(0o755)).map_err(OciError::io(
        format!("set permissions of {}", rootfs.display()),
    ))?;
    let mut applier = Applier::new(rootfs, limits)?;
    let total = image.layers.len();
    for (i, (layer, diff_id)) in image.layers.iter().zip(&diff_ids).enumerate() {
        let n = i + 1;
        if let Some(digest) = &layer.digest {
            verify_blob(&files, layer, digest)?;
        }
        let (blob, _) = files.open(&layer.path)?;
        let mut tar = Hashing::new(decompress(blob, &layer.path)?);
        let stats = applier.apply(n, &mut tar)?;
        tar.finish(&format!("{} (uncompressed)", layer.path), diff_id)?;
        log(format!(
            "layer {n}/{total} {}: {} entries, {:.1} MB, {} whiteouts{}",
            short(layer.digest.as_ref().unwrap_or(diff_id)),
            stats.entries,
            stats.bytes as f64 / 1e6,
            stats.whiteouts,
            match stats.skipped_devices {
                0 => String::new(),
                d => format!(", {d} device nodes skipped"),
            }
        ));
    }
    prepare::prepare(rootfs)?;
    Ok(config)
}

fn short(d: &Digest) -> &str {
    &d.hex()[..12]
}

/// Checks a layer blob against its descriptor before anything of it is used.
fn verify_blob(files: &Files, layer: &LayerRef, digest: &Digest) -> Result<(), OciError> {
    let (blob, len) = files.open(&layer.path)?;
    if let Some(size) = layer.size
        && size != len
    {
        return Err(OciError::invalid(format!(
            "blob {} is {len} bytes, its descriptor says {size}",
            layer.path
        )));
    }
    Hashing::new(blob).finish(&layer.path, digest)
}

/// Wraps `blob` (named `path` in errors) in the decompressor its first
/// bytes call for: gzip or none.
pub fn decompress(
    mut blob: Box<dyn Read + Send>,
    path: &str,
) -> Result<Box<dyn Read + Send>, OciError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match blob.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(OciError::io(format!("read {path}"))(e)),
        }
    }
    let head = io::Cursor::new(magic[..got].to_vec());
    let whole = head.chain(blob);
    match &magic[..got] {
        [0x1f, 0x8b, ..] => Ok(Box::new(flate2::read::MultiGzDecoder::new(whole))),
        [0x28, 0xb5, 0x2f, 0xfd] => Err(OciError::invalid(format!(
            "layer {path} is zstd-compressed; Warren reads gzip and uncompressed layers (re-save the image with gzip)"
        ))),
        _ => Ok(Box::new(whole)),
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
