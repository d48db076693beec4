//! Filesystem-only pauses against full ones, per size of touched memory:
//! the pause (`POST /pause {"mode": "filesystem"}`: every process ended,
//! then the checkpoint), the resume to the first exec (no start command in
//! `base`: the boot is the restore) and the image's size, as the pause's
//! audit entry records it. The process holding the memory is gone after
//! such a pause, so each cycle starts a fresh sandbox.

use std::time::{Duration, Instant};

use serde_json::json;
use warren_e2e::Daemon;

use crate::snapshots::{SETTLE, exec_true, post, sandbox_holding};
use crate::stats::{Row, ms, percentile};

/// One filesystem-only pause and resume of a fresh sandbox holding `mib`
/// MiB: the pause's time, the resume-to-exec time and the image's size.
async fn cycle(d: &Daemon, mib: u64) -> anyhow::Result<(Duration, Duration, u64)> {
    let id = sandbox_holding(d, mib).await?;
    tokio::time::sleep(SETTLE).await;
    let t = Instant::now();
    let body = json!({"mode": "filesystem"});
    post(d, &format!("/v1/sandboxes/{id}/pause"), body).await?;
    let pause = t.elapsed();
    let size = image_size(d, &id).await?;
    tokio::time::sleep(SETTLE).await;
    let t = Instant::now();
    post(d, &format!("/v1/sandboxes/{id}/resume"), json!({})).await?;
    exec_true(d, &id).await?;
    let resume = t.elapsed();
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    Ok((pause, resume, size))
}

/// The size of the image of `id`'s latest pause.
async fn image_size(d: &Daemon, id: &str) -> anyhow::Result<u64> {
    let path = format!("/v1/audit/entries?sandbox={id}&action=sandbox.pause");
    let list: warren_api_types::AuditEntryList = d.get_json(&path).await;
    list.entries
        .iter()
        .filter_map(|e| e.entry.details.get("size_bytes")?.as_u64())
        .max()
        .ok_or_else(|| anyhow::anyhow!("no pause of {id} in the audit log"))
}

/// Rows of filesystem-only pauses of `mib` MiB against the full pauses'
/// figures measured on the same daemon (`full_pause`, `full_resume`,
/// `full_size`).
pub async fn rows(
    d: &Daemon,
    mib: u64,
    cycles: usize,
    full_pause: &mut [Duration],
    full_resume: &mut [Duration],
    full_size: u64,
) -> anyhow::Result<Vec<Row>> {
    let (mut pause, mut resume, mut size) = (Vec::new(), Vec::new(), 0);
    for _ in 0..cycles {
        let (p, r, s) = cycle(d, mib).await?;
        pause.push(p);
        resume.push(r);
        size = s;
    }
    let p50 = |v: &mut [Duration]| ms(percentile(v, 50.0));
    Ok(vec![
        Row::new(
            format!("filesystem-only pause, {mib} MiB touched, p50, vs full pause"),
            "ms",
            p50(&mut pause),
            Some(p50(full_pause)),
        ),
        Row::new(
            format!(
                "resume of a filesystem-only pause → first exec, {mib} MiB touched, p50, vs full"
            ),
            "ms",
            p50(&mut resume),
            Some(p50(full_resume)),
        ),
        Row::new(
            format!("filesystem-only pause image, {mib} MiB touched, vs full"),
            "MiB",
            size as f64 / 1048576.0,
            Some(full_size as f64 / 1048576.0),
        ),
    ])
}
