//! Warm pools: create (API call → exec-ready) served from a pool against
//! a cold create and bare `runsc run` in the same run; create → first
//! command done; concurrent creates from a pool; the hit rate of a pool
//! that follows demand on a bursty synthetic trace.
//!
//! The trace (deterministic): six rounds, each a burst of `BURSTS[r]`
//! creates sent at once, then four seconds of one create a second; every
//! sandbox is killed right after its create answers. The pool starts at
//! `--min 1 --max 16` and its target follows the forecast
//! (`docs/pools.md`).

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::json;
use warren_api_types::{Pool, PoolList, Sandbox};
use warren_e2e::{Daemon, decode_exec};

use crate::raw::RawRunsc;
use crate::stats::{Row, ms, percentile};

/// Burst sizes of the trace's rounds.
const BURSTS: [usize; 6] = [4, 8, 2, 12, 6, 10];

async fn create(d: &Daemon, template: &str) -> anyhow::Result<String> {
    let resp = d
        .post("/v1/sandboxes")
        .json(&json!({"template": template, "timeout_s": 3600}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("create failed: {}", resp.text().await?);
    }
    Ok(resp.json::<Sandbox>().await?.id)
}

async fn exec_true(d: &Daemon, id: &str) -> anyhow::Result<()> {
    let body = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["/bin/true"]}))
        .send()
        .await?
        .text()
        .await?;
    if decode_exec(&body)?.exit_code != Some(0) {
        bail!("exec true failed: {body}");
    }
    Ok(())
}

async fn kill(d: &Daemon, id: &str) {
    let _ = d.delete(&format!("/v1/sandboxes/{id}")).send().await;
}

async fn pool(d: &Daemon, template: &str) -> anyhow::Result<Option<Pool>> {
    let list: PoolList = d.get("/v1/pools").send().await?.json().await?;
    Ok(list.pools.into_iter().find(|p| p.template == template))
}

pub(crate) async fn set_pool(
    d: &Daemon,
    template: &str,
    min: u32,
    max: u32,
    frozen: bool,
) -> anyhow::Result<()> {
    let resp = d
        .put(&format!("/v1/pools/{template}"))
        .json(&json!({"min": min, "max": max, "frozen": frozen}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("setting the pool failed: {}", resp.text().await?);
    }
    Ok(())
}

/// Waits until the pool has at least `n` ready.
pub(crate) async fn wait_ready(d: &Daemon, template: &str, n: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        if pool(d, template).await?.is_some_and(|p| p.ready >= n) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the pool of {template} never had {n} ready")
}

fn percentiles(
    rows: &mut Vec<Row>,
    figure: &str,
    samples: &mut [Duration],
    raw: Option<&mut [Duration]>,
) {
    let mut raw = raw;
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        let base = raw.as_deref_mut().map(|r| ms(percentile(r, p)));
        rows.push(Row::new(
            format!("{figure} {name}"),
            "ms",
            ms(percentile(samples, p)),
            base,
        ));
    }
}

