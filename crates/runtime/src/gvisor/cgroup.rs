//! The sandbox's cgroup, as runsc creates it from `linux.cgroupsPath`
//! (`/warren-<id>`): usage for `stats`, and removal of anything left behind.
//!
//! cgroup v2 (a unified hierarchy at `/sys/fs/cgroup`) keeps one directory;
//! cgroup v1 (and hybrid hosts) one per controller hierarchy, possibly
//! co-mounted (`cpu,cpuacct`). Removal tries every hierarchy mounted under
//! `/sys/fs/cgroup`, so a directory runsc made in any of them goes.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use warren_core::SandboxId;

use crate::{RuntimeError, Stats};

pub(super) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The cgroups path put into the OCI spec.
pub(super) fn cgroups_path(id: &SandboxId) -> String {
    format!("/{}", leaf(id))
}

pub(super) fn leaf(id: &SandboxId) -> String {
    format!("warren-{id}")
}

fn is_v2() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// Reads CPU time, memory and task count; `Ok(None)` when the sandbox has
/// no cgroup (it does not run).
pub(super) fn stats(id: &SandboxId) -> Result<Option<Stats>, RuntimeError> {
    let leaf = leaf(id);
    let root = Path::new(CGROUP_ROOT);
    if is_v2() {
        let dir = root.join(&leaf);
        if !dir.exists() {
            return Ok(None);
        }
        let cpu_usec = read_keyed(&dir.join("cpu.stat"), "usage_usec")?;
        return Ok(Some(Stats {
            cpu_usage_ns: cpu_usec.saturating_mul(1000),
            memory_bytes: read_u64(&dir.join("memory.current"))?,
            pids: read_u64(&dir.join("pids.current"))?,
            disk_bytes: 0,
        }));
    }
    let Some(memory) = v1_dir(&["memory"], &leaf) else {
        return Ok(None);
    };
    let cpu = v1_dir(&["cpuacct", "cpu,cpuacct", "cpuacct,cpu"], &leaf);
    let pids = v1_dir(&["pids"], &leaf);
    Ok(Some(Stats {
        cpu_usage_ns: match cpu {
            Some(d) => read_u64(&d.join("cpuacct.usage"))?,
            None => 0,
        },
        memory_bytes: read_u64(&memory.join("memory.usage_in_bytes"))?,
        pids: match pids {
            Some(d) => read_u64(&d.join("pids.current"))?,
            None => 0,
        },
        disk_bytes: 0,
    }))
}

/// Whether any process is left in the sandbox's cgroup: `false` once the
/// sandbox's kernel and everything it ran have exited (also when the
/// cgroup is gone). Frozen processes count: they are still there.
pub(super) fn has_processes(id: &SandboxId) -> bool {
    existing_dirs(id).iter().any(|dir| {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .is_ok_and(|procs| procs.lines().any(|l| !l.trim().is_empty()))
    })
}

fn v1_dir(hierarchies: &[&str], leaf: &str) -> Option<PathBuf> {
    hierarchies
        .iter()
        .map(|h| Path::new(CGROUP_ROOT).join(h).join(leaf))
        .find(|d| d.exists())
}

/// Every existing directory of the sandbox's cgroup, in any hierarchy.
pub(super) fn existing_dirs(id: &SandboxId) -> Vec<PathBuf> {
    let leaf = leaf(id);
    let root = Path::new(CGROUP_ROOT);
    let mut dirs = vec![root.join(&leaf)];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(entries.flatten().map(|e| e.path().join(&leaf)));
    }
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Removes the sandbox's cgroup directories. Tasks may take a moment to
/// leave after a kill, so a busy directory is retried for about a second.
pub(super) async fn remove(id: &SandboxId) -> Result<(), RuntimeError> {
    let mut last_err = None;
    for _ in 0..20 {
        last_err = None;
        for dir in existing_dirs(id) {
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => last_err = Some((dir, e)),
            }
        }
        if last_err.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match last_err {
        Some((dir, source)) => Err(RuntimeError::Io {
            op: format!(
                "removing cgroup {} (processes may still be in it)",
                dir.display()
            ),
            source,
        }),
        None => Ok(()),
    }
}

fn read_u64(path: &Path) -> Result<u64, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::Io {
        op: format!("reading {}", path.display()),
        source: e,
    })?;
    parse_u64(path, text.trim())
}

fn read_keyed(path: &Path, key: &str) -> Result<u64, RuntimeError> {
    let text = std::fs::read_to_string(path).map_err(|e| RuntimeError::Io {
        op: format!("reading {}", path.display()),
        source: e,
    })?;
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or("0");
    parse_u64(path, value.trim())
}

fn parse_u64(path: &Path, s: &str) -> Result<u64, RuntimeError> {
    // "max" appears in limit files; usage files are plain numbers.
    if s == "max" {
        return Ok(u64::MAX);
    }
    s.parse().map_err(|_| RuntimeError::Command {
        op: format!("reading {}", path.display()),
        detail: format!(
            "unexpected content '{}'",
            s.chars().take(40).collect::<String>()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("cpu.stat");
        std::fs::write(&f, "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n").unwrap();
        assert_eq!(read_keyed(&f, "usage_usec").unwrap(), 1234);
        assert_eq!(read_keyed(&f, "user_usec").unwrap(), 1000);
        std::fs::write(&f, "garbage\n").unwrap();
        assert_eq!(read_keyed(&f, "usage_usec").unwrap(), 0);
        std::fs::write(&f, "usage_usec lots\n").unwrap();
        assert!(read_keyed(&f, "usage_usec").is_err());
    }
}
