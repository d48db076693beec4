//! Dockerfile builds: each step runs in one build sandbox whose root is
//! the build's own copy of the `FROM` version.
//!
//! Protocol, under the template's build lock ([`BuildSession`]):
//! 1. The key of the build's inputs (the `FROM` version, every step with
//!    its environment, user and directory, the resulting config, and the
//!    content address of the build context) is compared with the last
//!    build's; equal keys reuse that version without running anything
//!    (unless the build asks for fresh steps, `fresh_from`).
//! 2. Every COPY's context files are packed on the host (no symlink in the
//!    context is followed; [`pack`]) and each step gets its key in the
//!    step cache ([`cache`]). The `FROM` version's root filesystem is
//!    copied into the session's work directory and the layers of the
//!    longest run of cached first steps applied to it; if steps remain, a
//!    sandbox boots on it with no layer of its own
//!    (`RootFs::WritableDir`): what the steps change is the next version.
//!    The sandbox belongs to the caller's team (quota, audit), may reach
//!    only the host's Debian mirror and the build's `allow` list, and its
//!    agent installs no Warren CA (the template would keep it).
//! 3. RUN is an exec as the step's user in its directory with its
//!    environment; COPY and ADD unpack their packed files inside with
//!    `tar`, so the sandbox's own files (symlinks a RUN left included) are
//!    only ever touched from inside it; WORKDIR is a `mkdir -p` inside.
//!    After each step the sandbox's caches are synced to the tree and its
//!    change kept as the step's layer; nothing runs in the sandbox
//!    between steps.
//! 4. The sandbox is stopped and killed and the directory published as a
//!    version tagged `latest` (with the empty mount point of the agent at
//!    `/.warren/agent` that every sandbox has). A failed step ends the
//!    build with its line, command, exit code and last output lines; the
//!    work directory is deleted.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

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

mod cache;
mod pack;

use pack::{Packed, pack};
use warren_template::layers::LayerCache;

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
    /// Steps from this index on run even when cached (`Some(0)`: no
    /// cache); `None`: the cache decides.
    pub fresh_from: Option<usize>,
}

/// What running the steps of one build needs.
struct Run<'a> {
    build: &'a DockerfileBuild,
    /// Each COPY's packed files, by step.
    packs: &'a [Option<Packed>],
    /// Each step's cache key.
    keys: &'a [String],
    layers: Option<&'a LayerCache>,
    progress: &'a Sender<String>,
    actor: &'a AuditActor,
}

/// A progress sink nobody reads.
fn dev_null() -> Sender<String> {
    tokio::sync::mpsc::channel(1).0
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
        let fresh = build.fresh_from.is_some_and(|f| f < build.plan.steps.len());
        if !fresh && let Some(t) = session.cached(&key)? {
            return Ok(session.reuse(&t).await?);
        }
        let _ = progress.send(format!("FROM {}", from.reference())).await;
        let rootfs = session.rootfs();
        let result = self
            .build_steps(&build, &from, &rootfs, &progress, actor)
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

    /// Fills `rootfs`: the `FROM` tree, the cached steps replayed, the
    /// others run in a build sandbox.
    async fn build_steps(
        &self,
        build: &DockerfileBuild,
        from: &Template,
        rootfs: &Path,
        progress: &Sender<String>,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        let mut packs = Vec::with_capacity(build.plan.steps.len());
        for step in &build.plan.steps {
            packs.push(match &step.action {
                Action::Copy {
                    sources,
                    dest,
                    chmod,
                    ..
                } => Some(
                    pack(&build.context, sources, dest, *chmod)
                        .await
                        .map_err(|e| step_error(step, &e))?,
                ),
                _ => None,
            });
        }
        let keys = cache::keys(from, &build.plan, &packs).await?;
        let layers = cache::open(self.templates.dir());
        let done = cache::replay(
            layers.as_ref(),
            &keys,
            &build.plan,
            build.fresh_from,
            (&from.rootfs, rootfs),
            progress,
        )
        .await?;
        if done == build.plan.steps.len() {
            return Ok(());
        }
        let run = Run {
            build,
            packs: &packs,
            keys: &keys,
            layers: layers.as_ref(),
            progress,
            actor,
        };
        self.run_steps(&run, from, rootfs, done).await
    }

    /// Boots the build sandbox and runs the steps from `first` on.
    async fn run_steps(
        &self,
        run: &Run<'_>,
        from: &Template,
        rootfs: &Path,
        first: usize,
    ) -> Result<(), WarrenError> {
        let steps = &run.build.plan.steps;
        // A kept layer is a change on top of the layers kept for the steps
        // before it: those of the steps about to run are made again here
        // (they exist only when `fresh_from` asked for fresh steps).
        if let Some(layers) = run.layers {
            for key in &run.keys[first..] {
                layers.remove(key);
            }
        }
        // Walked before the boot: whatever booting writes goes with the
        // first step, so replaying its layer reproduces it.
        let mut before = match run.layers {
            Some(_) => cache::walk(rootfs).await,
            None => None,
        };
        let id = self
            .boot_builder(run.build, from, rootfs.to_path_buf())
            .await?;
        let total = steps.len();
        let mut outcome = Ok(());
        for (n, step) in steps.iter().enumerate().skip(first) {
            let _ = run
                .progress
                .send(format!(
                    "step {}/{total} (line {}): {}",
                    n + 1,
                    step.line,
                    step.text
                ))
                .await;
            outcome = self
                .run_step(&id, step, run.packs[n].as_ref(), run.progress, run.actor)
                .await;
            if outcome.is_err() {
                break;
            }
            if let (Some(layers), Some(walked)) = (run.layers, before.take()) {
                // What the sandbox holds in memory reaches the tree first.
                let _ = self
                    .run_in(
                        &id,
                        vec!["sync".into()],
                        "root",
                        "/",
                        &BTreeMap::new(),
                        step,
                        &dev_null(),
                        run.actor,
                    )
                    .await;
                before = cache::record(layers, &run.keys[n], rootfs, walked).await;
            }
        }
        // The directory is the next version: nothing may write it after this.
        if let Err(e) = self.runtime.stop(&id).await {
            tracing::warn!(sandbox = %id, error = %e, "could not stop a build sandbox");
        }
        if let Err(e) = self.end(&id, run.actor, AuditAction::SandboxKill).await {
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
        packed: Option<&Packed>,
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
            Action::Copy { chown, .. } => {
                let packed = packed.ok_or_else(|| step_error(step, "was not packed"))?;
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

pub(super) async fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
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
