//! The raw engine: bare `runsc` on the same template rootfs, with no
//! network, no overlay directory and no agent — the floor Warren is compared
//! against.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

pub struct RawRunsc {
    dir: TempDir,
    bundle: PathBuf,
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl RawRunsc {
    /// A bundle that runs `sleep infinity` read-only on `rootfs`.
    pub fn new(rootfs: &Path) -> anyhow::Result<Self> {
        Self::with_command(rootfs, &["/bin/sleep", "infinity"])
    }

    /// A bundle that runs `argv` read-only on `rootfs`.
    pub fn with_command(rootfs: &Path, argv: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("warren-bench-raw-")
            .tempdir()?;
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle)?;
        run(Command::new("runsc")
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .arg("--")
            .args(argv))?;
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        spec["root"]["path"] = rootfs.display().to_string().into();
        spec["root"]["readonly"] = true.into();
        spec["process"]["terminal"] = false.into();
        std::fs::write(&path, serde_json::to_vec(&spec)?)?;
        std::fs::create_dir_all(dir.path().join("root"))?;
        Ok(Self { dir, bundle })
    }

    fn runsc(&self) -> Command {
        let mut c = Command::new("runsc");
        c.arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--network=none");
        c
    }

    /// `runsc run --detach`: returns when the container runs. The
    /// container inherits stdio, so it gets none (a pipe would never close).
    pub fn start(&self, id: &str) -> anyhow::Result<Duration> {
        let mut cmd = self.runsc();
        cmd.arg("run");
        self.detached(cmd, id)
    }

    /// Runs `cmd --detach --bundle B id` and times it.
    fn detached(&self, mut cmd: Command, id: &str) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let status = cmd
            .args(["--detach", "--bundle"])
            .arg(&self.bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        let elapsed = t.elapsed();
        if !status.success() {
            bail!("{cmd:?} failed: {status}");
        }
        Ok(elapsed)
    }

    /// `runsc exec ID true`.
    pub fn exec_true(&self, id: &str) -> anyhow::Result<Duration> {
        let t = Instant::now();
        run(self.runsc().args(["exec", id, "/bin/true"]))?;
        Ok(t.elapsed())
    }

    /// `runsc pause ID`: the container's tasks stop in place.
    pub fn pause(&self, id: &str) -> anyhow::Result<()> {
        run(self.runsc().args(["pause", id])).map(drop)
    }

    /// `runsc resume ID`.
    pub fn resume(&self, id: &str) -> anyhow::Result<Duration> {
        let t = Instant::now();
        run(self.runsc().args(["resume", id]))?;
        Ok(t.elapsed())
    }

    /// `runsc checkpoint --compression=none` into `image` (the container
    /// is gone afterwards unless `leave_running`), the pages written with
    /// `O_DIRECT` if `direct`.
    pub fn checkpoint(
        &self,
        id: &str,
        image: &Path,
        leave_running: bool,
        direct: bool,
    ) -> anyhow::Result<Duration> {
        timed_checkpoint(self.runsc(), id, image, leave_running, direct)
    }

    /// `runsc restore --direct --detach` of `image` as `id`.
    pub fn restore(&self, id: &str, image: &Path) -> anyhow::Result<Duration> {
        let mut cmd = self.runsc();
        cmd.arg("restore")
            .arg("--direct")
            .arg(format!("--image-path={}", image.display()));
        self.detached(cmd, id)
    }

    /// `runsc delete --force` of a stopped (checkpointed) container.
    pub fn delete(&self, id: &str) {
        let _ = self.runsc().args(["delete", "--force", id]).output();
    }

    pub fn remove(&self, id: &str) {
        let _ = self.runsc().args(["kill", id, "KILL"]).output();
        let _ = self.runsc().args(["delete", "--force", id]).output();
    }
}

/// `runsc --root ROOT checkpoint --leave-running --direct` of a container
/// another runtime owns (Warren's own sandbox, under its daemon's runsc
/// root): the engine alone doing exactly the work of Warren's pause.
pub fn checkpoint_foreign(runsc_root: &Path, id: &str, image: &Path) -> anyhow::Result<Duration> {
    let mut cmd = Command::new("runsc");
    cmd.arg("--root").arg(runsc_root);
    timed_checkpoint(cmd, id, image, true, true)
}

/// Runs `cmd checkpoint --compression=none …` and times it.
fn timed_checkpoint(
    mut cmd: Command,
    id: &str,
    image: &Path,
    leave_running: bool,
    direct: bool,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    cmd.arg("checkpoint")
        .arg(format!("--image-path={}", image.display()))
        .arg("--compression=none");
    if leave_running {
        cmd.arg("--leave-running");
    }
    if direct {
        cmd.arg("--direct");
    }
    run(cmd.arg(id))?;
    Ok(t.elapsed())
}
