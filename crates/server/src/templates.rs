//! Template builds and image imports requested over the API. Each runs in
//! its own task, so a client that disconnects does not stop it; its
//! progress lines are streamed to whoever started it.
//!
//! An import's archive is the request body, streamed to a temporary file
//! in the templates directory (never held in memory) and refused past
//! [`IMPORT_LIMIT`]; the file is deleted when the import ends. The daemon
//! never reads an image from a path a client names: a client could
//! otherwise make it read any file on the host.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use warren_api_types::{
    BuildEvent, Template as ApiTemplate, TemplateAlias, TemplateRemoved, TemplateVersion,
    TemplateVersions,
};
use warren_core::{ErrorKind, WarrenError};
use warren_store::Store;

use warren_core::network::NetRule;
use warren_template::dockerfile;
use warren_template::oci::{Applier, ImageFormat, ImageSource, Limits};

use crate::audit::AuditActor;
use crate::auth::Caller;
use crate::service::Sandboxes;
use crate::service::build::DockerfileBuild;
use warren_template::{Rebuild, Template, TemplateError, TemplateStore};

/// Largest image archive an import takes.
pub const IMPORT_LIMIT: u64 = 8 << 30;
/// Largest build context a Dockerfile build takes.
pub const CONTEXT_LIMIT: u64 = 1 << 30;

pub struct TemplateBuilds {
    store: Arc<TemplateStore>,
    /// Says which versions rows use.
    rows: Arc<dyn Store>,
    /// Runs Dockerfile steps in build sandboxes.
    sandboxes: Arc<Sandboxes>,
    /// Where every build's RUN steps may reach besides the Debian mirror
    /// (`warren serve --build-allow`).
    build_allow: Vec<NetRule>,
}

/// A Dockerfile build as a request asks for it.
pub struct DockerfileRequest {
    pub name: String,
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub allow: Vec<NetRule>,
    /// Run every step even when the step cache holds it.
    pub no_cache: bool,
}

pub fn to_api(t: &Template) -> ApiTemplate {
    ApiTemplate {
        name: t.name.clone(),
        status: t.status.as_str().to_owned(),
        size_bytes: t.size_bytes,
        built_at: t.built_at_rfc3339(),
        version: t.version.clone(),
        tags: t.tags.clone(),
        error: t.error.clone(),
    }
}

impl TemplateBuilds {
    pub fn new(
        store: Arc<TemplateStore>,
        rows: Arc<dyn Store>,
        sandboxes: Arc<Sandboxes>,
        build_allow: Vec<NetRule>,
    ) -> Self {
        Self {
            store,
            rows,
            sandboxes,
            build_allow,
        }
    }

    /// The templates directory (E2B's build files live under it).
    pub fn dir(&self) -> &std::path::Path {
        self.store.dir()
    }

