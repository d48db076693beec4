//! `template.json`: what a template is and whether it is ready.
//!
//! Written only by the build that holds the template's lock, always as
//! write-to-temporary, fsync, rename, fsync directory: a reader sees the old
//! file or the new one, never a torn one. A template is ready iff its
//! `template.json` says `"status": "ready"`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::TemplateError;
use crate::oci::ImageConfig;
use crate::recipe::Recipe;

/// File name of the metadata inside a template's directory.
pub(crate) const META_FILE: &str = "template.json";
/// Temporary name the metadata is written under before the rename.
pub(crate) const META_TMP: &str = "template.json.tmp";

/// Where a template stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Built and published; its root filesystem can be used.
    Ready,
    /// Some process holds the template's build lock right now. Never written
    /// to disk: it is read from the lock, so a crashed build cannot leave it.
    Building,
    /// The last build failed and no ready version exists.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Building => "building",
            Self::Failed => "failed",
        }
    }
}

/// A template as stored in `template.json`, plus where its root filesystem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub status: Status,
    /// Disk usage of the root filesystem (hard links counted once).
    pub size_bytes: u64,
    /// When the build finished (ready or failed).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub built_at: Option<OffsetDateTime>,
    pub recipe: Option<Recipe>,
    /// What an imported image's config says (`None` for recipe builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageConfig>,
    /// Why the last build failed, for `failed` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The template's root filesystem (derived from the store's directory).
    #[serde(skip)]
    pub rootfs: PathBuf,
}

impl Template {
    pub fn is_ready(&self) -> bool {
        self.status == Status::Ready
    }

    /// `built_at` as RFC 3339, as the API shows it.
    pub fn built_at_rfc3339(&self) -> Option<String> {
        self.built_at.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
    }
}

/// Reads `<template_dir>/template.json`; `Ok(None)` when there is none.
pub(crate) fn read(template_dir: &Path) -> Result<Option<Template>, TemplateError> {
    let path = template_dir.join(META_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TemplateError::io("read", &path)(e)),
    };
    let mut t: Template = serde_json::from_slice(&bytes)
        .map_err(|source| TemplateError::Metadata { path, source })?;
    t.rootfs = template_dir.join("rootfs");
    Ok(Some(t))
}

/// Atomically replaces `<template_dir>/template.json` with `t`.
pub(crate) fn write(template_dir: &Path, t: &Template) -> Result<(), TemplateError> {
    let tmp = template_dir.join(META_TMP);
    let dest = template_dir.join(META_FILE);
    let json = serde_json::to_vec_pretty(t).map_err(|source| TemplateError::Metadata {
        path: dest.clone(),
        source,
    })?;
    let mut f = File::create(&tmp).map_err(TemplateError::io("create", &tmp))?;
    f.write_all(&json)
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(TemplateError::io("write", &tmp))?;
    drop(f);
    fs::rename(&tmp, &dest).map_err(TemplateError::io("publish", &dest))?;
    sync_dir(template_dir)
}

/// Makes renames inside `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), TemplateError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(TemplateError::io("sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path) -> Template {
        Template {
            name: "tiny".into(),
            status: Status::Ready,
            size_bytes: 42,
            built_at: Some(OffsetDateTime::UNIX_EPOCH),
            recipe: Some(Recipe::Tiny),
            image: None,
            error: None,
            rootfs: dir.join("rootfs"),
        }
    }

    #[test]
    fn round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let t = sample(dir.path());
        write(dir.path(), &t).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(t));
        assert!(!dir.path().join(META_TMP).exists());
        let text = fs::read_to_string(dir.path().join(META_FILE)).unwrap();
        assert!(
            text.contains("\"built_at\": \"1970-01-01T00:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("\"recipe\": \"tiny\""), "{text}");
    }

    #[test]
    fn missing_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        fs::write(dir.path().join(META_FILE), "{\"name\":").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("remove the template and build it again"),
            "{err}"
        );
    }
}
