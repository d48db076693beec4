//! Load and admission against a real daemon with its default admission
//! settings:
//!
//! - A burst of `creates` concurrent creates (`base`, 256 MiB), each
//!   followed by `true` in its sandbox, with `/v1/health` polled all the
//!   while (`warren_e2e::load`). Callers refused with a retry hint then
//!   try again as told until they have their sandbox. The published burst
//!   medians of hosted sandboxes (ComputeSDK's benchmark, 100 concurrent:
//!   Daytona 367 ms, E2B 822 ms) stand in the baseline column.
//! - The capacity probe: idle sandboxes (`base`, 256 MiB) are created,
//!   four at a time, until the memory reserve refuses one. The reserve is
//!   set `probe_gib` below the host's available memory at the start, so
//!   the probe takes that much memory and no more from a shared host.
//!   Then the edge: further creates (refused with a hint?), `true` in
//!   every sandbox, sandboxes failed, the kernel's OOM kills.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use warren_e2e::Daemon;
use warren_e2e::load::{self, Outcome};

use crate::host::{self, meminfo, oom_kills};
use crate::stats::{Row, ms, percentile};

/// Published medians of 100 concurrent creates (ComputeSDK's benchmark).
const DAYTONA_BURST_MEDIAN_MS: f64 = 367.0;
const E2B_BURST_MEDIAN_MS: f64 = 822.0;
/// Idle sandboxes created at once by the capacity probe.
const PROBE_CONCURRENCY: usize = 4;
const MIB: u64 = 1024 * 1024;
/// How long the idle sandboxes' CPU is measured.
const CPU_WINDOW: Duration = Duration::from_secs(20);

fn sandbox() -> Value {
    json!({"template": "base", "memory_mb": 256, "disk_mb": 256, "timeout_s": 3600})
}

pub async fn run(creates: usize, probe_gib: u64, probe_max: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = burst(creates).await?;
    if probe_gib > 0 {
        rows.extend(capacity(probe_gib, probe_max).await?);
    }
    Ok(rows)
}

async fn burst(creates: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start().await?;
    d.ensure_template("base").await?;
    load::raise_quota(&d, creates + 10).await?;
    let started = Instant::now();
    let b = load::burst(&d, creates, &sandbox()).await;
    eprintln!(
        "burst: {} created, {} refused, {} failed in {:?}",
        b.created().len(),
        b.refused().len(),
        b.failed().len(),
        b.elapsed
    );
    for f in b.failed() {
        eprintln!("  failed: {f:?}");
    }
    let created = b.created();
    let mut took: Vec<Duration> = created.iter().map(|(_, t, _)| *t).collect();
    let mut ready: Vec<Duration> = created
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().ok().copied())
        .collect();
    let not_ready = created.len() - ready.len();
    let mut refusals: Vec<Duration> = b.refused().iter().map(|o| o.took()).collect();
    let mut health = b.health.clone();
    let slowest = b
        .outcomes
        .iter()
        .map(Outcome::took)
        .max()
        .unwrap_or_default();
    let n = creates as f64;
    let mut rows = vec![
        Row::new(
            format!("burst of {creates}: created at once"),
            "calls",
            created.len() as f64,
            Some(n),
        ),
        Row::new(
            format!("burst of {creates}: refused with a retry hint (503)"),
            "calls",
            b.refused().len() as f64,
            Some(n),
        ),
        Row::new(
            format!("burst of {creates}: failed, hung, or first exec failed"),
            "calls",
            (b.failed().len() + not_ready) as f64,
            Some(n),
        ),
        Row::new(
            format!("burst of {creates}: create p50, vs Daytona's published median"),
            "ms",
            ms(percentile(&mut took, 50.0)),
            Some(DAYTONA_BURST_MEDIAN_MS),
        ),
        Row::new(
            format!("burst of {creates}: create → first exec p50, vs Daytona's"),
            "ms",
            ms(percentile(&mut ready, 50.0)),
            Some(DAYTONA_BURST_MEDIAN_MS),
        ),
        Row::new(
            format!("burst of {creates}: create → first exec p50, vs E2B's published median"),
            "ms",
            ms(percentile(&mut ready, 50.0)),
            Some(E2B_BURST_MEDIAN_MS),
        ),
        Row::new(
            format!("burst of {creates}: create p99"),
            "ms",
            ms(percentile(&mut took, 99.0)),
            None,
        ),
        Row::new(
            format!("burst of {creates}: refusal p50 / max"),
            "ms",
            ms(percentile(&mut refusals, 50.0)),
            Some(ms(percentile(&mut refusals, 100.0))),
        ),
        Row::new(
            format!("burst of {creates}: slowest call"),
            "ms",
            ms(slowest),
            None,
        ),
        Row::new(
            format!(
                "/v1/health during the burst p50 / p99 ({} calls, {} failed)",
                health.len(),
                b.health_failures.len()
            ),
            "ms",
            ms(percentile(&mut health, 50.0)),
            Some(ms(percentile(&mut health, 99.0))),
        ),
        Row::new(
            "/v1/health during the burst, slowest",
            "ms",
            ms(percentile(&mut health, 100.0)),
            None,
        ),
    ];
    // Printed now: what follows takes minutes.
    for r in &rows {
        println!("{}", r.markdown());
    }
    let printed = rows.len();
    // The refused try again as told until they have their sandbox.
    let retries = Arc::new(Mutex::new(Vec::new()));
    let retried: Vec<_> = b
        .refused()
        .into_iter()
        .map(|o| {
            let Outcome::Refused { retry_after_s, .. } = o else {
                unreachable!()
            };
            let (d_url, key, retries) = (d.url.clone(), d.key.clone(), retries.clone());
            let first = *retry_after_s;
            tokio::spawn(async move { retry_as_told(&d_url, &key, first, &retries).await })
        })
        .collect();
    let (mut late, mut gave_up) = (Vec::new(), Vec::new());
    for r in retried {
        match r.await? {
            Ok(id) => late.push(id),
            Err(e) => gave_up.push(format!("{e:#}")),
        }
    }
    let all_created = started.elapsed();
    for e in &gave_up {
        eprintln!("  a retrying caller gave up: {e}");
    }

    let retries = retries.lock().await.clone();
    if !late.is_empty() || !gave_up.is_empty() {
        rows.push(Row::new(
            format!(
                "the refused retrying as told: created later ({} retries in all; {} answered otherwise)",
                retries.len(),
                gave_up.len()
            ),
            "calls",
            late.len() as f64,
            Some(b.refused().len() as f64),
        ));
        rows.push(Row::new(
            format!("burst of {creates}: until the last retry ended"),
            "s",
            all_created.as_secs_f64(),
            None,
        ));
    }
    for r in rows.iter().skip(printed) {
        println!("{}", r.markdown());
    }
    kill_all(&d, created.iter().map(|(id, _, _)| id.clone()).chain(late)).await?;
    Ok(rows)
}

