//! Pause/resume and fork figures against bare `runsc checkpoint`/`restore`.
//!
//! Each sandbox holds `N` MiB of touched memory (a Python process holding a
//! filled buffer). Warren's pause is `POST /pause` (checkpoint with the
//! sandbox left running, pages written with `O_DIRECT`, image flushed and
//! renamed into place, row committed; the instance is released after the
//! answer); its resume-to-exec is `POST /resume` plus the first `exec
//! true`. The raw engine: `runsc checkpoint --direct` (no leave-running)
//! and `runsc restore --direct --detach` plus `runsc exec true`, on the
//! same rootfs, without network or agent; a second pause row compares with
//! runsc's default, the pages through the page cache, which is what
//! Warren used before. Both sides keep the same rhythm: each pause
//! and each resume starts [`SETTLE`] after the previous step (for Warren,
//! once the background `runsc delete` is over: it is the resume of a
//! sandbox that has been paused a while; that daemon runs with
//! `--standby 0`), and an image is deleted once the sandbox resumed from
//! it, as Warren's garbage collection does within half a second. How fast
//! a checkpoint through the page cache copies memory on this machine
//! depends on whether it writes into memory freed a moment ago (see
//! docs/benchmarks.md): back to back, without the gaps, the raw side would
//! always reuse the pages it had just freed.
//!
//! A third pause row is the engine alone on Warren's own sandbox: `runsc
//! checkpoint --leave-running --direct` of the very container, under the
//! daemon's runsc root, a settle before each of Warren's pauses; the
//! sandbox runs on, the image is deleted, and an `exec true` opens the
//! daemon's connection to the agent again, as a pause usually finds it.
//!
//! Filesystem-only pauses are set against the full ones (`fs_pause`).
//!
//! Standby: a second daemon keeps paused instances frozen; its
//! resume-to-exec (thaw, agent init, first exec) is measured against
//! `runsc resume` plus `runsc exec true` of a paused raw container.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::join_all;
use serde_json::json;
use warren_api_types::{ForkResponse, Sandbox};
use warren_e2e::{Daemon, decode_exec};

use crate::raw::{self, RawRunsc};
use crate::stats::{Row, ms, percentile};

/// The gap before each pause and each resume, on both sides: it lets
/// Warren's background `runsc delete` (~1.7 s) finish before a resume.
pub(crate) const SETTLE: Duration = Duration::from_secs(3);

fn hold_memory(mib: u64) -> String {
    format!("import time; b = b'x' * ({mib} << 20); time.sleep(10**7)")
}

