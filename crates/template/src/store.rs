//! [`TemplateStore`]: templates in a directory that several daemons may share.
//!
//! Layout of the templates directory:
//! ```text
//! <name>/template.json       metadata; the template is ready iff it says so
//! <name>/rootfs/             the root filesystem (read-only once published)
//! .<name>.lock               build lock (flock), never deleted
//! .<name>.build-<nonce>/     a build in progress, or leftovers of a crash
//! .<name>.removing-<nonce>/  a removal in progress, or leftovers of a crash
//! ```
//! A build holds the lock, builds into `.<name>.build-*/rootfs`, renames it
//! to `<name>/rootfs`, then writes `template.json` (temporary + rename). A
//! crash at any point leaves either nothing ready-looking or the complete
//! template; the next build under the lock deletes the leftovers first.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use tokio::sync::mpsc::Sender;
use warren_core::spec::validate_template_name;

use crate::error::TemplateError;
use crate::fsutil;
use crate::lock;
use crate::meta::{self, Status, Template};
use crate::oci::{self, ImageConfig, ImageSource, Limits};
use crate::progress::Progress;
use crate::recipe::Recipe;

const BUILD_MARK: &str = ".build-";

/// What makes a template's root filesystem.
enum Origin {
    Recipe(Recipe),
    Image(ImageSource, Limits),
}
const REMOVING_MARK: &str = ".removing-";

/// Templates in one directory.
#[derive(Debug, Clone)]
pub struct TemplateStore {
    dir: PathBuf,
}

impl TemplateStore {
    /// Opens (and creates, if needed) the templates directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, TemplateError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(TemplateError::io("create templates directory", &dir))?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The template called `name` in whatever state it is: ready, building
    /// (some process holds its lock) or failed. NotFound otherwise.
    pub fn get(&self, name: &str) -> Result<Template, TemplateError> {
        validate(name)?;
        match meta::read(&self.template_dir(name))? {
            Some(t) if t.is_ready() => Ok(t),
            found => {
                if lock::is_held(&lock::path(&self.dir, name))? {
                    return Ok(Template {
                        status: Status::Building,
                        error: None,
                        ..found.unwrap_or_else(|| self.placeholder(name))
                    });
                }
                found.ok_or_else(|| TemplateError::NotFound { name: name.into() })
            }
        }
    }

    /// The template if it is ready to start sandboxes from; otherwise
    /// NotFound or NotReady saying what to do.
    pub fn ready(&self, name: &str) -> Result<Template, TemplateError> {
        let t = self.get(name)?;
        match t.status {
            Status::Ready => Ok(t),
            Status::Building => Err(TemplateError::NotReady {
                name: name.into(),
                status: "still building".into(),
                hint: "; try again when the build has finished".into(),
            }),
            Status::Failed => Err(TemplateError::NotReady {
                name: name.into(),
                status: "failed".into(),
                hint: format!(
                    " ({}); fix the cause and run `warren template {}`",
                    t.error.as_deref().unwrap_or("no reason recorded"),
                    match t.recipe {
                        Some(_) => format!("build {name}"),
                        None => format!("import {name} SOURCE"),
                    }
                ),
            }),
        }
    }

