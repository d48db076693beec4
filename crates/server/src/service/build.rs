//! Dockerfile builds: each step runs in one build sandbox whose root is
//! the build's own copy of the `FROM` version.
//!
//! Protocol, under the template's build lock ([`BuildSession`]):
//! 1. The key of the build's inputs (the `FROM` version, every step with
//!    its environment, user and directory, the resulting config, and the
//!    content address of the build context) is compared with the last
//!    build's; equal keys reuse that version without running anything.
//! 2. The `FROM` version's root filesystem is copied into the session's
//!    work directory, and a sandbox boots on it with no layer of its own
//!    (`RootFs::WritableDir`): what the steps change is the next version.
//!    The sandbox belongs to the caller's team (quota, audit), may reach
//!    only the host's Debian mirror and the build's `allow` list, and its
//!    agent installs no Warren CA (the template would keep it).
//! 3. RUN is an exec as the step's user in its directory with its
//!    environment; COPY and ADD pack the named context files on the host
//!    (no symlink in the context is followed) and unpack them inside with
//!    `tar`, so the sandbox's own files (symlinks a RUN left included) are
//!    only ever touched from inside it; WORKDIR is a `mkdir -p` inside.
//! 4. The sandbox is stopped and killed and the directory published as a
//!    version tagged `latest` (with the empty mount point of the agent at
//!    `/.warren/agent` that every sandbox has). A failed step ends the build with its line, command, exit
//!    code and last output lines; the work directory is deleted.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Sender;
use warren_api_types::{ExecEvent, ExecRequest};
use warren_core::laps::Laps;
use warren_core::network::{Internet, NetRule, NetworkPolicy};
use warren_core::{Limits, OnIdle, Persistence, SandboxId, WarrenError};
use warren_runtime::RootFs;
use warren_store::NewSandbox;
use warren_template::dockerfile::{Action, Plan, Step};
use warren_template::oci::ImageConfig;
use warren_template::{BuildConfig, BuildSession, Template};

use super::Sandboxes;
use super::create::Dispatcher;
use crate::audit::{Action as AuditAction, AuditActor};

/// Output lines of a failed step shown in its error.
const TAIL_LINES: usize = 20;
/// Longest a build sandbox lives.
const BUILD_TIMEOUT_S: u64 = 3600;
/// Memory of a build sandbox at least (package managers need some).
const BUILD_MEMORY_MB: u32 = 2048;
/// Largest file set one COPY packs.
const COPY_LIMIT: u64 = 4 << 30;

/// A Dockerfile build to run.
pub struct DockerfileBuild {
    pub plan: Plan,
    /// The extracted build context.
    pub context: PathBuf,
    pub dispatcher: Dispatcher,
    /// Destinations the RUN steps may reach besides the Debian mirror.
    pub allow: Vec<NetRule>,
    /// Steps with an index ≥ this run even when cached (a client's "skip
    /// the cache from here"); `None`: the cache decides.
    pub fresh_from: Option<usize>,
}

impl Sandboxes {
    /// Runs `build` into `session`; see the module docs.
    pub async fn build_dockerfile(
        &self,
        session: BuildSession,
        build: DockerfileBuild,
        progress: Sender<String>,
        actor: &AuditActor,
    ) -> Result<Template, WarrenError> {
        let from = match self.templates.ready(&build.plan.from) {
            Ok(t) => t,
            Err(e) => return Err(session.fail(e).await.unwrap_err().into()),
        };
        let key = build_key(&from, &build).await?;
        if build.fresh_from.is_none()
            && let Some(t) = session.cached(&key)?
        {
            return Ok(session.reuse(&t).await?);
        }
        let line = |l: String| {
            let progress = progress.clone();
            async move {
                let _ = progress.send(l).await;
            }
        };
        line(format!("FROM {}", from.reference())).await;
        let rootfs = session.rootfs();
        if let Err(e) = copy_tree(&from.rootfs, &rootfs).await {
            return Err(session.fail(io_error(e)).await.unwrap_err().into());
        }
        let result = self
            .run_steps(&build, &from, rootfs, &progress, actor)
            .await;
        match result {
            Ok(()) => {
                let config = BuildConfig {
                    image: Some(image_config(&from, &build.plan)),
                    start: build.plan.start(),
                    build_key: Some(key),
                };
                Ok(session.publish(config).await?)
            }
            Err(e) => {
                let _ = progress.send(format!("build failed: {}", e.message)).await;
                let _ = session
                    .fail(io_error(std::io::Error::other(e.message.clone())))
                    .await;
                Err(e)
            }
        }
    }

