//! Tags and the life of versions: tagging, removing and collecting.
//!
//! A version lives while a tag names it or something uses it. Removing a
//! template or a version only takes tags away, at once (new sandboxes can
//! no longer start from it); [`TemplateStore::collect`] deletes a version
//! that no tag names and that the caller says nothing uses, and a template
//! directory once it has neither tags nor versions. The caller owns "in
//! use" (sandbox and snapshot rows name versions) and keeps the race with
//! a create that has resolved a version but not yet recorded it: it only
//! reports versions unused that were unused a while.

use std::fs;

use crate::error::TemplateError;
use crate::fsutil;
use crate::lock;
use crate::meta::{self, Template};
use crate::progress::Progress;
use crate::reference::{LATEST, Selector, TemplateRef, validate_tag};
use crate::store::{REMOVING_MARK, TemplateStore};

impl TemplateStore {
    /// Points `tag` of the template at the version `target` names.
    pub async fn tag(&self, target: &str, tag: &str) -> Result<Template, TemplateError> {
        let r = TemplateRef::parse(target)?;
        validate_tag(tag)?;
        let _lock = self.lock(&r.name).await?;
        let t = self.resolve(&r)?;
        let version = t.version.clone().unwrap_or_default();
        let mut index = self.index(&r.name)?;
        index.tags.insert(tag.to_owned(), version.clone());
        meta::write(&self.template_dir(&r.name), meta::INDEX_FILE, &index)?;
        self.version(&r.name, &version)
    }

    /// Takes away what `reference` names: a tag (`NAME:TAG`; not `latest`,
    /// which only moves), every tag of a version (`NAME@VERSION`), or the
    /// whole template (`NAME`: every tag and a recorded failure). Returns
    /// the versions no tag names any more.
    pub async fn remove(&self, reference: &str) -> Result<Vec<String>, TemplateError> {
        let r = TemplateRef::parse(reference)?;
        let _lock = self.lock(&r.name).await?;
        let mut index = self.index(&r.name)?;
        let exists = !index.tags.is_empty()
            || index.failure.is_some()
            || !self.version_ids(&r.name)?.is_empty();
        if !exists {
            return Err(TemplateError::NotFound { name: r.name });
        }
        match &r.selector {
            Selector::Tag(tag) if tag == LATEST => {
                index.tags.clear();
                index.failure = None;
            }
            Selector::Tag(tag) => {
                if index.tags.remove(tag).is_none() {
                    return Err(TemplateError::NoSuchVersion {
                        reference: r.to_string(),
                        known: index.tags.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            }
            Selector::Version(v) => {
                self.resolve(&r)?;
                if index.tags.get(LATEST) == Some(v) {
                    return Err(TemplateError::LatestVersion {
                        reference: r.to_string(),
                        name: r.name.clone(),
                    });
                }
                index.tags.retain(|_, tagged| tagged != v);
            }
        }
        meta::write(&self.template_dir(&r.name), meta::INDEX_FILE, &index)?;
        let untagged = self
            .version_ids(&r.name)?
            .into_iter()
            .filter(|v| index.tags_of(v).is_empty())
            .collect();
        Ok(untagged)
    }

    /// Deletes the versions of `name` that no tag names and for which
    /// `in_use` says no; then the template's directory if nothing is left.
    /// Skips a template whose lock is held (a build or removal is running).
    /// Returns the versions deleted.
    pub fn collect(
        &self,
        name: &str,
        in_use: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, TemplateError> {
        let Some(_lock) = lock::try_acquire(&lock::path(self.dir(), name))? else {
            return Ok(Vec::new());
        };
        let index = self.index(name)?;
        let mut deleted = Vec::new();
        for version in self.version_ids(name)? {
            if !index.tags_of(&version).is_empty() || in_use(&version) {
                continue;
            }
            self.delete(name, &self.version_dir(name, &version))?;
            deleted.push(version);
        }
        let tdir = self.template_dir(name);
        if index.tags.is_empty()
            && index.failure.is_none()
            && self.version_ids(name)?.is_empty()
            && tdir.exists()
        {
            self.delete(name, &tdir)?;
        }
        Ok(deleted)
    }

    /// Moves `path` aside under a removal name, then deletes it.
    fn delete(&self, name: &str, path: &std::path::Path) -> Result<(), TemplateError> {
        let doomed = self
            .dir()
            .join(format!(".{name}{REMOVING_MARK}{}", crate::store::nonce()));
        fs::rename(path, &doomed).map_err(TemplateError::io("move aside", path))?;
        fsutil::remove_tree(&doomed).map_err(TemplateError::io("remove", &doomed))
    }

    async fn lock(&self, name: &str) -> Result<lock::BuildLock, TemplateError> {
        let progress = Progress::new(tokio::sync::mpsc::channel(1).0);
        lock::acquire(&lock::path(self.dir(), name), name, &progress).await
    }
}
