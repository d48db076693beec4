//! What is written about a template, and where.
//!
//! ```text
//! <name>/index.json               Index: tags → versions, the last failed build
//! <name>/v/<version>/version.json VersionMeta: how the version was made
//! <name>/v/<version>/rootfs/      its root filesystem, never changed
//! ```
//! Both files are written only under the template's lock, always as
//! write-to-temporary, fsync, rename, fsync directory: a reader sees the old
//! file or the new one, never a torn one. A version directory appears by
//! one rename with both its parts inside, so a version that exists is
//! complete. A template is ready iff its index tags a version `latest`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::TemplateError;
use crate::oci::ImageConfig;
use crate::recipe::{Recipe, StartCommand};
use crate::reference::LATEST;

pub(crate) const INDEX_FILE: &str = "index.json";
pub(crate) const VERSION_FILE: &str = "version.json";
pub(crate) const VERSIONS_DIR: &str = "v";
/// Suffix of a metadata file while it is being written.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Where a template stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A version is tagged `latest`: sandboxes can start from it.
    Ready,
    /// Some process holds the template's lock (building, importing or
    /// removing) and no version is ready. Never written to disk: it is read
    /// from the lock, so a crashed build cannot leave it.
    Building,
    /// The last build failed and no version is ready.
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

/// `<name>/index.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Index {
    /// Tag → version id.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The last build that failed, if none succeeded after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The last Dockerfile build: its inputs' key and the version it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_build: Option<LastBuild>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LastBuild {
    pub key: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Failure {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
}

impl Index {
    /// The tags that name `version`, sorted.
    pub fn tags_of(&self, version: &str) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| *v == version)
            .map(|(t, _)| t.clone())
            .collect()
    }

    pub fn latest(&self) -> Option<&str> {
        self.tags.get(LATEST).map(String::as_str)
    }
}

/// `<name>/v/<version>/version.json`: how a version was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VersionMeta {
    pub version: String,
    /// Disk usage of the root filesystem (hard links counted once).
    pub size_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub built_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<Recipe>,
    /// The image config an import or a Dockerfile build left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageConfig>,
    /// A start command other than the recipe's (Dockerfile builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartCommand>,
}

/// A template version as callers see it, or a template with no ready
/// version (building or failed; then `version` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub version: Option<String>,
    /// Tags naming this version, sorted.
    pub tags: Vec<String>,
    pub status: Status,
    /// Disk usage of the root filesystem (hard links counted once).
    pub size_bytes: u64,
    /// When the version was built (or the failed build ended).
    pub built_at: Option<OffsetDateTime>,
    pub recipe: Option<Recipe>,
    /// What an imported image's or a Dockerfile build's config says.
    pub image: Option<ImageConfig>,
    start: Option<StartCommand>,
    /// Why the last build failed, for `failed` templates.
    pub error: Option<String>,
    /// The version's root filesystem.
    pub rootfs: PathBuf,
}

impl Template {
    /// The limits of this template's sandboxes that ask for none (see
    /// [`Recipe::sandbox_defaults`]); the daemon's for other templates.
    pub fn sandbox_defaults(&self, daemon: &warren_core::Limits) -> warren_core::Limits {
        self.recipe
            .map_or(*daemon, |recipe| recipe.sandbox_defaults(daemon))
    }
}

impl Template {
    pub(crate) fn of_version(name: &str, dir: &Path, meta: VersionMeta, index: &Index) -> Self {
        Self {
            name: name.to_owned(),
            tags: index.tags_of(&meta.version),
            version: Some(meta.version),
            status: Status::Ready,
            size_bytes: meta.size_bytes,
            built_at: Some(meta.built_at),
            recipe: meta.recipe,
            image: meta.image,
            start: meta.start,
            error: None,
            rootfs: dir.join("rootfs"),
        }
    }

    pub(crate) fn unready(name: &str, status: Status, failure: Option<&Failure>) -> Self {
        Self {
            name: name.to_owned(),
            version: None,
            tags: Vec::new(),
            status,
            size_bytes: 0,
            built_at: failure.map(|f| f.at),
            recipe: failure
                .and_then(|f| f.recipe)
                .or_else(|| Recipe::for_template(name).ok()),
            image: None,
            start: None,
            error: failure.map(|f| f.error.clone()),
            rootfs: PathBuf::new(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status == Status::Ready
    }

    /// The environment every sandbox of this version starts with (an image's
    /// `Env`); a create's own `env` goes over it.
    pub fn default_env(&self) -> BTreeMap<String, String> {
        self.image
            .as_ref()
            .map(|i| i.env.clone())
            .unwrap_or_default()
    }

    /// The command every sandbox booted from this version starts with.
    pub fn start(&self) -> Option<StartCommand> {
        self.start
            .clone()
            .or_else(|| self.recipe.and_then(Recipe::start))
    }

    /// `NAME@VERSION`, or the name alone for a template with no version.
    pub fn reference(&self) -> String {
        match &self.version {
            Some(v) => format!("{}@{v}", self.name),
            None => self.name.clone(),
        }
    }

    /// `built_at` as RFC 3339, as the API shows it.
    pub fn built_at_rfc3339(&self) -> Option<String> {
        self.built_at.map(warren_core::rfc3339)
    }
}

/// Reads and parses `path`; `Ok(None)` when there is no such file.
pub(crate) fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, TemplateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TemplateError::io("read", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| TemplateError::Metadata {
            path: path.to_path_buf(),
            source,
        })
}

/// Atomically replaces `dir/file` with `value` as JSON.
pub(crate) fn write<T: Serialize>(dir: &Path, file: &str, value: &T) -> Result<(), TemplateError> {
    let dest = dir.join(file);
    let tmp = dir.join(format!("{file}{TMP_SUFFIX}"));
    let json = serde_json::to_vec_pretty(value).map_err(|source| TemplateError::Metadata {
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
    sync_dir(dir)
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

    #[test]
    fn round_trips_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let meta = VersionMeta {
            version: "0123456789abcdef".into(),
            size_bytes: 42,
            built_at: OffsetDateTime::UNIX_EPOCH,
            recipe: Some(Recipe::Tiny),
            image: None,
            start: None,
        };
        write(dir.path(), VERSION_FILE, &meta).unwrap();
        assert_eq!(
            read::<VersionMeta>(&dir.path().join(VERSION_FILE)).unwrap(),
            Some(meta)
        );
        assert!(!dir.path().join("version.json.tmp").exists());
        let text = fs::read_to_string(dir.path().join(VERSION_FILE)).unwrap();
        assert!(
            text.contains("\"built_at\": \"1970-01-01T00:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("\"recipe\": \"tiny\""), "{text}");
    }

    #[test]
    fn missing_is_none_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(INDEX_FILE);
        assert_eq!(read::<Index>(&path).unwrap(), None);
        fs::write(&path, "{\"tags\":").unwrap();
        let err = read::<Index>(&path).unwrap_err().to_string();
        assert!(
            err.contains("remove the template and build it again"),
            "{err}"
        );
    }

    #[test]
    fn index_lists_the_tags_of_a_version() {
        let mut index = Index::default();
        index.tags.insert("latest".into(), "b".into());
        index.tags.insert("stable".into(), "a".into());
        index.tags.insert("v2".into(), "b".into());
        assert_eq!(index.tags_of("b"), ["latest", "v2"]);
        assert_eq!(index.latest(), Some("b"));
    }
}