/// Waits `first` seconds, then creates until it is not refused, waiting
/// each hint; each retry's hint is pushed to `retries`.
async fn retry_as_told(
    url: &str,
    key: &str,
    first: u32,
    retries: &Mutex<Vec<u32>>,
) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut wait = first;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(u64::from(wait))).await;
        retries.lock().await.push(wait);
        let resp = http
            .post(format!("{url}/v1/sandboxes"))
            .bearer_auth(key)
            .json(&sandbox())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match (status, body["retry_after_s"].as_u64()) {
            (201, _) => return Ok(body["id"].as_str().context("no id")?.to_owned()),
            (503, Some(s)) => wait = u32::try_from(s)?,
            _ => bail!("a retry answered {status}: {body}"),
        }
    }
    bail!("still refused after 20 retries")
}

/// Kills `ids`, eight at a time, and waits until runsc runs none of them.
async fn kill_all(d: &Daemon, ids: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let ids: Vec<String> = ids.collect();
    for chunk in ids.chunks(8) {
        let kills = chunk
            .iter()
            .map(|id| d.delete(&format!("/v1/sandboxes/{id}")).send());
        futures::future::join_all(kills).await;
    }
    host::wait_for_teardown(d, Duration::from_secs(600)).await
}

async fn capacity(probe_gib: u64, probe_max: usize) -> anyhow::Result<Vec<Row>> {
    let total = meminfo("MemTotal")?;
    let start = meminfo("MemAvailable")?;
    let probe = probe_gib * 1024 * MIB;
    if start < probe + 2 * 1024 * MIB {
        bail!(
            "{} MiB available: too little for a {probe_gib} GiB probe",
            start / MIB
        );
    }
    let reserve_mb = (start - probe) / MIB;
    let d = Daemon::start_with(&["--memory-reserve-mb", &reserve_mb.to_string()]).await?;
    d.ensure_template("base").await?;
    load::raise_quota(&d, probe_max + 20).await?;
    let ooms = oom_kills()?;
    let begun = Instant::now();

    // Four creators until the first refusal (or `probe_max`).
    let ids = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(Mutex::new(None::<String>));
    let workers: Vec<_> = (0..PROBE_CONCURRENCY)
        .map(|_| {
            let (http, url, key) = (d.http.clone(), d.url.clone(), d.key.clone());
            let (ids, stop) = (ids.clone(), stop.clone());
            tokio::spawn(async move {
                while stop.lock().await.is_none() && ids.lock().await.len() < probe_max {
                    let resp = http
                        .post(format!("{url}/v1/sandboxes"))
                        .bearer_auth(&key)
                        .json(&sandbox())
                        .send()
                        .await;
                    let (status, body) = match resp {
                        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                        Err(e) => (0, e.to_string()),
                    };
                    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    match json["id"].as_str() {
                        Some(id) if status == 201 => {
                            let mut ids = ids.lock().await;
                            ids.push(id.to_owned());
                            if ids.len() % 25 == 0 {
                                eprintln!("capacity: {} idle sandboxes", ids.len());
                            }
                        }
                        _ => {
                            stop.lock().await.get_or_insert(format!("{status}: {body}"));
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await?;
    }
    let filled = begun.elapsed();
    let ids = ids.lock().await.clone();
    let why = stop
        .lock()
        .await
        .clone()
        .unwrap_or_else(|| "the probe's cap".into());
    eprintln!("capacity: stopped at {} sandboxes: {why}", ids.len());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let edge = meminfo("MemAvailable")?;
    let count = ids.len().max(1) as f64;
    let per_sandbox = start.saturating_sub(edge) as f64 / count / MIB as f64;
    let set: HashSet<String> = ids.iter().cloned().collect();
    let pss = host::pss_kb(&set)? as f64 / 1024.0 / count;
    let cpu_before = host::cpu_of(&set)?;
    tokio::time::sleep(CPU_WINDOW).await;
    let cpu_share =
        (host::cpu_of(&set)? - cpu_before).as_secs_f64() / CPU_WINDOW.as_secs_f64() / count * 100.0;

    // The edge: more creates, and every sandbox still working.
    let mut refused = 0;
    let mut hinted = 0;
    let mut refusal_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let resp = d.post("/v1/sandboxes").json(&sandbox()).send().await?;
        refusal_ms.push(t.elapsed());
        let status = resp.status().as_u16();
        let header = resp.headers().contains_key(reqwest::header::RETRY_AFTER);
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == 201 {
            eprintln!("capacity: a create at the edge succeeded");
            if let Some(id) = body["id"].as_str() {
                d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
            }
        } else {
            refused += 1;
            if header && body["retry_after_s"].is_u64() {
                hinted += 1;
            }
        }
    }
    let mut working = 0usize;
    for chunk in ids.chunks(8) {
        let execs = chunk.iter().map(|id| answers_true(&d, id));
        working += futures::future::join_all(execs)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
    }
    let list: warren_api_types::SandboxList = d
        .get("/v1/sandboxes?state=failed")
        .send()
        .await?
        .json()
        .await?;
    let oom_during = oom_kills()? - ooms;
    let reserve_default = warren_server::service::memory::DEFAULT_RESERVE_MB * MIB;
    let per_24 = (24 * 1024 * MIB - reserve_default) as f64 / MIB as f64 / per_sandbox;
    let rows = vec![
        Row::new(
            format!(
                "idle sandboxes admitted in {probe_gib} GiB (until refused: {})",
                why.chars().take(60).collect::<String>()
            ),
            "sandboxes",
            ids.len() as f64,
            None,
        ),
        Row::new(
            "time to fill, four creates at a time",
            "s",
            filled.as_secs_f64(),
            None,
        ),
        Row::new(
            "host memory per idle sandbox (MemAvailable drop / sandboxes)",
            "MiB",
            per_sandbox,
            None,
        ),
        Row::new(
            "memory per idle sandbox (PSS of its processes)",
            "MiB",
            pss,
            None,
        ),
        Row::new(
            "host CPU per idle sandbox (its processes, over 20 s)",
            "% of a core",
            cpu_share,
            None,
        ),
        Row::new(
            format!(
                "idle sandboxes per 24 GiB host less the default {} MiB reserve (estimate)",
                reserve_default / MIB
            ),
            "sandboxes",
            per_24,
            None,
        ),
        Row::new(
            "creates at the edge refused with a retry hint (of 5)",
            "calls",
            f64::from(hinted),
            Some(f64::from(refused)),
        ),
        Row::new(
            "refusal at the edge p50",
            "ms",
            ms(percentile(&mut refusal_ms, 50.0)),
            None,
        ),
        Row::new(
            "sandboxes answering `true` at the edge",
            "sandboxes",
            working as f64,
            Some(ids.len() as f64),
        ),
        Row::new(
            "sandboxes failed at the edge",
            "sandboxes",
            list.sandboxes.len() as f64,
            None,
        ),
        Row::new(
            "kernel OOM kills during the probe",
            "processes",
            oom_during as f64,
            None,
        ),
        Row::new(
            format!(
                "host memory: total / available at the start ({} MiB reserve)",
                reserve_mb
            ),
            "MiB",
            (total / MIB) as f64,
            Some((start / MIB) as f64),
        ),
    ];
    kill_all(&d, ids.into_iter()).await?;
    Ok(rows)
}

/// Whether `true` exits 0 in sandbox `id`.
async fn answers_true(d: &Daemon, id: &str) -> bool {
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["true"]}))
        .send()
        .await;
    let Ok(resp) = resp else { return false };
    let ok = resp.status().is_success();
    let body = resp.text().await.unwrap_or_default();
    ok && warren_e2e::decode_exec(&body).is_ok_and(|o| o.exit_code == Some(0))
}
