//! [`TemplateStore`]: templates in a directory that several daemons may share.
//!
//! Layout of the templates directory (files inside `<name>/`: [`crate::meta`]):
//! ```text
//! <name>/index.json           tags → versions
//! <name>/v/<version>/         one immutable version: version.json, rootfs/
//! .<name>.lock                the template's lock (flock), never deleted
//! .<name>.build-<nonce>/      a build in progress, or leftovers of a crash
//! .<name>.removing-<nonce>/   a removal in progress, or leftovers of a crash
//! ```
//! A build holds the lock, builds into `.<name>.build-*/rootfs`, computes
//! the tree's content address ([`crate::digest`]), writes `version.json`
//! beside it and renames the build directory to `<name>/v/<version>` (or
//! drops it when that version exists: same content), then moves `latest`
//! in the index. A crash at any point leaves either the old index or the
//! new one, and every version the index names complete; the next build
//! under the lock deletes leftovers. Versions no tag names are deleted by
//! [`TemplateStore::collect`] once nothing uses them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use tokio::sync::mpsc::Sender;
use warren_core::spec::validate_template_name;

use crate::digest;
use crate::error::TemplateError;
use crate::fsutil;
use crate::lock;
use crate::meta::{self, Failure, Index, Status, Template, VersionMeta};
use crate::oci::{self, ImageConfig, ImageSource, Limits};
use crate::progress::Progress;
use crate::recipe::Recipe;
use crate::reference::{LATEST, Selector, TemplateRef};

const BUILD_MARK: &str = ".build-";
pub(crate) const REMOVING_MARK: &str = ".removing-";

/// What makes a template's root filesystem.
enum Origin {
    Recipe(Recipe),
    Image(ImageSource, Limits),
}

/// Whether a recipe build may reuse the ready version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rebuild {
    /// Reuse the `latest` version when there is one.
    IfMissing,
    /// Build anew; identical content gives the same version back.
    Always,
}

/// Templates in one directory.
#[derive(Debug, Clone)]
pub struct TemplateStore {
    dir: PathBuf,
}

impl TemplateStore {
    /// Opens (and creates, if needed) the templates directory, bringing
    /// templates of the unversioned layout into this one.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, TemplateError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(TemplateError::io("create templates directory", &dir))?;
        let store = Self { dir };
        crate::upgrade::all(&store)?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The template called `name` at its `latest` version, or in whatever
    /// state it is when it has none: building (some process holds its lock)
    /// or failed. NotFound otherwise.
    pub fn get(&self, name: &str) -> Result<Template, TemplateError> {
        validate(name)?;
        let index = self.index(name)?;
        if let Some(version) = index.latest() {
            return self.load(name, version, &index);
        }
        if lock::is_held(&lock::path(&self.dir, name))? {
            return Ok(Template::unready(name, Status::Building, None));
        }
        match &index.failure {
            Some(f) => Ok(Template::unready(name, Status::Failed, Some(f))),
            None => Err(TemplateError::NotFound { name: name.into() }),
        }
    }

    /// The version `reference` (`NAME`, `NAME:TAG`, `NAME@VERSION`) names,
    /// ready to start sandboxes from; otherwise NotFound or NotReady saying
    /// what to do.
    ///
    /// A name that is an alias ([`crate::aliases`]) stands for its target.
    pub fn ready(&self, reference: &str) -> Result<Template, TemplateError> {
        let mut r = TemplateRef::parse(reference)?;
        if let Some(target) = self.alias_target(&r.name)? {
            r.name = target;
        }
        match self.ready_ref(r) {
            Err(TemplateError::NotFound { name }) => {
                let ready: Vec<String> = self
                    .list()?
                    .into_iter()
                    .filter(|t| t.status == Status::Ready)
                    .map(|t| t.name)
                    .collect();
                Err(TemplateError::Unknown {
                    here: match ready.join(", ") {
                        none if none.is_empty() => "none".into(),
                        names => names,
                    },
                    name,
                })
            }
            other => other,
        }
    }

