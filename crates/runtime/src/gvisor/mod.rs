//! gVisor backend: every sandbox is one runsc container in its own network
//! namespace, with a per-sandbox overlay over a shared template rootfs.
//!
//! Life of a sandbox (see `docs/runtime.md` for the why of each step):
//! - `create`: state directory and record, OCI bundle, namespace + veth
//!   for the spec's network attachment (one `ip` process); the sandbox's
//!   disk (`disk`) is attached in the background meanwhile;
//! - `start`/`restore`: address `eth0` inside the namespace (one `ip`
//!   process), wait for the disk, then `runsc run|restore --detach` inside
//!   that namespace;
//! - `checkpoint`: `runsc checkpoint`; without leave-running the record says
//!   stopped (runsc's own list keeps saying running);
//! - `destroy`: `runsc kill` + `delete --force`, cgroups, veth, namespace,
//!   disk, directory — each step skips what is already gone, so it is idempotent
//!   and cleans up after a partial create.
//!
//! The address pool and the nftables table are the daemon's, not this
//! runtime's: each spec carries the sandbox's [`crate::NetworkAttachment`]
//! (address, gateway, host interface name), which this backend realises
//! as a namespace and veth pair and keeps in its record.

mod bundle;
mod cgroup;
mod config;
mod direct_io;
mod disk;
mod freezer;
mod loop_device;
mod quirks;
mod record;
mod runsc;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use std::collections::HashMap;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use warren_core::SandboxId;
use warren_net::{NetnsEntry, SandboxNames, link};

pub use bundle::AGENT_PATH;
pub use config::GvisorConfig;

use crate::{Instance, Origin, RootFs, Runtime, RuntimeError, RuntimeSpec, Stats};
use bundle::BundleParams;
use disk::Layout;
use record::{Record, SandboxDir, Status};
use runsc::{Launch, LaunchPaths, Runsc};
use warren_core::laps::Laps;

/// Port of the agent (E2B envd protocol) inside every sandbox.
pub const AGENT_PORT: u16 = 49983;

/// How much of the console log an error message quotes.
const LOG_TAIL: usize = 2000;

/// The gVisor runtime. See the module docs.
#[derive(Debug)]
pub struct GvisorRuntime {
    runsc: Runsc,
    sandboxes_dir: PathBuf,
    /// Held while a sandbox directory is checked and created, so two
    /// creates of one id cannot both pass the check.
    creating: Mutex<()>,
    /// `runsc delete` of containers that died in a checkpoint, started in
    /// the background (it takes ~1.7 s) and awaited by the next `destroy`
    /// or `restore` of the same id, which must not race it; each says
    /// whether the container is gone.
    pending_deletes: std::sync::Mutex<HashMap<SandboxId, JoinHandle<bool>>>,
    /// Formatted images the sandboxes' disks are copied from.
    disks: disk::Disks,
}

impl GvisorRuntime {
    /// Whether runsc is installed and runnable and we are root.
    pub fn is_available() -> bool {
        config::unavailable_reason(Path::new("runsc")).is_none()
    }

    /// Prepares the state directory. Sandboxes left by an earlier runtime
    /// over the same state directory stay as they are (see
    /// [`Runtime::list_live`]). The host network (IPv4 forwarding, the
    /// firewall table) is the daemon's to set up.
    pub fn new(config: GvisorConfig) -> Result<Self, RuntimeError> {
        if let Some(reason) = config::unavailable_reason(&config.runsc_path) {
            return Err(RuntimeError::Unavailable(reason));
        }
        let binary = config::resolve_binary(&config.runsc_path).ok_or_else(|| {
            RuntimeError::Unavailable(format!(
                "runsc not found at {}",
                config.runsc_path.display()
            ))
        })?;
        let state_dir = prepare_dir(&config.state_dir)?;
        let runsc_root = prepare_dir(&state_dir.join("runsc"))?;
        let sandboxes_dir = prepare_dir(&state_dir.join("sandboxes"))?;
        tracing::debug!(state_dir = %state_dir.display(), "gVisor runtime ready");
        Ok(Self {
            runsc: Runsc::new(binary, runsc_root),
            sandboxes_dir,
            creating: Mutex::new(()),
            pending_deletes: std::sync::Mutex::new(HashMap::new()),
            disks: disk::Disks::new(state_dir.join("disks")),
        })
    }

