//! Fixtures for the root/runsc integration tests: a busybox rootfs, a shell
//! "agent" that serves HTTP on the agent port, and a runtime with its own
//! state directory and address pool per test. The fixture plays the
//! daemon's part of the network: it installs the firewall table for its
//! pool and hands each spec its attachment.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use warren_core::{Limits, SandboxId};
use warren_net::{AddressPool, Firewall, NetworkAttachment};
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warren_runtime::{RootFs, Runtime, RuntimeSpec};

pub const INDEX: &str = "hello from the template\n";

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "wget", "httpd", "sleep", "mkdir", "rm", "dd", "head", "grep", "ps",
    "free", "test", "[", "true", "false", "sync", "tail", "wc",
];

pub struct Fixture {
    // Field order is drop order: the runtime goes before its directory.
    pub rt: GvisorRuntime,
    pub rootfs: PathBuf,
    pub agent: PathBuf,
    pub state_dir: PathBuf,
    pub pool: String,
    /// The test's firewall table, installed as a daemon installs its own;
    /// removed on drop.
    pub firewall: Firewall,
    pub tmp: tempfile::TempDir,
}

/// The host network a daemon over `state_dir` with `pool` sets up before
/// its runtime: IPv4 forwarding on and its firewall table installed.
pub fn host_network(state_dir: &Path, pool: &str) -> Firewall {
    let pool: AddressPool = pool.parse().expect("pool");
    warren_net::enable_ipv4_forwarding().expect("IPv4 forwarding");
    let firewall = Firewall::new(state_dir, pool);
    firewall.install_blocking().expect("firewall table");
    firewall
}

/// A spec for a new sandbox attached at `slot` of `pool`.
pub fn spec_in(pool: &str, slot: u32, rootfs: &Path, agent: &Path, limits: Limits) -> RuntimeSpec {
    let id = SandboxId::generate();
    let pool: AddressPool = pool.parse().expect("pool");
    RuntimeSpec {
        network: NetworkAttachment::new(&pool, &id, slot).expect("slot in pool"),
        volumes: Vec::new(),
        id,
        rootfs: RootFs::TemplateDir(rootfs.to_path_buf()),
        agent: agent.to_path_buf(),
        env: RuntimeSpec::agent_env(),
        limits,
    }
}

impl Drop for Fixture {
    /// Destroys whatever a failed test left running, so one failure does not
    /// leak sandboxes into the host.
    fn drop(&mut self) {
        self.destroy_all();
        if let Err(e) = self.firewall.remove_blocking() {
            eprintln!("removing the firewall table failed: {e}");
        }
    }
}

impl Fixture {
    fn destroy_all(&self) {
        let Ok(entries) = std::fs::read_dir(self.state_dir.join("sandboxes")) else {
            return;
        };
        let ids: Vec<SandboxId> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        if ids.is_empty() {
            return;
        }
        let rt = &self.rt;
        // A test's own tokio runtime may be running on this thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let Ok(tokio_rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                for id in &ids {
                    if let Err(e) = tokio_rt.block_on(rt.destroy(id)) {
                        eprintln!("cleanup of {id} failed: {e}");
                    }
                }
            });
        });
    }
}

/// A rootfs, agent and runtime whose pool is `10.201.<octet>.0/24`.
pub fn fixture(octet: u8) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let rootfs = tmp.path().join("rootfs");
    build_rootfs(&rootfs);
    let agent = tmp.path().join("agent");
    std::fs::write(
        &agent,
        "#!/bin/sh\nexec /bin/busybox httpd -f -p 49983 -h /www\n",
    )
    .expect("write agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let state_dir = tmp.path().join("state");
    let pool = format!("10.201.{octet}.0/24");
    let firewall = host_network(&state_dir, &pool);
    let rt = GvisorRuntime::new(GvisorConfig::new(&state_dir)).expect("runtime");
    Fixture {
        rt,
        rootfs,
        agent,
        state_dir,
        pool,
        firewall,
        tmp,
    }
}