    fn ready_ref(&self, r: TemplateRef) -> Result<Template, TemplateError> {
        if !r.is_latest() {
            return self.resolve(&r);
        }
        let t = self.get(&r.name)?;
        match t.status {
            Status::Ready => Ok(t),
            Status::Building => Err(TemplateError::NotReady {
                name: r.name,
                status: "still building".into(),
                hint: "; try again when the build has finished".into(),
            }),
            Status::Failed => Err(TemplateError::NotReady {
                hint: format!(
                    " ({}); fix the cause and run `warren template {}`",
                    t.error.as_deref().unwrap_or("no reason recorded"),
                    match t.recipe {
                        Some(_) => format!("build {}", r.name),
                        None => format!("import {} SOURCE", r.name),
                    }
                ),
                name: r.name,
                status: "failed".into(),
            }),
        }
    }

    /// The version a parsed reference names.
    pub fn resolve(&self, r: &TemplateRef) -> Result<Template, TemplateError> {
        let index = self.index(&r.name)?;
        let version = match &r.selector {
            Selector::Version(v) => v.clone(),
            Selector::Tag(tag) => match index.tags.get(tag) {
                Some(v) => v.clone(),
                None if index.tags.is_empty() => {
                    return Err(TemplateError::NotFound {
                        name: r.name.clone(),
                    });
                }
                None => {
                    return Err(TemplateError::NoSuchVersion {
                        reference: r.to_string(),
                        known: index.tags.keys().cloned().collect::<Vec<_>>().join(", "),
                    });
                }
            },
        };
        self.load(&r.name, &version, &index)
    }

    /// The version `version` of `name`, tagged or not, as long as it has
    /// not been collected: what a paused or forked sandbox resumes on.
    pub fn version(&self, name: &str, version: &str) -> Result<Template, TemplateError> {
        validate(name)?;
        crate::reference::validate_version(version)?;
        let index = self.index(name)?;
        self.load(name, version, &index)
    }