    async fn run_steps(
        &self,
        build: &DockerfileBuild,
        from: &Template,
        rootfs: PathBuf,
        progress: &Sender<String>,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        let id = self.boot_builder(build, from, rootfs.clone()).await?;
        let total = build.plan.steps.len();
        let mut outcome = Ok(());
        for (n, step) in build.plan.steps.iter().enumerate() {
            let _ = progress
                .send(format!(
                    "step {}/{total} (line {}): {}",
                    n + 1,
                    step.line,
                    step.text
                ))
                .await;
            outcome = self
                .run_step(&id, step, &build.context, progress, actor)
                .await;
            if outcome.is_err() {
                break;
            }
        }
        // The directory is the next version: nothing may write it after this.
        if let Err(e) = self.runtime.stop(&id).await {
            tracing::warn!(sandbox = %id, error = %e, "could not stop a build sandbox");
        }
        if let Err(e) = self.end(&id, actor, AuditAction::SandboxKill).await {
            tracing::warn!(sandbox = %id, error = %e.message, "could not end a build sandbox");
        }
        outcome
    }

    /// Creates and boots the build sandbox on `rootfs`; returns its id.
    async fn boot_builder(
        &self,
        build: &DockerfileBuild,
        from: &Template,
        rootfs: PathBuf,
    ) -> Result<SandboxId, WarrenError> {
        let mut allow = build.allow.clone();
        if let Some(host) = warren_template::debian_mirror("bookworm")
            .ok()
            .and_then(|uri| url::Url::parse(&uri).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            && let Ok(rule) = host.parse()
        {
            allow.push(rule);
        }
        let mut limits: Limits = *self.default_limits();
        limits.memory_mb = limits.memory_mb.max(BUILD_MEMORY_MB);
        let rec = self
            .store
            .create_sandbox_in_quota(NewSandbox {
                id: SandboxId::generate(),
                template: from.name.clone(),
                template_version: None,
                limits,
                env: BTreeMap::new(),
                metadata: BTreeMap::from([("warren.build".to_owned(), "dockerfile".to_owned())]),
                team: build.dispatcher.team.clone(),
                owner: build.dispatcher.user.clone(),
                created_by: build.dispatcher.key.clone(),
                expires_at: self.clock.now() + time::Duration::seconds(BUILD_TIMEOUT_S as i64),
                persistence: Persistence {
                    timeout_s: BUILD_TIMEOUT_S,
                    idle_timeout_s: None,
                    on_idle: OnIdle::Kill,
                    ..Persistence::default()
                },
                source_snapshot: None,
                network: NetworkPolicy {
                    internet: Internet::Deny,
                    allow,
                    ..NetworkPolicy::default()
                },
                inbox: Default::default(),
            })
            .await?;
        let spec = self.runtime_spec(&rec, RootFs::WritableDir(rootfs))?;
        let mut laps = Laps::start();
        let booted = async {
            self.runtime.create(&spec).await?;
            let instance = self.runtime.start(&spec.id).await?;
            self.init_agent_with(&rec, &instance, None, false).await
        }
        .await;
        let actor = AuditActor::system("template-build");
        if let Err(e) = booted {
            self.fail(&rec.id, &actor, &e.message).await;
            return Err(e);
        }
        laps.lap("boot");
        self.finish_create(&rec.id, &actor).await?;
        Ok(rec.id)
    }

    async fn run_step(
        &self,
        id: &SandboxId,
        step: &Step,
        context: &Path,
        progress: &Sender<String>,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        let ctx = &step.context;
        let user = ctx.user.split(':').next().unwrap_or("root").to_owned();
        match &step.action {
            Action::Run(argv) => {
                self.run_in(
                    id,
                    argv.clone(),
                    &user,
                    &ctx.workdir,
                    &ctx.env,
                    step,
                    progress,
                    actor,
                )
                .await
            }
            Action::MakeDir(dir) => {
                let script =
                    r#"mkdir -p -- "$1" && if [ "$2" != root ]; then chown -- "$2" "$1"; fi"#;
                let argv = shell(script, &[dir, &ctx.user]);
                self.run_in(
                    id,
                    argv,
                    "root",
                    "/",
                    &BTreeMap::new(),
                    step,
                    progress,
                    actor,
                )
                .await
            }
            Action::Copy {
                sources,
                dest,
                chown,
                chmod,
            } => {
                let packed = pack(context, sources, dest, *chmod)
                    .await
                    .map_err(|e| step_error(step, &e))?;
                let inside = format!("/tmp/.warren-copy-{}.tar", step.line);
                let file = tokio::fs::File::open(packed.archive.path())
                    .await
                    .map_err(|e| {
                        WarrenError::internal(format!("could not read the packed context: {e}"))
                    })?;
                let body = tokio_util::io::ReaderStream::new(file);
                self.write_file(id, &inside, Some("root"), body, COPY_LIMIT, actor)
                    .await?;
                let script = r#"set -e; mkdir -p -- "$2"; tar -xf "$1" -C "$2"; rm -f -- "$1"; shift 2; if [ -n "$OWNER" ]; then for p in "$@"; do chown -hR -- "$OWNER" "$p"; done; fi"#;
                let mut args: Vec<&str> = vec![&inside, &packed.unpack_dir];
                args.extend(packed.top.iter().map(String::as_str));
                let argv = shell(script, &args);
                let env = BTreeMap::from([("OWNER".to_owned(), chown.clone().unwrap_or_default())]);
                self.run_in(id, argv, "root", "/", &env, step, progress, actor)
                    .await
            }
        }
    }

    /// Runs `argv` in the build sandbox; a non-zero exit fails the step.
    #[allow(clippy::too_many_arguments)]
    async fn run_in(
        &self,
        id: &SandboxId,
        argv: Vec<String>,
        user: &str,
        cwd: &str,
        env: &BTreeMap<String, String>,
        step: &Step,
        progress: &Sender<String>,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        let req = ExecRequest {
            cmd: argv,
            env: env.clone(),
            cwd: Some(cwd.to_owned()),
            user: Some(user.to_owned()),
            stdin: None,
        };
        let mut events = self.exec(id, req, actor.clone()).await?;
        let mut tail: VecDeque<String> = VecDeque::new();
        let mut partial = String::new();
        while let Some(event) = events.next().await {
            match event {
                ExecEvent::Stdout { data } | ExecEvent::Stderr { data } => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap_or_default();
                    partial.push_str(&String::from_utf8_lossy(&bytes));
                    while let Some(i) = partial.find('\n') {
                        let line: String = partial.drain(..=i).collect();
                        let line = line.trim_end().to_owned();
                        let _ = progress.send(format!("  {line}")).await;
                        tail.push_back(line);
                        if tail.len() > TAIL_LINES {
                            tail.pop_front();
                        }
                    }
                }
                ExecEvent::Exit {
                    exit_code,
                    signal,
                    error,
                } => {
                    if !partial.is_empty() {
                        tail.push_back(std::mem::take(&mut partial));
                    }
                    if exit_code == 0 {
                        return Ok(());
                    }
                    let why = signal
                        .map(|s| format!("was killed by {s}"))
                        .or(error)
                        .unwrap_or_else(|| format!("exited with code {exit_code}"));
                    let tail: Vec<String> = tail.into();
                    return Err(step_error(
                        step,
                        &format!("{why}; last output:\n{}", tail.join("\n")),
                    ));
                }
                ExecEvent::Start { .. } => {}
            }
        }
        Err(step_error(
            step,
            "the sandbox agent ended the command's stream without an exit",
        ))
    }
}