    /// Receives a build context (a tar) from `body`, reads its Dockerfile
    /// and starts the build; the receiver yields progress and then one
    /// `done` or `error` event. A Dockerfile that cannot be built is an
    /// error here, before anything runs.
    pub async fn build_dockerfile<S, E>(
        &self,
        req: DockerfileRequest,
        body: S,
        caller: &Caller,
    ) -> Result<mpsc::Receiver<BuildEvent>, WarrenError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        warren_template::store::check_import_name(&req.name)?;
        let upload = self.store.upload_file()?;
        let file = upload
            .reopen()
            .map_err(|e| WarrenError::internal(format!("could not open the upload file: {e}")))?;
        receive(file, body, CONTEXT_LIMIT, "build context").await?;
        let context = self.context_dir()?;
        let (path, dir) = (upload.path().to_path_buf(), context.path().to_path_buf());
        tokio::task::spawn_blocking(move || unpack_context(&path, &dir))
            .await
            .map_err(|e| WarrenError::internal(e.to_string()))??;
        drop(upload);
        let text = read_dockerfile(context.path(), &req.dockerfile)?;
        let plan =
            dockerfile::plan(&text, &req.args).map_err(|e| WarrenError::invalid(e.to_string()))?;
        let fresh_from = req.no_cache.then_some(0);
        self.build_plan(req.name, plan, context, caller, req.allow, fresh_from)
    }

    /// Starts building `plan` as the next version of `name` from the files
    /// in `context` (deleted when the build ends); `fresh_from` as
    /// `DockerfileBuild` has it. The RUN steps may reach the daemon's
    /// build destinations and `allow`.
    pub fn build_plan(
        &self,
        name: String,
        plan: dockerfile::Plan,
        context: tempfile::TempDir,
        caller: &Caller,
        allow: Vec<NetRule>,
        fresh_from: Option<usize>,
    ) -> Result<mpsc::Receiver<BuildEvent>, WarrenError> {
        warren_template::store::check_import_name(&name)?;
        let mut allow = allow;
        allow.extend(self.build_allow.iter().cloned());
        let build = DockerfileBuild {
            plan,
            context: context.path().to_path_buf(),
            dispatcher: caller.into(),
            allow,
            fresh_from,
        };
        let store = self.store.clone();
        let sandboxes = self.sandboxes.clone();
        let actor = AuditActor::from_caller(caller);
        Ok(spawn(name.clone(), "build", move |lines| async move {
            let session = store.begin(&name, lines.clone()).await?;
            let result = sandboxes
                .build_dockerfile(session, build, lines, &actor)
                .await
                .map_err(|e| TemplateError::Build(e.message));
            drop(context);
            result
        }))
    }

    /// A directory for a build's context, deleted with the value.
    pub fn context_dir(&self) -> Result<tempfile::TempDir, WarrenError> {
        tempfile::Builder::new()
            .prefix(".context-")
            .tempdir_in(self.store.dir())
            .map_err(|e| WarrenError::internal(format!("could not make a context directory: {e}")))
    }

    /// The ready version `reference` names.
    pub fn ready(&self, reference: &str) -> Result<Template, WarrenError> {
        Ok(self.store.ready(reference)?)
    }

    pub fn list(&self) -> Result<Vec<ApiTemplate>, WarrenError> {
        Ok(self.store.list()?.iter().map(to_api).collect())
    }

    /// Every version of `name`, newest first, with whether rows use it.
    pub async fn versions(&self, name: &str) -> Result<TemplateVersions, WarrenError> {
        let versions = self.store.versions(name)?;
        let used = self.rows.template_versions_in_use().await?;
        let in_use = |v: &Option<String>| {
            used.iter()
                .any(|(n, uv)| n == name && (uv.is_none() || uv == v))
        };
        Ok(TemplateVersions {
            name: name.to_owned(),
            versions: versions
                .iter()
                .map(|t| TemplateVersion {
                    template: to_api(t),
                    in_use: in_use(&t.version),
                })
                .collect(),
        })
    }

    /// Points `tag` of `name` at `target` (a version id or another tag).
    pub async fn tag(
        &self,
        name: &str,
        tag: &str,
        target: &str,
    ) -> Result<ApiTemplate, WarrenError> {
        let reference = if warren_template::reference::validate_version(target).is_ok() {
            format!("{name}@{target}")
        } else {
            format!("{name}:{target}")
        };
        Ok(to_api(&self.store.tag(&reference, tag).await?))
    }

    /// Every alias (stored and built in).
    pub fn aliases(&self) -> Result<Vec<TemplateAlias>, WarrenError> {
        Ok(self
            .store
            .aliases()?
            .into_iter()
            .map(to_api_alias)
            .collect())
    }

    /// Makes `alias` stand for the template `target`.
    pub fn set_alias(&self, alias: &str, target: &str) -> Result<TemplateAlias, WarrenError> {
        Ok(to_api_alias(self.store.set_alias(alias, target)?))
    }

    /// Removes a stored alias.
    pub fn remove_alias(&self, alias: &str) -> Result<(), WarrenError> {
        Ok(self.store.remove_alias(alias)?)
    }

    /// Takes away the tags `reference` names (see `TemplateStore::remove`).
    pub async fn remove(&self, reference: &str) -> Result<TemplateRemoved, WarrenError> {
        let name = warren_template::TemplateRef::parse(reference)?.name;
        let untagged = self.store.remove(reference).await?;
        Ok(TemplateRemoved {
            untagged: untagged
                .into_iter()
                .map(|v| format!("{name}@{v}"))
                .collect(),
        })
    }

    /// Starts building `name` (again, with `rebuild`: a new version unless
    /// the result is identical); the receiver yields progress and then
    /// exactly one `done` or `error` event.
    pub fn build(
        &self,
        name: String,
        rebuild: bool,
    ) -> Result<mpsc::Receiver<BuildEvent>, WarrenError> {
        warren_core::spec::validate_template_name(&name)?;
        let store = self.store.clone();
        let rebuild = if rebuild {
            Rebuild::Always
        } else {
            Rebuild::IfMissing
        };
        Ok(spawn(name.clone(), "build", move |lines| async move {
            store.build(&name, rebuild, lines).await
        }))
    }

    /// Receives an image archive (`format`: `oci-archive` or
    /// `docker-archive`) from `body`, then starts importing it as `name`;
    /// the receiver yields progress and then one `done` or `error` event.
    pub async fn import<S, E>(
        &self,
        name: String,
        format: ImageFormat,
        body: S,
    ) -> Result<mpsc::Receiver<BuildEvent>, WarrenError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        warren_template::store::check_import_name(&name)?;
        if format == ImageFormat::OciDir {
            return Err(WarrenError::invalid(
                "upload an image archive (oci-archive or docker-archive); `warren template import NAME oci:DIR` packs a layout directory for you",
            ));
        }
        let upload = self.store.upload_file()?;
        let file = upload
            .reopen()
            .map_err(|e| WarrenError::internal(format!("could not open the upload file: {e}")))?;
        receive(file, body, IMPORT_LIMIT, "image archive").await?;
        let store = self.store.clone();
        let source = ImageSource {
            format,
            path: upload.path().to_path_buf(),
        };
        Ok(spawn(name.clone(), "import", move |lines| async move {
            let result = store.import(&name, source, Limits::default(), lines).await;
            drop(upload);
            result
        }))
    }
}

