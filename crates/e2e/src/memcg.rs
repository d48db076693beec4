//! A memory cgroup of a test's own, below the test process's: processes
//! put into it (a daemon, and the children it starts from then on) share
//! its limit. cgroup v1 (hybrid hosts: the `memory` hierarchy) and v2.
//! On drop its processes go back to the parent cgroup and it is removed.
//! Needs root.

use std::path::{Path, PathBuf};

use anyhow::Context;

const ROOT: &str = "/sys/fs/cgroup";

/// See the module docs.
pub struct MemoryCgroup {
    dir: PathBuf,
    v2: bool,
}

fn v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// This process's cgroup directory in the memory hierarchy.
fn own_dir(v2: bool) -> anyhow::Result<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/cgroup")?;
    for line in table.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        let ours = if v2 {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        };
        if ours {
            let base = if v2 {
                PathBuf::from(ROOT)
            } else {
                Path::new(ROOT).join("memory")
            };
            return Ok(base.join(path.trim_start_matches('/')));
        }
    }
    anyhow::bail!("no memory cgroup in /proc/self/cgroup")
}

impl MemoryCgroup {
    /// A new cgroup limited to `limit` bytes (memory, swap included where
    /// the host accounts it).
    pub fn new(limit: u64) -> anyhow::Result<Self> {
        let v2 = v2();
        let dir = own_dir(v2)?.join(format!("warren-e2e-mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let cg = Self { dir, v2 };
        cg.set_limit(limit)?;
        Ok(cg)
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        std::fs::write(self.dir.join(file), value)
            .with_context(|| format!("writing {value} to {}/{file}", self.dir.display()))
    }

    fn read_u64(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn set_limit(&self, limit: u64) -> anyhow::Result<()> {
        match self.v2 {
            true => self.write("memory.max", &limit.to_string()),
            false => self.write("memory.limit_in_bytes", &limit.to_string()),
        }
    }

    /// Moves `pid` into the cgroup.
    pub fn add(&self, pid: u32) -> anyhow::Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The most the cgroup used at once so far.
    pub fn peak(&self) -> u64 {
        match self.v2 {
            true => self.read_u64("memory.peak"),
            false => self.read_u64("memory.max_usage_in_bytes"),
        }
    }

    /// Processes the kernel killed for this cgroup's limit.
    pub fn oom_kills(&self) -> u64 {
        let file = match self.v2 {
            true => "memory.events",
            false => "memory.oom_control",
        };
        std::fs::read_to_string(self.dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The processes in it now.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let parent = self.dir.parent().map(|p| p.join("cgroup.procs"));
        for pid in self.pids() {
            if let Some(parent) = &parent {
                let _ = std::fs::write(parent, pid.to_string());
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}
