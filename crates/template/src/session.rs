//! Builds made outside the store: a [`BuildSession`] holds the template's
//! lock and a work directory; its owner fills `rootfs()` (say, step by step
//! in sandboxes, for a Dockerfile) and publishes it as a version exactly as
//! a recipe build would be, or drops the session to throw it away.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::sync::mpsc::Sender;

use crate::error::TemplateError;
use crate::lock::{self, BuildLock};
use crate::meta::Template;
use crate::oci::ImageConfig;
use crate::progress::Progress;
use crate::recipe::StartCommand;
use crate::store::{Made, TemplateStore};

/// A build in progress; see the module docs.
pub struct BuildSession {
    store: TemplateStore,
    name: String,
    work: PathBuf,
    progress: Progress,
    started: Instant,
    _lock: BuildLock,
}

/// What a build says about running its result.
#[derive(Debug, Clone, Default)]
pub struct BuildConfig {
    pub image: Option<ImageConfig>,
    pub start: Option<StartCommand>,
    /// A key of everything the build read; the next build with the same
    /// key reuses this version ([`BuildSession::cached`]).
    pub build_key: Option<String>,
}

impl TemplateStore {
    /// Takes `name`'s lock (waiting for another build) and a fresh work
    /// directory for a build of a new version.
    pub async fn begin(
        &self,
        name: &str,
        progress: Sender<String>,
    ) -> Result<BuildSession, TemplateError> {
        crate::store::check_import_name(name)?;
        let progress = Progress::new(progress);
        let lock = lock::acquire(&lock::path(self.dir(), name), name, &progress).await?;
        let work = self.prepare_work(name).await?;
        Ok(BuildSession {
            store: self.clone(),
            name: name.to_owned(),
            work,
            progress,
            started: Instant::now(),
            _lock: lock,
        })
    }
}

impl BuildSession {
    /// Where the root filesystem goes (does not exist yet).
    pub fn rootfs(&self) -> PathBuf {
        self.work.join("rootfs")
    }

    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Publishes `rootfs()` as a version of the template and tags it
    /// `latest`; on error, records the failure.
    pub async fn publish(self, config: BuildConfig) -> Result<Template, TemplateError> {
        let made = Made {
            recipe: None,
            image: config.image,
            start: config.start,
            build_key: config.build_key,
        };
        let result = self
            .store
            .publish(&self.name, made, &self.work, &self.progress)
            .await;
        self.end(result).await
    }

    /// The version the template's last build made from inputs with `key`,
    /// if it is still on disk.
    pub fn cached(&self, key: &str) -> Result<Option<Template>, TemplateError> {
        let index = self.store.index(&self.name)?;
        match index.last_build {
            Some(b) if b.key == key => match self.store.version(&self.name, &b.version) {
                Ok(t) => Ok(Some(t)),
                Err(TemplateError::NoSuchVersion { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            _ => Ok(None),
        }
    }

    /// Tags the cached version `t` `latest` instead of building.
    pub async fn reuse(self, t: &Template) -> Result<Template, TemplateError> {
        let version = t.version.clone().unwrap_or_default();
        let mut index = self.store.index(&self.name)?;
        index
            .tags
            .insert(crate::reference::LATEST.into(), version.clone());
        index.failure = None;
        crate::meta::write(
            &self.store.template_dir(&self.name),
            crate::meta::INDEX_FILE,
            &index,
        )?;
        self.progress
            .line(format!(
                "nothing changed since the last build: {}@{version}",
                self.name
            ))
            .await;
        self.store.version(&self.name, &version)
    }

    /// Records that the build failed with `error` (kept as the template's
    /// last failure), deletes the work directory and returns `error`.
    pub async fn fail(self, error: TemplateError) -> Result<Template, TemplateError> {
        self.end(Err(error)).await
    }

    async fn end(self, result: Result<Template, TemplateError>) -> Result<Template, TemplateError> {
        let s = &self;
        s.store
            .finish(&s.name, None, s.started, &s.work, result, &s.progress)
            .await
    }
}

impl Drop for BuildSession {
    fn drop(&mut self) {
        // Published or failed: the work directory is gone already.
        if self.work.exists()
            && let Err(e) = crate::fsutil::remove_tree(&self.work)
        {
            tracing::warn!(path = %self.work.display(), error = %e, "could not remove a build's work directory");
        }
    }
}