    /// Every template at its `latest` version (or unready), sorted by
    /// name; leftovers of crashed builds are not templates and are skipped.
    pub fn list(&self) -> Result<Vec<Template>, TemplateError> {
        let mut out = Vec::new();
        for name in self.names()? {
            match self.get(&name) {
                Ok(t) => out.push(t),
                Err(TemplateError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Every version of `name` on disk, tagged or not, newest first.
    pub fn versions(&self, name: &str) -> Result<Vec<Template>, TemplateError> {
        validate(name)?;
        let index = self.index(name)?;
        let mut out = Vec::new();
        for version in self.version_ids(name)? {
            match self.load(name, &version, &index) {
                Ok(t) => out.push(t),
                Err(TemplateError::NoSuchVersion { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if out.is_empty() && index.tags.is_empty() && index.failure.is_none() {
            return Err(TemplateError::NotFound { name: name.into() });
        }
        out.sort_by(|a, b| b.built_at.cmp(&a.built_at).then(a.version.cmp(&b.version)));
        Ok(out)
    }

    /// Builds the template `name` with the recipe of that name. See
    /// [`TemplateStore::build_with`].
    pub async fn build(
        &self,
        name: &str,
        rebuild: Rebuild,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        validate(name)?;
        self.build_with(name, Recipe::for_template(name)?, rebuild, progress)
            .await
    }

    /// Builds `name` with `recipe`: with [`Rebuild::IfMissing`] only when it
    /// has no `latest` version. Waits while another process builds the same
    /// template, then reuses its result. Progress lines for people go to
    /// `progress`: read them or drop the receiver, a full channel stalls the
    /// build.
    ///
    /// A failed build records the failure (with the reason) and returns the
    /// error; the versions already there stay as they are.
    pub async fn build_with(
        &self,
        name: &str,
        recipe: Recipe,
        rebuild: Rebuild,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        self.make(name, Origin::Recipe(recipe), rebuild, progress)
            .await
    }

    /// Imports the image at `source` as a new version of `name`, which must
    /// not be a recipe's name. Same protocol as a build. See [`crate::oci`].
    pub async fn import(
        &self,
        name: &str,
        source: ImageSource,
        limits: Limits,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        check_import_name(name)?;
        self.make(
            name,
            Origin::Image(source, limits),
            Rebuild::Always,
            progress,
        )
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
        rebuild: Rebuild,
        progress: Sender<String>,
    ) -> Result<Template, TemplateError> {
        validate(name)?;
        let progress = Progress::new(progress);
        let _lock = lock::acquire(&lock::path(&self.dir, name), name, &progress).await?;

        let index = self.index(name)?;
        if rebuild == Rebuild::IfMissing
            && let Some(version) = index.latest()
        {
            progress
                .line(format!("template '{name}' is already built; reusing it"))
                .await;
            return self.load(name, version, &index);
        }
        let work = self.prepare_work(name).await?;
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
        let made = Made {
            recipe,
            image: built.as_ref().ok().cloned().flatten(),
            start: None,
            build_key: None,
        };
        let result = match built {
            Ok(_) => self.publish(name, made, &work, &progress).await,
            Err(e) => Err(e),
        };
        self.finish(name, recipe, started, &work, result, &progress)
            .await
    }

    /// With the lock held: removes leftovers and makes a fresh work directory.
    pub(crate) async fn prepare_work(&self, name: &str) -> Result<PathBuf, TemplateError> {
        self.clean_leftovers(name).await?;
        let work = self.dir.join(format!(".{name}{BUILD_MARK}{}", nonce()));
        fs::create_dir(&work).map_err(TemplateError::io("create build directory", &work))?;
        Ok(work)
    }

    /// Reports how a build under the lock ended; records a failure.
    pub(crate) async fn finish(
        &self,
        name: &str,
        recipe: Option<Recipe>,
        started: Instant,
        work: &Path,
        result: Result<Template, TemplateError>,
        progress: &Progress,
    ) -> Result<Template, TemplateError> {
        match result {
            Ok(t) => {
                progress
                    .line(format!(
                        "template '{}' ready: {} MB in {:.1} s",
                        t.reference(),
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
                if let Err(cleanup) = self.record_failure(name, recipe, &e, work).await {
                    tracing::warn!(template = name, error = %cleanup, "could not record failed build");
                }
                Err(e)
            }
        }
    }

    pub(crate) fn template_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.template_dir(name)
            .join(meta::VERSIONS_DIR)
            .join(version)
    }

    /// `<name>/index.json`, empty when there is none.
    pub(crate) fn index(&self, name: &str) -> Result<Index, TemplateError> {
        let path = self.template_dir(name).join(meta::INDEX_FILE);
        Ok(meta::read(&path)?.unwrap_or_default())
    }

    fn load(&self, name: &str, version: &str, index: &Index) -> Result<Template, TemplateError> {
        let dir = self.version_dir(name, version);
        match meta::read::<VersionMeta>(&dir.join(meta::VERSION_FILE))? {
            Some(m) if m.version == version => Ok(Template::of_version(name, &dir, m, index)),
            Some(m) => Err(TemplateError::Corrupt {
                path: dir,
                reason: format!("it says it is version {}", m.version),
            }),
            None => Err(TemplateError::NoSuchVersion {
                reference: format!("{name}@{version}"),
                known: index.tags.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// Names of the templates in the directory (with a directory or a lock).
    pub fn names(&self) -> Result<Vec<String>, TemplateError> {
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
        Ok(names)
    }

    /// The version directories of `name`.
    pub(crate) fn version_ids(&self, name: &str) -> Result<Vec<String>, TemplateError> {
        let dir = self.template_dir(name).join(meta::VERSIONS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TemplateError::io("list", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(TemplateError::io("list", &dir))?;
            let v = entry.file_name().to_string_lossy().into_owned();
            if crate::reference::validate_version(&v).is_ok() {
                out.push(v);
            }
        }
        out.sort();
        Ok(out)
    }

    /// With the lock held: deletes crashed builds and removals of `name`.
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
        if !doomed.is_empty() {
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

    /// Gives the finished build in `work` its content address, moves it
    /// into place (or drops it when that version exists) and tags it
    /// `latest`.
    pub(crate) async fn publish(
        &self,
        name: &str,
        made: Made,
        work: &Path,
        progress: &Progress,
    ) -> Result<Template, TemplateError> {
        progress
            .line("computing the version's content address")
            .await;
        let store = self.clone();
        let work = work.to_path_buf();
        let owned = name.to_owned();
        let build_key = made.build_key.clone();
        let (version, existed) = blocking(move || {
            let name = owned;
            let built = work.join("rootfs");
            let version = digest::version_of(&built).map_err(TemplateError::io("read", &built))?;
            let dest = store.version_dir(&name, &version);
            let existed = dest.join(meta::VERSION_FILE).exists();
            if existed {
                fsutil::remove_tree(&work).map_err(TemplateError::io("remove", &work))?;
            } else {
                let size_bytes =
                    fsutil::disk_usage(&built).map_err(TemplateError::io("measure", &built))?;
                let m = VersionMeta {
                    version: version.clone(),
                    size_bytes,
                    built_at: OffsetDateTime::now_utc(),
                    recipe: made.recipe,
                    image: made.image,
                    start: made.start,
                };
                meta::write(&work, meta::VERSION_FILE, &m)?;
                let versions = store.template_dir(&name).join(meta::VERSIONS_DIR);
                fs::create_dir_all(&versions).map_err(TemplateError::io("create", &versions))?;
                // A directory of this name without version.json is a
                // crash's leftover.
                fsutil::remove_tree(&dest).map_err(TemplateError::io("remove", &dest))?;
                fs::rename(&work, &dest).map_err(TemplateError::io("move into place", &work))?;
                meta::sync_dir(&versions)?;
            }
            let mut index = store.index(&name)?;
            index.tags.insert(LATEST.into(), version.clone());
            index.failure = None;
            if let Some(key) = build_key {
                index.last_build = Some(crate::meta::LastBuild {
                    key,
                    version: version.clone(),
                });
            }
            meta::write(&store.template_dir(&name), meta::INDEX_FILE, &index)?;
            Ok((version, existed))
        })
        .await?;
        if existed {
            progress
                .line(format!("identical to version {version}, which is kept"))
                .await;
        }
        self.version(name, &version)
    }

    async fn record_failure(
        &self,
        name: &str,
        recipe: Option<Recipe>,
        error: &TemplateError,
        work: &Path,
    ) -> Result<(), TemplateError> {
        let tdir = self.template_dir(name);
        let failure = Failure {
            at: OffsetDateTime::now_utc(),
            error: crate::error::chain(error),
            recipe,
        };
        let mut index = self.index(name)?;
        index.failure = Some(failure);
        let work = work.to_path_buf();
        blocking(move || {
            fsutil::remove_tree(&work).map_err(TemplateError::io("remove", &work))?;
            fs::create_dir_all(&tdir).map_err(TemplateError::io("create", &tdir))?;
            meta::write(&tdir, meta::INDEX_FILE, &index)
        })
        .await
    }
}

/// What a build leaves besides the root filesystem.
pub(crate) struct Made {
    pub recipe: Option<Recipe>,
    pub image: Option<ImageConfig>,
    pub start: Option<crate::recipe::StartCommand>,
    /// The inputs' key of a Dockerfile build, remembered for the next one.
    pub build_key: Option<String>,
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

pub(crate) fn validate(name: &str) -> Result<(), TemplateError> {
    validate_template_name(name).map_err(TemplateError::InvalidName)
}

/// Unique enough under the build lock: pid and the current time.
pub(crate) fn nonce() -> String {
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