    /// The runsc state directory (`runsc --root`), e.g. for `runsc exec` in
    /// diagnostics and tests.
    pub fn runsc_root(&self) -> PathBuf {
        self.sandboxes_dir.with_file_name("runsc")
    }

    fn dir(&self, id: &SandboxId) -> SandboxDir {
        SandboxDir::new(&self.sandboxes_dir, id)
    }

    fn record(&self, id: &SandboxId) -> Result<(SandboxDir, Record), RuntimeError> {
        let dir = self.dir(id);
        match dir.load()? {
            Some(rec) => Ok((dir, rec)),
            None => Err(RuntimeError::NotFound(id.to_string())),
        }
    }

    fn instance(rec: &Record) -> Instance {
        let net = rec.attachment();
        Instance {
            id: rec.id.clone(),
            agent_addr: SocketAddr::new(IpAddr::V4(net.address), AGENT_PORT),
            host_addr: IpAddr::V4(net.gateway),
            // The veth's address guard and strict reverse-path filtering
            // let nothing else send from this address (see `link`).
            origin: Origin::SourceAddress(IpAddr::V4(net.address)),
            network_kept: false,
        }
    }

    /// Bundle, record and network for `spec`; undone on failure. With
    /// `keep_network`, the directory, namespace and veth left by
    /// [`Self::clear_instance`] are used as they are; the returned flag
    /// says whether they were (all still there).
    async fn prepare(
        &self,
        spec: &RuntimeSpec,
        keep_network: bool,
        layout: Layout,
        sudo_relay: bool,
    ) -> Result<(SandboxDir, Record, bool), RuntimeError> {
        let names = SandboxNames::new(&spec.id, &spec.network.host_iface);
        let dir = self.dir(&spec.id);
        let rec = Record::new(&spec.id, &spec.network, Status::Created);
        let rootfs = spec.rootfs.path();
        let mut kept = keep_network;
        {
            let _creating = self.creating.lock().await;
            if dir.root.exists() && !keep_network {
                return Err(RuntimeError::Command {
                    op: format!("creating sandbox {}", spec.id),
                    detail: "it already exists in this runtime; destroy it first".into(),
                });
            }
            dir.create()?;
        }
        let result = async {
            dir.save(&rec)?;
            bundle::write(
                &dir.bundle(),
                &BundleParams {
                    id: &spec.id,
                    rootfs,
                    agent_binary: &spec.agent,
                    env: &spec.env,
                    netns_path: names.netns_path(),
                    cgroups_path: cgroup::cgroups_path(&spec.id),
                    limits: spec.limits,
                    tmp_on_disk: layout == Layout::TmpOnDisk,
                    volumes: &spec.volumes,
                    sudo_relay,
                },
            )?;
            layout.mark(&dir.bundle())?;
            if sudo_relay {
                bundle::mark_sudo_relay(&dir.bundle())?;
            }
            self.disks.start_attach(
                &spec.id,
                disk::image_path(&dir.root),
                dir.overlay(),
                spec.limits.disk_mb,
            );
            if !(kept && names.netns_exists() && names.host_veth_exists()) {
                kept = false;
                link::create(&names, &spec.network).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            self.cleanup_after_failure(&spec.id).await;
            return Err(e);
        }
        Ok((dir, rec, kept))
    }

    /// Addresses `eth0` and starts runsc (`run` or `restore`).
    async fn launch(
        &self,
        dir: &SandboxDir,
        rec: &mut Record,
        how: Launch<'_>,
        layout: Layout,
    ) -> Result<Instance, RuntimeError> {
        let mut laps = Laps::start();
        let net = rec.attachment();
        let names = SandboxNames::new(&rec.id, &net.host_iface);
        link::configure_inside(&names, &net).await?;
        laps.lap("address");
        self.disks.ready(&rec.id).await?;
        laps.lap("disk");
        let entry = NetnsEntry::open(&names)?;
        let paths = LaunchPaths {
            bundle: &dir.bundle(),
            overlay: &dir.overlay(),
            overlay_scope: layout.overlay_scope(),
            console_log: &dir.console_log(),
        };
        if let Err(e) = self.runsc.launch(&rec.id, how, &paths, entry).await {
            return Err(match e {
                RuntimeError::Command { op, detail } => RuntimeError::Command {
                    op,
                    detail: format!("{detail}; runsc said: {}", dir.console_tail(LOG_TAIL)),
                },
                other => other,
            });
        }
        laps.lap("runsc");
        rec.status = Status::Running;
        dir.save(rec)?;
        tracing::debug!(sandbox = %rec.id, %laps, "launched");
        Ok(Self::instance(rec))
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<SandboxId, JoinHandle<bool>>> {
        // The map stays consistent even if a holder panicked.
        self.pending_deletes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts `runsc delete` of a dead container. It costs ~1.7 s, so it
    /// runs now, in the background, and a later `restore` or `destroy` of
    /// the same id waits for it instead of paying for it.
    /// The sandbox's disk goes with the container: what it held is in the
    /// checkpoint image, if any.
    fn delete_in_background(&self, id: &SandboxId) {
        let runsc = self.runsc.clone();
        let dead = id.clone();
        let dir = self.dir(id);
        let task = tokio::spawn(async move {
            match runsc.delete(&dead).await {
                Ok(()) => {
                    if let Err(e) = release_disk(&dir).await {
                        tracing::debug!(sandbox = %dead, error = %e, "releasing a stopped container's disk");
                    }
                    true
                }
                Err(e) => {
                    tracing::debug!(sandbox = %dead, error = %e, "deleting a stopped container");
                    false
                }
            }
        });
        // A previous delete of the same id keeps running on its own.
        self.lock_pending().insert(id.clone(), task);
    }

    /// Removes a stopped instance's container, cgroup, bundle, overlay and
    /// console log, keeping its record and network (namespace, veth) for
    /// the next launch of the same id at the same attachment: a restore
    /// then skips tearing down and building again what it would get back
    /// unchanged.
    async fn clear_instance(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let pending = self.lock_pending().remove(id);
        let deleted = match pending {
            Some(task) => task.await.unwrap_or(false),
            None => false,
        };
        if !deleted {
            self.remove_container(id).await?;
        }
        cgroup::remove(id).await?;
        let dir = self.dir(id);
        self.disks.settle(id).await;
        release_disk(&dir).await?;
        dir.clear_instance_files()
    }

    /// Kills and deletes the container of `id` if runsc knows it.
    async fn remove_container(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        thaw_quietly(id).await;
        if self.runsc.status(id).await?.is_some() {
            if let Err(e) = self.runsc.kill(id).await {
                tracing::debug!(sandbox = %id, error = %e, "runsc kill");
            }
            self.runsc.delete(id).await?;
        }
        Ok(())
    }

    async fn cleanup_after_failure(&self, id: &SandboxId) {
        if let Err(e) = self.destroy(id).await {
            tracing::warn!(sandbox = %id, error = %e, "cleaning up a failed sandbox left something behind");
        }
    }

    /// Whether runsc reports the container as running.
    async fn runsc_running(&self, id: &SandboxId) -> Result<bool, RuntimeError> {
        Ok(self.runsc.status(id).await?.as_deref() == Some("running"))
    }
}

#[async_trait]
impl Runtime for GvisorRuntime {
    fn name(&self) -> &'static str {
        "gvisor"
    }

    async fn create(&self, spec: &RuntimeSpec) -> Result<(), RuntimeError> {
        let layout = match spec.rootfs {
            // Volumes must not be overlaid (see `bundle`).
            RootFs::TemplateDir(_) if !spec.volumes.is_empty() => Layout::RootOnly,
            RootFs::TemplateDir(_) => Layout::TmpOnDisk,
            RootFs::WritableDir(_) => Layout::Direct,
        };
        // `sudo` through the agent where set-user-ID bits do nothing (see
        // `bundle`).
        let sudo_relay = !self.runsc.allow_suid()
            && layout != Layout::Direct
            && spec.rootfs.path().join("usr/bin/sudo").exists();
        self.prepare(spec, false, layout, sudo_relay)
            .await
            .map(drop)
    }

    async fn start(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        let (dir, mut rec) = self.record(id)?;
        if rec.status == Status::Running && self.runsc_running(id).await? {
            return Ok(Self::instance(&rec));
        }
        let layout = Layout::of(&dir.bundle());
        self.launch(&dir, &mut rec, Launch::Run, layout).await
    }

    async fn checkpoint(
        &self,
        id: &SandboxId,
        dest: &Path,
        leave_running: bool,
    ) -> Result<(), RuntimeError> {
        let (dir, mut rec) = self.record(id)?;
        if rec.status != Status::Running {
            return Err(RuntimeError::Command {
                op: format!("checkpointing sandbox {id}"),
                detail: "it is not running; start or restore it first".into(),
            });
        }
        // No connection may be in the image (see `quirks`).
        let mut laps = Laps::start();
        let severed = quirks::sever_connections_before_checkpoint(id, rec.sandbox_ip).await;
        laps.lap("sever");
        self.runsc
            .checkpoint(id, dest, leave_running, direct_io::writable(dest))
            .await?;
        // The image restores only into the mounts it was taken with.
        Layout::of(&dir.bundle()).mark(dest)?;
        if bundle::has_sudo_relay(&dir.bundle()) {
            bundle::mark_sudo_relay(dest)?;
        }
        laps.lap("runsc");
        tracing::debug!(sandbox = %id, severed, %laps, "checkpointed");
        if !leave_running {
            rec.status = Status::Stopped;
            dir.save(&rec)?;
            self.delete_in_background(id);
        }
        Ok(())
    }

    async fn restore(&self, snapshot: &Path, spec: &RuntimeSpec) -> Result<Instance, RuntimeError> {
        let old = self.dir(&spec.id).load()?;
        if let Some(old) = &old
            && old.status == Status::Running
            && self.runsc_running(&spec.id).await?
        {
            return Err(RuntimeError::Command {
                op: format!("restoring sandbox {}", spec.id),
                detail: "it is still running; stop or destroy it first".into(),
            });
        }
        // A fresh bundle and overlay: the image carries the root filesystem
        // writes. The network stays when the attachment is the same (a
        // resume); a new id has nothing to clear.
        let mut laps = Laps::start();
        let keep_network = match &old {
            Some(old) if old.attachment() == spec.network => {
                self.clear_instance(&spec.id).await?;
                true
            }
            Some(_) => {
                self.destroy(&spec.id).await?;
                false
            }
            None => false,
        };
        laps.lap("clear");
        let layout = Layout::of(snapshot);
        let sudo_relay = bundle::has_sudo_relay(snapshot);
        let (dir, mut rec, kept) = self.prepare(spec, keep_network, layout, sudo_relay).await?;
        laps.lap("prepare");
        match self
            .launch(
                &dir,
                &mut rec,
                Launch::Restore {
                    image: snapshot,
                    direct: direct_io::readable(snapshot),
                },
                layout,
            )
            .await
        {
            Ok(instance) => {
                laps.lap("launch");
                tracing::debug!(sandbox = %spec.id, %laps, network_kept = kept, "restored");
                Ok(Instance {
                    network_kept: kept,
                    ..instance
                })
            }
            Err(e) => {
                self.cleanup_after_failure(&spec.id).await;
                Err(e)
            }
        }
    }

    async fn freeze(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let (dir, mut rec) = self.record(id)?;
        if rec.status != Status::Running {
            return Err(RuntimeError::Command {
                op: format!("freezing sandbox {id}"),
                detail: "it is not running".into(),
            });
        }
        if !freezer::available(id) {
            self.runsc.pause(id).await?;
            rec.status = Status::Frozen;
            return dir.save(&rec);
        }
        // Recorded first: runsc must never be asked about a frozen sandbox
        // its record calls running (see `freezer`).
        rec.status = Status::CgroupFrozen;
        dir.save(&rec)?;
        if let Err(e) = freezer::freeze(id).await {
            rec.status = Status::Running;
            dir.save(&rec)?;
            return Err(e);
        }
        Ok(())
    }

    async fn thaw(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        let (dir, mut rec) = self.record(id)?;
        match rec.status {
            Status::CgroupFrozen => freezer::thaw(id).await?,
            Status::Frozen => self.runsc.resume(id).await?,
            _ => {
                return Err(RuntimeError::Command {
                    op: format!("thawing sandbox {id}"),
                    detail: "it is not frozen".into(),
                });
            }
        }
        rec.status = Status::Running;
        dir.save(&rec)?;
        Ok(Instance {
            network_kept: true,
            ..Self::instance(&rec)
        })
    }

    async fn stop(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let (dir, mut rec) = self.record(id)?;
        if rec.status.is_live() {
            // A frozen sandbox takes no signal: let it go on, then kill it.
            thaw_quietly(id).await;
            if rec.status == Status::Frozen
                && let Err(e) = self.runsc.resume(id).await
            {
                tracing::debug!(sandbox = %id, error = %e, "runsc resume before kill");
            }
            // An already stopped container refuses the signal: that is fine.
            // One frozen without the record knowing (an older daemon's)
            // refuses it too and is let go on first.
            if let Err(e) = self.runsc.kill(id).await {
                tracing::debug!(sandbox = %id, error = %e, "runsc kill");
                if self.runsc.status(id).await?.as_deref() == Some("paused") {
                    self.runsc.resume(id).await?;
                    self.runsc.kill(id).await?;
                }
            }
            self.delete_in_background(id);
        }
        rec.status = Status::Stopped;
        dir.save(&rec)
    }

    async fn destroy(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let mut first_err: Option<RuntimeError> = None;
        let mut keep = |r: Result<(), RuntimeError>| {
            if let Err(e) = r {
                tracing::warn!(sandbox = %id, error = %e, "destroy step failed");
                first_err.get_or_insert(e);
            }
        };
        let mut laps = Laps::start();
        let pending = self.lock_pending().remove(id);
        if let Some(task) = pending {
            // Only a panic ends a delete task early; the steps below redo
            // whatever it did not finish.
            let _ = task.await;
        }
        laps.lap("pending");
        keep(self.remove_container(id).await);
        laps.lap("runsc");
        keep(cgroup::remove(id).await);
        laps.lap("cgroup");
        // A sandbox without a (readable) record may still have a network
        // from a partial create: look for it under the usual name.
        let host_iface = match self.dir(id).load() {
            Ok(Some(rec)) => rec.attachment().host_iface,
            Ok(None) => warren_net::host_iface_name(id),
            Err(e) => {
                keep(Err(e));
                warren_net::host_iface_name(id)
            }
        };
        keep(
            link::remove(&SandboxNames::new(id, &host_iface))
                .await
                .map_err(Into::into),
        );
        laps.lap("link");
        let dir = self.dir(id);
        self.disks.settle(id).await;
        keep(release_disk(&dir).await);
        laps.lap("disk");
        keep(dir.remove());
        tracing::debug!(sandbox = %id, %laps, "destroyed");
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats, RuntimeError> {
        let (dir, rec) = self.record(id)?;
        if !rec.status.is_live() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        let mut stats = cgroup::stats(id)?.ok_or_else(|| RuntimeError::NotFound(id.to_string()))?;
        // The image is sparse: its allocated blocks are what it holds.
        stats.disk_bytes = std::fs::metadata(disk::image_path(&dir.root))
            .map(|m| std::os::unix::fs::MetadataExt::blocks(&m).saturating_mul(512))
            .unwrap_or(0);
        Ok(stats)
    }

    async fn has_exited(&self, id: &SandboxId) -> Result<bool, RuntimeError> {
        let Some(rec) = self.dir(id).load()? else {
            return Ok(false);
        };
        Ok(rec.status.is_live() && !cgroup::has_processes(id))
    }

    async fn list_live(&self) -> Result<Vec<Instance>, RuntimeError> {
        let mut live = Vec::new();
        for id in record::list_ids(&self.sandboxes_dir)? {
            let Some(rec) = self.dir(&id).load()? else {
                continue;
            };
            // A frozen instance is live too (it belongs to a paused sandbox
            // in standby and still holds its memory). runsc is not asked
            // about one frozen by the cgroup freezer: it would not answer.
            let alive = match rec.status {
                Status::CgroupFrozen => !cgroup::existing_dirs(&id).is_empty(),
                Status::Running | Status::Frozen => matches!(
                    self.runsc.status(&id).await?.as_deref(),
                    Some("running" | "paused")
                ),
                Status::Created | Status::Stopped => false,
            };
            if alive {
                live.push(Self::instance(&rec));
            }
        }
        Ok(live)
    }
}

/// Unmounts and removes the sandbox's disk (see `disk`).
async fn release_disk(dir: &SandboxDir) -> Result<(), RuntimeError> {
    disk::release(&disk::image_path(&dir.root), &dir.overlay()).await
}

/// Lets a sandbox frozen by the cgroup freezer go on before runsc talks
/// to it (see `freezer`); a sandbox that is not frozen is left alone.
async fn thaw_quietly(id: &SandboxId) {
    if let Err(e) = freezer::thaw(id).await {
        tracing::warn!(sandbox = %id, error = %e, "could not thaw the sandbox's cgroup");
    }
}

fn prepare_dir(path: &Path) -> Result<PathBuf, RuntimeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .and_then(|()| path.canonicalize())
        .map_err(|e| RuntimeError::Io {
            op: format!("creating state directory {}", path.display()),
            source: e,
        })
}