fn build_rootfs(root: &Path) {
    for dir in ["bin", "proc", "dev", "sys", "tmp", "etc", "www", "root"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir rootfs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("copy busybox");
    for applet in APPLETS {
        symlink("busybox", root.join("bin").join(applet)).expect("symlink applet");
    }
    std::fs::write(root.join("www/index.html"), INDEX).expect("index");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
}

impl Fixture {
    pub fn spec(&self, slot: u32) -> RuntimeSpec {
        self.spec_with(
            slot,
            Limits {
                cpus: 1,
                memory_mb: 256,
                pids: 1024,
                ..Limits::default()
            },
        )
    }

    pub fn spec_with(&self, slot: u32, limits: Limits) -> RuntimeSpec {
        spec_in(&self.pool, slot, &self.rootfs, &self.agent, limits)
    }

    /// `runsc exec` inside the sandbox.
    pub fn exec(&self, id: &SandboxId, args: &[&str]) -> Output {
        Command::new("runsc")
            .arg("--root")
            .arg(self.rt.runsc_root())
            .arg("exec")
            .arg(id.as_str())
            .args(args)
            .output()
            .expect("runsc exec")
    }

    /// Runs `busybox wget` inside `id`, giving up after 3 s (busybox's own
    /// timers crash under gVisor, so the bound is kept from the host);
    /// Ok(body) or Err(what happened).
    pub fn wget_inside(&self, id: &SandboxId, url: &str) -> Result<String, String> {
        self.wget_inside_within(id, url, Duration::from_secs(3))
    }

    /// [`Self::wget_inside`] with an explicit bound, for positive controls
    /// that must not fail merely because the host is busy.
    pub fn wget_inside_within(
        &self,
        id: &SandboxId,
        url: &str,
        bound: Duration,
    ) -> Result<String, String> {
        let mut child = Command::new("runsc")
            .arg("--root")
            .arg(self.rt.runsc_root())
            .arg("exec")
            .arg(id.as_str())
            .args(["/bin/wget", "-O", "-", url])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runsc exec");
        let deadline = Instant::now() + bound;
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer from {url} within {bound:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("runsc exec output");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Runs a shell command inside `id` and returns its stdout; panics on failure.
    pub fn sh(&self, id: &SandboxId, script: &str) -> String {
        let out = self.exec(id, &["/bin/sh", "-c", script]);
        assert!(
            out.status.success(),
            "`{script}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One HTTP/1.0 GET; body on success.
pub fn http_get_once(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: sandbox\r\n\r\n")?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    match resp.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_owned())
        }
        _ => Err(std::io::Error::other(format!("bad response: {resp:.200}"))),
    }
}

/// GET, retried for up to `wait` while the server comes up.
pub fn http_get(addr: SocketAddr, path: &str, wait: Duration) -> std::io::Result<String> {
    let deadline = Instant::now() + wait;
    loop {
        match http_get_once(addr, path) {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Whether anything on the host still refers to sandbox `id`.
pub fn leftovers(fx: &Fixture, id: &SandboxId) -> Vec<String> {
    leftovers_at(&fx.state_dir, &fx.rt.runsc_root(), id)
}

/// Whether anything on the host still refers to sandbox `id` of the
/// runtime with this state directory and runsc root.
pub fn leftovers_at(state_dir: &Path, runsc_root: &Path, id: &SandboxId) -> Vec<String> {
    let mut found = Vec::new();
    let netns = format!("warren-{id}");
    if Path::new("/run/netns").join(&netns).exists() {
        found.push(format!("netns {netns}"));
    }
    let veth: String = format!("wv{}", &id.as_str()[..13]);
    if Path::new("/sys/class/net").join(&veth).exists() {
        found.push(format!("veth {veth}"));
    }
    let guard = format!("warren_src_{veth}");
    let listed = Command::new("nft")
        .args(["list", "table", "netdev", &guard])
        .output()
        .expect("nft");
    if listed.status.success() {
        found.push(format!("nftables table netdev {guard}"));
    }
    let leaf = format!("warren-{id}");
    for entry in std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroup root")
        .flatten()
    {
        if entry.path().join(&leaf).exists() {
            found.push(format!("cgroup {}", entry.path().join(&leaf).display()));
        }
    }
    if Path::new("/sys/fs/cgroup").join(&leaf).exists() {
        found.push(format!("cgroup /sys/fs/cgroup/{leaf}"));
    }
    let list = Command::new("runsc")
        .arg("--root")
        .arg(runsc_root)
        .args(["list", "--quiet"])
        .output()
        .expect("runsc list");
    if String::from_utf8_lossy(&list.stdout).contains(id.as_str()) {
        found.push("runsc container".into());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    if mounts.contains(id.as_str()) {
        found.push("mount".into());
    }
    let ps = Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .expect("ps");
    if String::from_utf8_lossy(&ps.stdout).contains(id.as_str()) {
        found.push("process".into());
    }
    if state_dir.join("sandboxes").join(id.as_str()).exists() {
        found.push("sandbox directory".into());
    }
    found
}
