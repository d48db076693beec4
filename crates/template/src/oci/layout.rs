//! OCI image layouts (image-spec "Image Layout"): `index.json` names
//! manifests (or nested indexes) by digest; the manifest names the config
//! and the layers. Every blob is checked against its digest and size before
//! it is used. From an index, the linux/amd64 manifest is taken (or the one
//! manifest without a platform); anything else is ambiguous and refused.

use serde::Deserialize;

use super::digest::{Digest, verify_bytes};
use super::error::OciError;
use super::source::Files;
use super::{Image, LayerRef, MAX_JSON};

/// Nested indexes followed at most.
const MAX_DEPTH: usize = 4;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Reads the image of an OCI layout.
pub(crate) fn read(files: &Files) -> Result<Image, OciError> {
    let index = files.read_small("index.json", MAX_JSON)?;
    let mut doc: Document = parse("index.json", &index)?;
    for _ in 0..MAX_DEPTH {
        if let Some(config) = doc.config {
            return image(files, config, doc.layers);
        }
        let manifests = doc
            .manifests
            .ok_or_else(|| OciError::invalid("an index names neither manifests nor a config"))?;
        let chosen = choose(manifests)?;
        let digest = Digest::parse(&chosen.digest)?;
        let bytes = blob(files, &digest, chosen.size, MAX_JSON)?;
        doc = parse(digest.as_str(), &bytes)?;
    }
    Err(OciError::invalid("indexes are nested too deeply"))
}

fn choose(manifests: Vec<Descriptor>) -> Result<Descriptor, OciError> {
    let is_manifest = |d: &Descriptor| !d.media_type.contains("attestation");
    let mut amd64: Vec<Descriptor> = Vec::new();
    let mut unplatformed: Vec<Descriptor> = Vec::new();
    for d in manifests.into_iter().filter(is_manifest) {
        match &d.platform {
            Some(p) if p.os == "linux" && p.architecture == "amd64" => amd64.push(d),
            Some(_) => {}
            None => unplatformed.push(d),
        }
    }
    let pick = if amd64.is_empty() {
        unplatformed
    } else {
        amd64
    };
    let n = pick.len();
    match <[Descriptor; 1]>::try_from(pick) {
        Ok([d]) => Ok(d),
        Err(_) if n == 0 => Err(OciError::invalid("the index has no linux/amd64 image")),
        Err(_) => Err(OciError::invalid(format!(
            "the index has {n} linux/amd64 images; import one at a time"
        ))),
    }
}

fn image(files: &Files, config: Descriptor, layers: Vec<Descriptor>) -> Result<Image, OciError> {
    let digest = Digest::parse(&config.digest)?;
    let config_json = blob(files, &digest, config.size, MAX_JSON)?;
    let layers = layers
        .into_iter()
        .map(|l| {
            let digest = Digest::parse(&l.digest)?;
            Ok(LayerRef {
                path: digest.blob_path(),
                digest: Some(digest),
                size: Some(l.size),
            })
        })
        .collect::<Result<_, OciError>>()?;
    Ok(Image {
        config_digest: digest,
        config: config_json,
        layers,
    })
}

/// A small blob, read and verified.
fn blob(files: &Files, digest: &Digest, size: u64, max: u64) -> Result<Vec<u8>, OciError> {
    let path = digest.blob_path();
    let bytes = files.read_small(&path, max)?;
    if bytes.len() as u64 != size {
        return Err(OciError::invalid(format!(
            "blob {path} is {} bytes, its descriptor says {size}",
            bytes.len()
        )));
    }
    verify_bytes(&path, &bytes, digest)?;
    Ok(bytes)
}

fn parse(what: &str, bytes: &[u8]) -> Result<Document, OciError> {
    serde_json::from_slice(bytes).map_err(|e| OciError::invalid(format!("{what}: {e}")))
}
