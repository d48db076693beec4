//! What the load and soak suites read off the host: memory, the kernel's
//! OOM kills, processes, and a daemon's sandboxes still running in runsc.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use warren_e2e::Daemon;

/// A `/proc/meminfo` field, in bytes.
pub fn meminfo(field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo")?;
    let kb = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .with_context(|| format!("no {field} in /proc/meminfo"))?;
    Ok(kb * 1024)
}

/// Processes the kernel's OOM killer has killed since boot.
pub fn oom_kills() -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/vmstat")?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Processes whose command line names `dir` (a daemon's data directory:
/// its runsc processes carry `--root <dir>/runtime/runsc`).
pub fn processes_naming(dir: &Path) -> usize {
    let needle = dir.as_os_str().as_encoded_bytes();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .count()
}

/// Waits until runsc runs none of `d`'s sandboxes (teardown runs in the
/// background), at most `limit`.
pub async fn wait_for_teardown(d: &Daemon, limit: Duration) -> anyhow::Result<()> {
    let root = d.data_dir().join("runtime/runsc");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let out = tokio::process::Command::new("runsc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-quiet"])
            .output()
            .await?;
        if !out.status.success() || out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    anyhow::bail!("runsc still runs sandboxes after {limit:?}")
}

/// The `/proc` directories of every process whose cgroup names one of
/// `ids` (a sandbox's processes).
fn processes_of(ids: &HashSet<String>) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let Ok(cgroup) = std::fs::read_to_string(path.join("cgroup")) else {
            continue;
        };
        if ids.iter().any(|id| cgroup.contains(id.as_str())) {
            found.push(path);
        }
    }
    Ok(found)
}

/// Proportional set size (kB) of the sandboxes `ids`' processes.
pub fn pss_kb(ids: &HashSet<String>) -> anyhow::Result<u64> {
    let mut total = 0;
    for path in processes_of(ids)? {
        let Ok(rollup) = std::fs::read_to_string(path.join("smaps_rollup")) else {
            continue;
        };
        total += rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

/// CPU time (user and system) used so far by the sandboxes `ids`'
/// processes.
pub fn cpu_of(ids: &HashSet<String>) -> anyhow::Result<Duration> {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(100)
        .max(1);
    let mut ticks = 0u64;
    for path in processes_of(ids)? {
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // utime and stime: the 12th and 13th fields after the command.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        for f in fields.iter().skip(11).take(2) {
            ticks += f.parse::<u64>().unwrap_or(0);
        }
    }
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}