    /// Every template, sorted by name (leftovers of crashed builds are not
    /// templates and are skipped).
    pub fn list(&self) -> Result<Vec<Template>, TemplateError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(TemplateError::io("list", &self.dir))? {
            let entry = entry.map_err(TemplateError::io("list", &self.dir))?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            let name = match file_name.strip_prefix('.') {
                Some(rest) => match rest.strip_suffix(".lock") {
                    Some(n) => n.to_owned(),
                    None => continue,
                },
                None => file_name.into_owned(),
            };
            if validate_template_name(&name).is_ok() && !names.contains(&name) {
                names.push(name);
            }
        }
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.get(&name) {
                Ok(t) => out.push(t),
                Err(TemplateError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Builds the template `name` with the recipe of that name. See
    /// [`TemplateStore::build_with`].
    pub async fn build(
        &self,
        name: &str,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        validate(name)?;
        self.build_with(name, Recipe::for_template(name)?, progress)
            .await
    }

    /// Builds `name` with `recipe` unless it is ready already. Waits while
    /// another process builds the same template, then reuses its result.
    /// Progress lines for people go to `progress`: read them or drop the
    /// receiver, a full channel stalls the build.
    ///
    /// A failed build records `failed` (with the reason) and returns the error.
    pub async fn build_with(
        &self,
        name: &str,
        recipe: Recipe,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        self.make(name, Origin::Recipe(recipe), progress).await
    }

    /// Imports the image at `source` as the template `name`, which must not
    /// be a recipe's name nor ready already (a failed one is replaced). Same protocol as a
    /// build: lock, temporary sibling, publish by rename; `failed` recorded
    /// on error. See [`crate::oci`].
    pub async fn import(
        &self,
        name: &str,
        source: ImageSource,
        limits: Limits,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        check_import_name(name)?;
        self.make(name, Origin::Image(source, limits), progress)
            .await
    }

    /// A new temporary file in the templates directory (so on the disk the
    /// templates go to) for an uploaded image; deleted when dropped.
    pub fn upload_file(&self) -> Result<tempfile::NamedTempFile, TemplateError> {
        tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&self.dir)
            .map_err(TemplateError::io("create upload file in", &self.dir))
    }

    async fn make(
        &self,
        name: &str,
        origin: Origin,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        validate(name)?;
        let progress = Progress::new(progress);
        let _lock = lock::acquire(&lock::path(&self.dir, name), name, &progress).await?;

        let tdir = self.template_dir(name);
        if let Some(t) = meta::read(&tdir)?
            && t.is_ready()
        {
            if let Origin::Image(..) = origin {
                return Err(TemplateError::Exists { name: name.into() });
            }
            progress
                .line(format!("template '{name}' is already built; reusing it"))
                .await;
            return Ok(t);
        }
        self.clean_leftovers(name).await?;

        let work = self.dir.join(format!(".{name}{BUILD_MARK}{}", nonce()));
        fs::create_dir(&work).map_err(TemplateError::io("create build directory", &work))?;
        let started = Instant::now();
        let recipe = match &origin {
            Origin::Recipe(r) => Some(*r),
            Origin::Image(..) => None,
        };
        let built = match origin {
            Origin::Recipe(recipe) => {
                progress
                    .line(format!("building template '{name}' ({})", recipe.name()))
                    .await;
                recipe
                    .build(&work.join("rootfs"), &progress)
                    .await
                    .map(|()| None)
            }
            Origin::Image(source, limits) => {
                progress
                    .line(format!("importing {source} as template '{name}'"))
                    .await;
                let rootfs = work.join("rootfs");
                let lines = progress.clone();
                blocking(move || {
                    let mut log = |line| lines.blocking_line(line);
                    Ok(oci::import(&source, &rootfs, limits, &mut log)?)
                })
                .await
                .map(Some)
            }
        };
        let result = match built {
            Ok(image) => self.publish(name, recipe, image, &work).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(t) => {
                progress
                    .line(format!(
                        "template '{name}' ready: {} MB in {:.1} s",
                        t.size_bytes / 1_000_000,
                        started.elapsed().as_secs_f64()
                    ))
                    .await;
                Ok(t)
            }
            Err(e) => {
                progress
                    .line(format!("build of template '{name}' failed: {e}"))
                    .await;
                if let Err(cleanup) = self.record_failure(name, recipe, &e, &work).await {
                    tracing::warn!(template = name, error = %cleanup, "could not record failed build");
                }
                Err(e)
            }
        }
    }

    /// Removes the template (waiting for a build of it to finish first).
    /// Sandboxes already running from it keep their open files; starting new
    /// ones fails with NotFound.
    pub async fn remove(&self, name: &str) -> Result<(), TemplateError> {
        validate(name)?;
        let progress = Progress::new(tokio::sync::mpsc::channel(1).0);
        let _lock = lock::acquire(&lock::path(&self.dir, name), name, &progress).await?;
        let tdir = self.template_dir(name);
        if !tdir.exists() {
            return Err(TemplateError::NotFound { name: name.into() });
        }
        // Unpublish first: from here on the template is not ready.
        let meta_file = tdir.join(meta::META_FILE);
        match fs::remove_file(&meta_file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(TemplateError::io("remove", &meta_file)(e)),
        }
        let doomed = self.dir.join(format!(".{name}{REMOVING_MARK}{}", nonce()));
        fs::rename(&tdir, &doomed).map_err(TemplateError::io("move aside", &tdir))?;
        blocking(move || fsutil::remove_tree(&doomed).map_err(TemplateError::io("remove", &doomed)))
            .await
    }

    fn template_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn placeholder(&self, name: &str) -> Template {
        Template {
            name: name.into(),
            status: Status::Building,
            size_bytes: 0,
            built_at: None,
            recipe: Recipe::for_template(name).ok(),
            image: None,
            error: None,
            rootfs: self.template_dir(name).join("rootfs"),
        }
    }

    /// With the lock held: deletes crashed builds and removals of `name`
    /// and an unpublished `rootfs`.
    async fn clean_leftovers(&self, name: &str) -> Result<(), TemplateError> {
        let mut doomed = Vec::new();
        let prefixes = [
            format!(".{name}{BUILD_MARK}"),
            format!(".{name}{REMOVING_MARK}"),
        ];
        for entry in fs::read_dir(&self.dir).map_err(TemplateError::io("list", &self.dir))? {
            let entry = entry.map_err(TemplateError::io("list", &self.dir))?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
                doomed.push(entry.path());
            }
        }
        let tdir = self.template_dir(name);
        doomed.push(tdir.join("rootfs"));
        doomed.push(tdir.join(meta::META_TMP));
        if doomed.len() > 2 {
            tracing::info!(template = name, leftovers = ?doomed, "removing leftovers of an earlier build");
        }
        blocking(move || {
            for p in doomed {
                fsutil::remove_tree(&p).map_err(TemplateError::io("remove leftover", &p))?;
            }
            Ok(())
        })
        .await
    }