pub async fn run(template: &str, creates: usize, concurrent: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start().await?;
    d.ensure_template(template).await?;
    let rootfs = Daemon::template_rootfs(template)?;
    let raw = RawRunsc::new(&rootfs)?;
    let mut rows = Vec::new();

    // Cold creates and bare `runsc run`, interleaved.
    let (mut cold, mut cold_done, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..creates {
        let t = Instant::now();
        let id = create(&d, template).await?;
        cold.push(t.elapsed());
        exec_true(&d, &id).await?;
        cold_done.push(t.elapsed());
        kill(&d, &id).await;
        let raw_id = format!("rawpool{i:012}");
        bare.push(raw.start(&raw_id)?);
        raw.remove(&raw_id);
        eprintln!("cold {}/{creates}", i + 1);
    }

    // Pooled creates, one at a time, each with a sandbox ready; then the
    // same from a frozen pool.
    let (mut pooled, mut pooled_done) = (Vec::new(), Vec::new());
    let (mut frozen, mut frozen_done) = (Vec::new(), Vec::new());
    for (freeze, samples, done) in [
        (false, &mut pooled, &mut pooled_done),
        (true, &mut frozen, &mut frozen_done),
    ] {
        set_pool(&d, template, 2, 2, freeze).await?;
        // The worker replaces ready sandboxes of the other kind first.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        for i in 0..creates {
            wait_ready(&d, template, 1).await?;
            let t = Instant::now();
            let id = create(&d, template).await?;
            samples.push(t.elapsed());
            exec_true(&d, &id).await?;
            done.push(t.elapsed());
            kill(&d, &id).await;
            eprintln!("pooled (frozen: {freeze}) {}/{creates}", i + 1);
        }
    }
    // Where the pooled creates' time went, as the daemon's laps say.
    for line in d
        .log()
        .lines()
        .filter(|l| l.contains("sandbox running (pooled)"))
    {
        eprintln!("{}", line.rsplit("laps=").next().unwrap_or(line));
    }
    let hits = pool(&d, template).await?.map(|p| p.hits).unwrap_or(0);
    if hits != 2 * creates as u64 {
        bail!("only {hits} of {} creates came from the pool", 2 * creates);
    }
    percentiles(
        &mut rows,
        "pooled create (exec-ready)",
        &mut pooled,
        Some(&mut bare),
    );
    percentiles(
        &mut rows,
        "frozen-pool create (thaw, exec-ready)",
        &mut frozen,
        Some(&mut bare),
    );
    percentiles(
        &mut rows,
        "frozen-pool create → first command done",
        &mut frozen_done,
        None,
    );
    percentiles(
        &mut rows,
        "cold create (exec-ready)",
        &mut cold,
        Some(&mut bare),
    );
    percentiles(
        &mut rows,
        "pooled create → first command done",
        &mut pooled_done,
        None,
    );
    percentiles(
        &mut rows,
        "cold create → first command done",
        &mut cold_done,
        None,
    );

    // Concurrent creates with the pool full, in a quota that holds them.
    let n = u32::try_from(concurrent)?;
    let room = 2 * u64::from(n) + 8;
    let resp = d
        .put("/v1/teams/default/quota")
        .json(&json!({"max_sandboxes": room, "max_vcpus": room,
            "max_memory_mb": room * 4096, "max_disk_mb": room * 65536}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("raising the quota failed: {}", resp.text().await?);
    }
    set_pool(&d, template, n, n, false).await?;
    wait_ready(&d, template, n).await?;
    let before = pool(&d, template).await?.map(|p| p.hits).unwrap_or(0);
    let tasks = (0..concurrent).map(|_| {
        let d = &d;
        async move {
            let t = Instant::now();
            let id = create(d, template).await?;
            Ok::<_, anyhow::Error>((t.elapsed(), id))
        }
    });
    let results = futures::future::join_all(tasks).await;
    let mut together = Vec::new();
    for r in results {
        let (took, id) = r?;
        together.push(took);
        kill(&d, &id).await;
    }
    let served = pool(&d, template).await?.map(|p| p.hits).unwrap_or(0) - before;
    percentiles(
        &mut rows,
        &format!("{concurrent} concurrent creates, pool of {concurrent} ({served} pooled)"),
        &mut together,
        None,
    );

    // The bursty trace, on a fresh pool that follows demand.
    let del = d.delete(&format!("/v1/pools/{template}")).send().await?;
    if !del.status().is_success() {
        bail!("deleting the pool failed");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    set_pool(&d, template, 1, 16, false).await?;
    wait_ready(&d, template, 1).await?;
    for (round, burst) in BURSTS.iter().enumerate() {
        let ids = futures::future::join_all((0..*burst).map(|_| create(&d, template))).await;
        for id in ids {
            kill(&d, &id?).await;
        }
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let id = create(&d, template).await?;
            kill(&d, &id).await;
        }
        eprintln!("trace round {}/{}", round + 1, BURSTS.len());
    }
    let p = pool(&d, template).await?.expect("the pool is set");
    let total = p.hits + p.misses;
    rows.push(Row::new(
        format!("bursty trace: pooled share of {total} creates (bursts {BURSTS:?}, 1/s between)"),
        "%",
        100.0 * p.hits as f64 / total.max(1) as f64,
        None,
    ));
    let _ = d.delete(&format!("/v1/pools/{template}")).send().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(rows)
}
