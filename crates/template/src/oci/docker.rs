//! `docker save` archives: `manifest.json` lists images as `{Config,
//! RepoTags, Layers}`; the config is named by its digest and lists the
//! layers' uncompressed digests (`rootfs.diff_ids`), against which each
//! layer is checked as it is applied. Exactly one image per archive.

use serde::Deserialize;

use super::digest::{Digest, verify_bytes};
use super::error::OciError;
use super::source::Files;
use super::{Image, LayerRef, MAX_JSON};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    layers: Vec<String>,
}

/// Reads the image of a docker archive.
pub(crate) fn read(files: &Files) -> Result<Image, OciError> {
    let bytes = files.read_small("manifest.json", MAX_JSON)?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes)
        .map_err(|e| OciError::invalid(format!("manifest.json: {e}")))?;
    let n = entries.len();
    let Ok([entry]) = <[Entry; 1]>::try_from(entries) else {
        return Err(OciError::invalid(format!(
            "the archive holds {n} images; import takes exactly one"
        )));
    };
    let digest = config_digest(&entry.config)?;
    let config = files.read_small(&entry.config, MAX_JSON)?;
    verify_bytes(&entry.config, &config, &digest)?;
    Ok(Image {
        config_digest: digest,
        config,
        layers: entry
            .layers
            .into_iter()
            .map(|path| LayerRef {
                path,
                digest: None,
                size: None,
            })
            .collect(),
    })
}

/// Docker names a config `<hex>.json` or `blobs/sha256/<hex>`.
fn config_digest(name: &str) -> Result<Digest, OciError> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let hex = base.strip_suffix(".json").unwrap_or(base);
    Digest::parse(&format!("sha256:{hex}"))
        .map_err(|_| OciError::invalid(format!("config {name} is not named by its digest")))
}