fn step_error(step: &Step, what: &str) -> WarrenError {
    WarrenError::invalid(format!(
        "step at line {} (`{}`) {what}",
        step.line, step.text
    ))
}

fn shell(script: &str, args: &[&str]) -> Vec<String> {
    let mut argv = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
        "sh".to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    argv
}

/// The image config the result keeps: the `FROM` version's, then the
/// Dockerfile's.
fn image_config(from: &Template, plan: &Plan) -> ImageConfig {
    let mut config = from.image.clone().unwrap_or_default();
    config.digest = String::new();
    config.env.extend(plan.env.clone());
    if plan.workdir.is_some() {
        config.working_dir = plan.workdir.clone();
    }
    if plan.user.is_some() {
        config.user = plan.user.clone();
    }
    if !plan.entrypoint.is_empty() {
        config.entrypoint = plan.entrypoint.clone();
    }
    if !plan.cmd.is_empty() {
        config.cmd = plan.cmd.clone();
    }
    config
}

async fn build_key(from: &Template, build: &DockerfileBuild) -> Result<String, WarrenError> {
    let context = build.context.clone();
    let context_digest =
        tokio::task::spawn_blocking(move || warren_template::tree_digest(&context))
            .await
            .map_err(|e| WarrenError::internal(e.to_string()))?
            .map_err(|e| WarrenError::internal(format!("could not read the build context: {e}")))?;
    let mut h = Sha256::new();
    h.update(from.reference().as_bytes());
    h.update(format!("{:?}", build.plan).as_bytes());
    h.update(context_digest.as_bytes());
    Ok(hex::encode(h.finalize()))
}

async fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let status = tokio::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .status()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "cp -a {} failed ({status})",
            from.display()
        )))
    }
}

fn io_error(e: std::io::Error) -> warren_template::TemplateError {
    warren_template::TemplateError::Build(e.to_string())
}

/// The context files of one COPY, packed for unpacking at `unpack_dir`.
struct Packed {
    archive: tempfile::NamedTempFile,
    unpack_dir: String,
    /// The paths the unpack creates at the top of `unpack_dir` (to chown).
    top: Vec<String>,
}