pub(crate) async fn post(
    d: &Daemon,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<String> {
    let resp = d.post(path).json(&body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("POST {path}: {status} {text}");
    }
    Ok(text)
}

pub(crate) async fn exec_true(d: &Daemon, id: &str) -> anyhow::Result<()> {
    let body = post(
        d,
        &format!("/v1/sandboxes/{id}/exec"),
        json!({"cmd": ["/bin/true"]}),
    )
    .await?;
    if decode_exec(&body)?.exit_code != Some(0) {
        bail!("exec true in {id} failed: {body}");
    }
    Ok(())
}

pub(crate) async fn sandbox_holding(d: &Daemon, mib: u64) -> anyhow::Result<String> {
    let memory_mb = 512 + mib;
    let body = post(
        d,
        "/v1/sandboxes",
        json!({"memory_mb": memory_mb, "timeout_s": 3600}),
    )
    .await?;
    let id = serde_json::from_str::<Sandbox>(&body)?.id;
    let script = format!(
        "(python3 -c \"{}\" >/dev/null 2>&1 &); sleep {}",
        hold_memory(mib),
        1 + mib / 200
    );
    post(
        d,
        &format!("/v1/sandboxes/{id}/exec"),
        json!({"cmd": ["bash", "-c", script]}),
    )
    .await?;
    Ok(id)
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Resume-to-exec from standby, of a sandbox holding `mib` MiB.
async fn standby(rootfs: &std::path::Path, mib: u64, cycles: usize) -> anyhow::Result<Row> {
    let d = Daemon::start_with(&["--standby", "10m"]).await?;
    d.ensure_template("base").await?;
    let id = sandbox_holding(&d, mib).await?;
    let mut warren = Vec::new();
    for _ in 0..cycles {
        post(&d, &format!("/v1/sandboxes/{id}/pause"), json!({})).await?;
        let t = Instant::now();
        post(&d, &format!("/v1/sandboxes/{id}/resume"), json!({})).await?;
        exec_true(&d, &id).await?;
        warren.push(t.elapsed());
    }
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;

    let hold = hold_memory(mib);
    let raw = RawRunsc::with_command(rootfs, &["/usr/bin/python3", "-c", &hold])?;
    let raw_id = format!("rawstandby{mib:010}");
    raw.start(&raw_id)?;
    std::thread::sleep(Duration::from_secs(1 + mib / 200));
    let mut engine = Vec::new();
    for _ in 0..cycles {
        raw.pause(&raw_id)?;
        let t = Instant::now();
        raw.resume(&raw_id)?;
        raw.exec_true(&raw_id)?;
        engine.push(t.elapsed());
    }
    raw.remove(&raw_id);
    Ok(Row::new(
        format!("resume from standby → first exec, {mib} MiB touched, p50"),
        "ms",
        ms(percentile(&mut warren, 50.0)),
        Some(ms(percentile(&mut engine, 50.0))),
    ))
}

pub async fn run(sizes: &[u64], cycles: usize, forks: &[usize]) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start_with(&["--standby", "0"]).await?;
    d.ensure_template("base").await?;
    let rootfs = Daemon::template_rootfs("base")?;
    let images = d.data_dir().join("snapshots/images");
    let runsc_root = d.data_dir().join("runtime/runsc");
    let mut rows = Vec::new();

    for &mib in sizes {
        let id = sandbox_holding(&d, mib).await?;
        let (mut w_pause, mut w_resume, mut w_size) = (Vec::new(), Vec::new(), 0);
        let mut same_sandbox = Vec::new();
        for _ in 0..cycles {
            tokio::time::sleep(SETTLE).await;
            let image = tempfile::tempdir_in(d.data_dir())?;
            same_sandbox.push(raw::checkpoint_foreign(&runsc_root, &id, image.path())?);
            drop(image);
            // That checkpoint reset the daemon's connection to the agent; a
            // pause usually finds one open.
            exec_true(&d, &id).await?;
            tokio::time::sleep(SETTLE).await;
            let t = Instant::now();
            post(&d, &format!("/v1/sandboxes/{id}/pause"), json!({})).await?;
            w_pause.push(t.elapsed());
            w_size = dir_size(&images);
            tokio::time::sleep(SETTLE).await;
            let t = Instant::now();
            post(&d, &format!("/v1/sandboxes/{id}/resume"), json!({})).await?;
            exec_true(&d, &id).await?;
            w_resume.push(t.elapsed());
        }
        d.delete(&format!("/v1/sandboxes/{id}")).send().await?;

        let hold = hold_memory(mib);
        let raw = RawRunsc::with_command(&rootfs, &["/usr/bin/python3", "-c", &hold])?;
        let raw_id = format!("rawsnap{mib:013}");
        raw.start(&raw_id)?;
        std::thread::sleep(Duration::from_secs(1 + mib / 200));
        let (mut r_pause, mut r_resume, mut r_size) = (Vec::new(), Vec::new(), 0);
        for i in 0..cycles {
            std::thread::sleep(SETTLE);
            let image = tempfile::tempdir()?;
            r_pause.push(raw.checkpoint(&raw_id, image.path(), false, true)?);
            r_size = dir_size(image.path());
            raw.delete(&raw_id);
            std::thread::sleep(SETTLE);
            let t = Instant::now();
            raw.restore(&raw_id, image.path())
                .with_context(|| format!("raw restore {i}"))?;
            raw.exec_true(&raw_id)?;
            r_resume.push(t.elapsed());
        }
        // runsc's default: the pages go through the page cache (with
        // --leave-running, which costs runsc nothing, so no restore is
        // needed in between).
        let mut r_pause_cached = Vec::new();
        for _ in 0..cycles {
            std::thread::sleep(SETTLE);
            let image = tempfile::tempdir()?;
            r_pause_cached.push(raw.checkpoint(&raw_id, image.path(), true, false)?);
        }
        raw.remove(&raw_id);

        let p50 = |v: &mut Vec<Duration>| ms(percentile(v, 50.0));
        rows.push(Row::new(
            format!("pause, {mib} MiB touched, p50"),
            "ms",
            p50(&mut w_pause),
            Some(p50(&mut r_pause)),
        ));
        rows.push(Row::new(
            format!("pause, {mib} MiB touched, p50, vs raw checkpoint of the same sandbox"),
            "ms",
            p50(&mut w_pause),
            Some(p50(&mut same_sandbox)),
        ));
        rows.push(Row::new(
            format!("pause, {mib} MiB touched, p50, vs raw checkpoint through the page cache"),
            "ms",
            p50(&mut w_pause),
            Some(p50(&mut r_pause_cached)),
        ));
        rows.push(Row::new(
            format!("resume → first exec, {mib} MiB touched, p50"),
            "ms",
            p50(&mut w_resume),
            Some(p50(&mut r_resume)),
        ));
        rows.push(Row::new(
            format!("snapshot size, {mib} MiB touched"),
            "MiB",
            w_size as f64 / 1048576.0,
            Some(r_size as f64 / 1048576.0),
        ));
        rows.push(standby(&rootfs, mib, cycles).await?);
        let fs_only =
            crate::fs_pause::rows(&d, mib, cycles, &mut w_pause, &mut w_resume, w_size).await?;
        rows.extend(fs_only);
        eprintln!("snapshots: {mib} MiB done");
    }

    for &n in forks {
        let id = sandbox_holding(&d, 50).await?;
        tokio::time::sleep(SETTLE).await;
        let t = Instant::now();
        let body = post(&d, &format!("/v1/sandboxes/{id}/fork"), json!({"count": n})).await?;
        let fork: ForkResponse = serde_json::from_str(&body)?;
        let execs = join_all(fork.sandboxes.iter().map(|b| exec_true(&d, &b.id))).await;
        let w = t.elapsed();
        for e in execs {
            e?;
        }
        for b in fork
            .sandboxes
            .iter()
            .map(|b| b.id.as_str())
            .chain([id.as_str()])
        {
            d.delete(&format!("/v1/sandboxes/{b}")).send().await?;
        }

        let hold = hold_memory(50);
        let raw = RawRunsc::with_command(&rootfs, &["/usr/bin/python3", "-c", &hold])?;
        let parent = format!("rawfork{n:013}");
        raw.start(&parent)?;
        std::thread::sleep(Duration::from_secs(1));
        let image = tempfile::tempdir()?;
        let t = Instant::now();
        raw.checkpoint(&parent, image.path(), true, true)?;
        let branches: Vec<String> = (0..n).map(|i| format!("rawbranch{n:03}{i:08}")).collect();
        let restored: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = branches
                .iter()
                .map(|b| {
                    let (raw, image) = (&raw, image.path());
                    s.spawn(move || {
                        raw.restore(b, image)?;
                        raw.exec_true(b).map(drop)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| bail!("branch thread panicked")))
                .collect()
        });
        let r = t.elapsed();
        for b in branches.iter().chain([&parent]) {
            raw.remove(b);
        }
        for res in restored {
            res?;
        }
        rows.push(Row::new(
            format!("fork of a 50 MiB sandbox into {n}, all answering exec"),
            "ms",
            ms(w),
            Some(ms(r)),
        ));
        eprintln!("snapshots: fork {n} done");
    }
    Ok(rows)
}