/// Writes `body` to `file`, refusing more than `limit` bytes.
async fn receive<S, E>(
    out: std::fs::File,
    mut body: S,
    limit: u64,
    what: &str,
) -> Result<(), WarrenError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = tokio::fs::File::from_std(out);
    let mut total = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk
            .map_err(|e| WarrenError::invalid(format!("the {what} upload was cut off: {e}")))?;
        total += chunk.len() as u64;
        if total > limit {
            return Err(WarrenError::new(
                ErrorKind::PayloadTooLarge,
                format!("the {what} is limited to {} GiB", limit >> 30),
            ));
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| WarrenError::internal(format!("could not store the {what}: {e}")))?;
    }
    out.flush()
        .await
        .map_err(|e| WarrenError::internal(format!("could not store the {what}: {e}")))?;
    if total == 0 {
        return Err(WarrenError::invalid(format!(
            "the request body holds no {what}"
        )));
    }
    Ok(())
}

/// Unpacks the context tar at `archive` into `dir`, treating it as hostile
/// (the image layer applier: nothing lands outside `dir`).
fn unpack_context(archive: &std::path::Path, dir: &std::path::Path) -> Result<(), WarrenError> {
    let file = std::fs::File::open(archive)
        .map_err(|e| WarrenError::internal(format!("could not read the build context: {e}")))?;
    let limits = Limits {
        max_bytes: CONTEXT_LIMIT * 4,
        max_entries: 200_000,
    };
    let mut applier =
        Applier::new(dir, limits).map_err(|e| WarrenError::internal(e.to_string()))?;
    applier
        .apply(1, file)
        .map_err(|e| WarrenError::invalid(format!("the build context is not a usable tar: {e}")))?;
    Ok(())
}

/// The Dockerfile at `name` inside the context: a regular file, reached
/// without symlinks, at most `MAX_DOCKERFILE` bytes.
fn read_dockerfile(context: &std::path::Path, name: &str) -> Result<String, WarrenError> {
    use std::path::Component;
    let mut path = context.to_path_buf();
    for part in std::path::Path::new(name).components() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => {}
            _ => {
                return Err(WarrenError::invalid(format!(
                    "dockerfile {name:?} must be a relative path inside the build context"
                )));
            }
        }
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(WarrenError::invalid(format!(
                "dockerfile {name:?} passes a symlink in the build context"
            )));
        }
    }
    let meta = std::fs::symlink_metadata(&path).map_err(|_| {
        WarrenError::invalid(format!(
            "the build context has no {name}; name the Dockerfile with -f"
        ))
    })?;
    if !meta.is_file() || meta.len() > dockerfile::MAX_DOCKERFILE as u64 {
        return Err(WarrenError::invalid(format!(
            "{name} must be a regular file of at most {} KiB",
            dockerfile::MAX_DOCKERFILE >> 10
        )));
    }
    std::fs::read_to_string(&path)
        .map_err(|e| WarrenError::invalid(format!("{name} is not readable text: {e}")))
}

/// Runs `job` in its own task, forwarding its progress lines, then its
/// outcome, to the returned receiver.
fn spawn<F, Fut>(name: String, what: &'static str, job: F) -> mpsc::Receiver<BuildEvent>
where
    F: FnOnce(mpsc::Sender<String>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Template, TemplateError>> + Send,
{
    let (events_tx, events_rx) = mpsc::channel(256);
    let (lines_tx, mut lines_rx) = mpsc::channel::<String>(256);
    let forward = events_tx.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(line) = lines_rx.recv().await {
            // A vanished client must not stall the build.
            let _ = forward.try_send(BuildEvent::Log { line });
        }
    });
    tokio::spawn(async move {
        tracing::info!(template = %name, "template {what} started");
        let result = job(lines_tx).await;
        // Every progress line goes out before the final event.
        let _ = forwarder.await;
        let last = match result {
            Ok(t) => {
                tracing::info!(template = %name, size = t.size_bytes, "template {what} done");
                BuildEvent::Done {
                    template: to_api(&t),
                }
            }
            Err(e) => {
                let e = WarrenError::from(e);
                tracing::warn!(template = %name, error = %e.message, "template {what} failed");
                BuildEvent::Error { message: e.message }
            }
        };
        let _ = events_tx.send(last).await;
    });
    events_rx
}

fn to_api_alias(a: warren_template::aliases::Alias) -> TemplateAlias {
    TemplateAlias {
        alias: a.alias,
        target: a.target,
        builtin: a.builtin,
    }
}