    /// Moves the finished root filesystem into place and marks it ready.
    async fn publish(
        &self,
        name: &str,
        recipe: Option<Recipe>,
        image: Option<ImageConfig>,
        work: &Path,
    ) -> Result<Template, TemplateError> {
        let tdir = self.template_dir(name);
        let work = work.to_path_buf();
        let name = name.to_owned();
        blocking(move || {
            let built = work.join("rootfs");
            let size_bytes =
                fsutil::disk_usage(&built).map_err(TemplateError::io("measure", &built))?;
            fs::create_dir_all(&tdir).map_err(TemplateError::io("create", &tdir))?;
            let rootfs = tdir.join("rootfs");
            fs::rename(&built, &rootfs).map_err(TemplateError::io("move into place", &built))?;
            meta::sync_dir(&tdir)?;
            let t = Template {
                name,
                status: Status::Ready,
                size_bytes,
                built_at: Some(OffsetDateTime::now_utc()),
                recipe,
                image,
                error: None,
                rootfs,
            };
            meta::write(&tdir, &t)?;
            fs::remove_dir(&work).map_err(TemplateError::io("remove", &work))?;
            Ok(t)
        })
        .await
    }

    async fn record_failure(
        &self,
        name: &str,
        recipe: Option<Recipe>,
        error: &TemplateError,
        work: &Path,
    ) -> Result<(), TemplateError> {
        let tdir = self.template_dir(name);
        let t = Template {
            name: name.into(),
            status: Status::Failed,
            size_bytes: 0,
            built_at: Some(OffsetDateTime::now_utc()),
            recipe,
            image: None,
            error: Some(crate::error::chain(error)),
            rootfs: tdir.join("rootfs"),
        };
        let work = work.to_path_buf();
        blocking(move || {
            fsutil::remove_tree(&work).map_err(TemplateError::io("remove", &work))?;
            fs::create_dir_all(&tdir).map_err(TemplateError::io("create", &tdir))?;
            meta::write(&tdir, &t)
        })
        .await
    }
}

/// A valid name that no recipe builds: an imported `base` would be what
/// every create without a template starts from.
pub fn check_import_name(name: &str) -> Result<(), TemplateError> {
    validate(name)?;
    match Recipe::for_template(name) {
        Ok(_) => Err(TemplateError::Reserved { name: name.into() }),
        Err(_) => Ok(()),
    }
}

fn validate(name: &str) -> Result<(), TemplateError> {
    validate_template_name(name).map_err(TemplateError::InvalidName)
}

/// Unique enough under the build lock: pid and the current time.
fn nonce() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TemplateError> + Send + 'static,
) -> Result<T, TemplateError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        TemplateError::io("finish file-system work in", "a worker thread")(io::Error::other(e))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_are_recorded_and_reported_by_ready() {
        let dir = tempfile::tempdir().unwrap();
        let store = TemplateStore::new(dir.path()).unwrap();
        let work = dir.path().join(".base.build-1");
        fs::create_dir_all(work.join("rootfs")).unwrap();
        store
            .record_failure("base", Some(Recipe::Base), &TemplateError::NoMirror, &work)
            .await
            .unwrap();
        assert!(!work.exists());

        let t = store.get("base").unwrap();
        assert_eq!(t.status, Status::Failed);
        assert!(
            t.error
                .as_deref()
                .unwrap_or("")
                .contains("no Debian mirror")
        );
        assert_eq!(store.list().unwrap(), vec![t]);
        let err = store.ready("base").unwrap_err().to_string();
        assert!(
            err.starts_with("template 'base' is failed, not ready (no Debian mirror"),
            "{err}"
        );
        assert!(err.ends_with("run `warren template build base`"), "{err}");
    }
}