/// Packs `sources` (relative to `context`) for `dest`: into `dest` when it
/// is a directory (a directory source's contents, a file by its name), or
/// a single file as `dest`. Refuses paths that leave the context or pass a
/// symlink in it.
async fn pack(
    context: &Path,
    sources: &[String],
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    let context = context.to_path_buf();
    let sources = sources.to_vec();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || pack_blocking(&context, &sources, &dest, chmod))
        .await
        .map_err(|e| e.to_string())?
}

fn pack_blocking(
    context: &Path,
    sources: &[String],
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    let archive = tempfile::NamedTempFile::new()
        .map_err(|e| format!("could not create a temporary file: {e}"))?;
    let mut tar = tar::Builder::new(archive.reopen().map_err(|e| e.to_string())?);
    tar.follow_symlinks(false);
    let into_dir = dest.ends_with('/');
    let (unpack_dir, single_name) = if into_dir {
        (dest.trim_end_matches('/').to_owned(), None)
    } else {
        let (parent, name) = dest.rsplit_once('/').unwrap_or(("", dest));
        (parent.to_owned(), Some(name.to_owned()))
    };
    let unpack_dir = if unpack_dir.is_empty() {
        "/".to_owned()
    } else {
        unpack_dir
    };
    let mut top = Vec::new();
    for source in sources {
        if source.contains(['*', '?', '[']) {
            return Err(format!(
                "{source}: wildcards in COPY sources are not supported; name the files"
            ));
        }
        let path = inside_context(context, source)?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("{source}: {e} (in the build context)"))?;
        if meta.is_dir() {
            if single_name.is_some() {
                // A directory copied to a path: its contents go there.
                return pack_dir_as(tar, archive, &path, dest, chmod);
            }
            for entry in std::fs::read_dir(&path).map_err(|e| format!("{source}: {e}"))? {
                let entry = entry.map_err(|e| format!("{source}: {e}"))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                append(&mut tar, &entry.path(), Path::new(&name), chmod)?;
                top.push(format!("{unpack_dir}/{name}"));
            }
        } else {
            let base = Path::new(source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = single_name.clone().unwrap_or(base);
            append(&mut tar, &path, Path::new(&name), chmod)?;
            top.push(format!("{}/{name}", unpack_dir.trim_end_matches('/')));
        }
    }
    tar.finish()
        .map_err(|e| format!("could not pack the context: {e}"))?;
    drop(tar);
    Ok(Packed {
        archive,
        unpack_dir,
        top,
    })
}

/// A directory source whose destination is a path, not `…/`.
fn pack_dir_as(
    mut tar: tar::Builder<std::fs::File>,
    archive: tempfile::NamedTempFile,
    dir: &Path,
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        append(&mut tar, &entry.path(), Path::new(&name), chmod)?;
    }
    tar.finish()
        .map_err(|e| format!("could not pack the context: {e}"))?;
    drop(tar);
    Ok(Packed {
        archive,
        unpack_dir: dest.to_owned(),
        top: vec![dest.to_owned()],
    })
}

/// Adds `path` (recursively, symlinks as symlinks) under `name`, owned by
/// root, with `chmod` as every entry's mode if given.
fn append(
    tar: &mut tar::Builder<std::fs::File>,
    path: &Path,
    name: &Path,
    chmod: Option<u32>,
) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", name.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    if let Some(mode) = chmod
        && !meta.file_type().is_symlink()
    {
        header.set_mode(mode);
    }
    let fail = |e: std::io::Error| format!("could not pack {}: {e}", name.display());
    if meta.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, name, std::io::empty())
            .map_err(fail)?;
        for entry in std::fs::read_dir(path).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            append(tar, &entry.path(), &name.join(entry.file_name()), chmod)?;
        }
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(fail)?;
        header.set_size(0);
        tar.append_link(&mut header, name, target).map_err(fail)?;
    } else if meta.is_file() {
        let file = std::fs::File::open(path).map_err(fail)?;
        tar.append_data(&mut header, name, file).map_err(fail)?;
    }
    Ok(())
}

/// `source` under `context`, refusing `..` above it and symlinks on the way.
fn inside_context(context: &Path, source: &str) -> Result<PathBuf, String> {
    let mut path = context.to_path_buf();
    let parts: Vec<_> = Path::new(source.trim_start_matches('/'))
        .components()
        .collect();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => continue,
            _ => {
                return Err(format!(
                    "{source}: COPY sources stay inside the build context"
                ));
            }
        }
        let last = i + 1 == parts.len();
        if !last && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("{source}: passes a symlink in the build context"));
        }
    }
    Ok(path)
}
