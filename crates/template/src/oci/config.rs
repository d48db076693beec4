//! The parts of an image's config a template keeps: Env, WorkingDir, User,
//! Entrypoint and Cmd (stored in `template.json` as `image`), plus the
//! platform check (linux/amd64 only) and the layers' `diff_ids`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::OciError;

/// What an imported image says about how to run it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// The config blob's digest.
    pub digest: String,
    /// Default environment of every sandbox from the template (a create's
    /// own `env` wins).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
}

#[derive(Deserialize)]
struct Raw {
    architecture: Option<String>,
    os: Option<String>,
    #[serde(default)]
    config: Option<RawRun>,
    rootfs: Option<RawRootfs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawRun {
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// Parses a config blob (already verified against `digest`); returns what
/// the template keeps and the layers' uncompressed digests.
pub(crate) fn parse(json: &[u8], digest: &Digest) -> Result<(ImageConfig, Vec<Digest>), OciError> {
    let raw: Raw = serde_json::from_slice(json)
        .map_err(|e| OciError::invalid(format!("image config {}: {e}", digest.as_str())))?;
    let os = raw.os.as_deref().unwrap_or("linux");
    let arch = raw.architecture.as_deref().unwrap_or("amd64");
    if os != "linux" || arch != "amd64" {
        return Err(OciError::invalid(format!(
            "the image is for {os}/{arch}; Warren runs linux/amd64 images"
        )));
    }
    let run = raw.config.unwrap_or_default();
    let mut env = BTreeMap::new();
    for pair in run.env.unwrap_or_default() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| OciError::invalid(format!("image Env entry {pair:?} has no '='")))?;
        env.insert(k.to_owned(), v.to_owned());
    }
    warren_core::spec::validate_env(&env)
        .map_err(|e| OciError::invalid(format!("image Env: {}", e.message)))?;
    let diff_ids = raw
        .rootfs
        .map(|r| r.diff_ids)
        .unwrap_or_default()
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<_, _>>()?;
    let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok((
        ImageConfig {
            digest: digest.as_str().to_owned(),
            env,
            working_dir: nonempty(run.working_dir),
            user: nonempty(run.user),
            entrypoint: run.entrypoint.unwrap_or_default(),
            cmd: run.cmd.unwrap_or_default(),
        },
        diff_ids,
    ))
}
