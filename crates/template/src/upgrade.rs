//! Brings templates of the unversioned layout (`<name>/template.json` and
//! `<name>/rootfs/`) into the versioned one when a store opens.
//!
//! Under the template's lock (a template locked by someone else is left
//! for a later open): the root filesystem's content address is computed,
//! `rootfs/` moves to `.<name>.upgrade/rootfs/` and `version.json` is
//! written beside it, that directory becomes `<name>/v/<version>/`, the
//! index tags it `latest`, and `template.json` goes last. Each step is one
//! rename or one atomic write, and a crash between two is resumed by the
//! next open from whichever of `rootfs/` and `.<name>.upgrade/` exists.

use std::fs;
use std::path::Path;

use serde::Deserialize;
use time::OffsetDateTime;

use crate::digest;
use crate::error::TemplateError;
use crate::fsutil;
use crate::lock;
use crate::meta::{self, Failure, VersionMeta};
use crate::oci::ImageConfig;
use crate::recipe::Recipe;
use crate::reference::LATEST;
use crate::store::TemplateStore;

const LEGACY_FILE: &str = "template.json";

/// `template.json` of the unversioned layout.
#[derive(Deserialize)]
struct Legacy {
    status: String,
    #[serde(with = "time::serde::rfc3339::option", default)]
    built_at: Option<OffsetDateTime>,
    recipe: Option<Recipe>,
    #[serde(default)]
    image: Option<ImageConfig>,
    #[serde(default)]
    error: Option<String>,
}

pub(crate) fn all(store: &TemplateStore) -> Result<(), TemplateError> {
    for name in store.names()? {
        let tdir = store.template_dir(&name);
        if !tdir.join(LEGACY_FILE).exists() {
            continue;
        }
        let Some(_lock) = lock::try_acquire(&lock::path(store.dir(), &name))? else {
            continue;
        };
        one(store, &name, &tdir)?;
    }
    Ok(())
}

fn one(store: &TemplateStore, name: &str, tdir: &Path) -> Result<(), TemplateError> {
    let legacy_path = tdir.join(LEGACY_FILE);
    let Some(legacy) = meta::read::<Legacy>(&legacy_path)? else {
        return Ok(());
    };
    let mut index = store.index(name)?;
    let staging = store.dir().join(format!(".{name}.upgrade"));
    let rootfs = tdir.join("rootfs");
    if legacy.status == "ready" && (rootfs.exists() || staging.exists()) {
        if rootfs.exists() {
            fsutil::remove_tree(&staging).map_err(TemplateError::io("remove", &staging))?;
            fs::create_dir(&staging).map_err(TemplateError::io("create", &staging))?;
            fs::rename(&rootfs, staging.join("rootfs"))
                .map_err(TemplateError::io("move aside", &rootfs))?;
        }
        let moved = staging.join("rootfs");
        let version = digest::version_of(&moved).map_err(TemplateError::io("read", &moved))?;
        tracing::info!(
            template = name,
            version,
            "giving a template of the old layout its version"
        );
        let m = VersionMeta {
            version: version.clone(),
            size_bytes: fsutil::disk_usage(&moved).map_err(TemplateError::io("measure", &moved))?,
            built_at: legacy.built_at.unwrap_or_else(OffsetDateTime::now_utc),
            recipe: legacy.recipe,
            image: legacy.image,
            start: None,
        };
        meta::write(&staging, meta::VERSION_FILE, &m)?;
        let versions = tdir.join(meta::VERSIONS_DIR);
        fs::create_dir_all(&versions).map_err(TemplateError::io("create", &versions))?;
        let dest = versions.join(&version);
        fsutil::remove_tree(&dest).map_err(TemplateError::io("remove", &dest))?;
        fs::rename(&staging, &dest).map_err(TemplateError::io("move into place", &staging))?;
        meta::sync_dir(&versions)?;
        index.tags.insert(LATEST.into(), version);
    } else if legacy.status == "failed" {
        index.failure = Some(Failure {
            at: legacy.built_at.unwrap_or_else(OffsetDateTime::now_utc),
            error: legacy.error.unwrap_or_default(),
            recipe: legacy.recipe,
        });
    }
    meta::write(tdir, meta::INDEX_FILE, &index)?;
    fs::remove_file(&legacy_path).map_err(TemplateError::io("remove", &legacy_path))?;
    meta::sync_dir(tdir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(dir: &Path, name: &str) {
        let tdir = dir.join(name);
        fs::create_dir_all(tdir.join("rootfs/etc")).unwrap();
        fs::write(tdir.join("rootfs/etc/hostname"), "box\n").unwrap();
        fs::write(
            tdir.join(LEGACY_FILE),
            r#"{"name":"tiny","status":"ready","size_bytes":4,"built_at":"2026-01-01T00:00:00Z","recipe":"tiny"}"#,
        )
        .unwrap();
    }

    #[test]
    fn an_old_template_becomes_its_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        legacy(dir.path(), "tiny");
        let store = TemplateStore::new(dir.path()).unwrap();
        let t = store.ready("tiny").unwrap();
        let version = t.version.clone().unwrap();
        assert_eq!(t.tags, ["latest"]);
        assert_eq!(t.recipe, Some(Recipe::Tiny));
        assert_eq!(
            fs::read_to_string(t.rootfs.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert!(!dir.path().join("tiny").join(LEGACY_FILE).exists());
        assert!(!dir.path().join("tiny/rootfs").exists());
        // Opening again changes nothing.
        let again = TemplateStore::new(dir.path()).unwrap();
        assert_eq!(again.ready("tiny").unwrap().version, Some(version));
    }

    #[test]
    fn a_crash_after_moving_the_root_filesystem_is_resumed() {
        let dir = tempfile::tempdir().unwrap();
        legacy(dir.path(), "tiny");
        let staging = dir.path().join(".tiny.upgrade");
        fs::create_dir(&staging).unwrap();
        fs::rename(dir.path().join("tiny/rootfs"), staging.join("rootfs")).unwrap();
        let store = TemplateStore::new(dir.path()).unwrap();
        let t = store.ready("tiny").unwrap();
        assert_eq!(
            fs::read_to_string(t.rootfs.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert!(!staging.exists());
    }
}
