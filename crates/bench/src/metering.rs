//! What metering costs: two daemons in the same run, one metering every
//! second (15 times as often as by default), one with `--metering false`.
//!
//! - Create → first exec done, and the exec round trip, alternating call
//!   by call between the two daemons.
//! - The meter's own CPU: both daemons hold `idle` idle sandboxes and
//!   sample every second for `window` seconds; the difference of the two
//!   daemon processes' CPU time, per sample, is what one sample of that
//!   many sandboxes costs, also shown as a share of one core at the
//!   default 15 s interval.
//! - `GET /metrics` with `idle` sandboxes, p50 of 20 scrapes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use warren_e2e::{Daemon, decode_exec};

use crate::stats::{Row, ms, percentile};

async fn create(d: &Daemon) -> anyhow::Result<String> {
    let resp = d
        .post("/v1/sandboxes")
        .json(&json!({"template": "base", "memory_mb": 256}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("create failed: {}", resp.text().await?);
    }
    let body: serde_json::Value = resp.json().await?;
    Ok(body["id"].as_str().context("no id")?.to_owned())
}

async fn exec_true(d: &Daemon, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let body = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["/bin/true"]}))
        .send()
        .await?
        .text()
        .await?;
    let took = t.elapsed();
    if decode_exec(&body)?.exit_code != Some(0) {
        bail!("exec failed: {body}");
    }
    Ok(took)
}

async fn kill(d: &Daemon, id: &str) -> anyhow::Result<()> {
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(())
}

/// CPU time (user + system) the process and its waited-for children (the
/// `nft` it runs) have used.
fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command's closing parenthesis; utime, stime, cutime
    // and cstime are the 14th to 17th fields of the line.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut ticks = 0u64;
    for field in &fields[11..15] {
        ticks += field.parse::<u64>()?;
    }
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(100);
    Ok(Duration::from_micros(ticks * 1_000_000 / hz.max(1)))
}

pub async fn run(
    creates: usize,
    execs: usize,
    idle: usize,
    window: u64,
) -> anyhow::Result<Vec<Row>> {
    let on = Daemon::start_with(&["--meter-interval", "1s"]).await?;
    let off = Daemon::start_with(&["--metering", "false"]).await?;
    on.ensure_template("base").await?;
    let mut rows = Vec::new();

    let (mut c_on, mut c_off) = (Vec::new(), Vec::new());
    for i in 0..creates {
        for (d, out) in [(&on, &mut c_on), (&off, &mut c_off)] {
            let t = Instant::now();
            let id = create(d).await?;
            exec_true(d, &id).await?;
            out.push(t.elapsed());
            kill(d, &id).await?;
        }
        eprintln!("create {}/{creates}", i + 1);
    }
    let (a, b) = (create(&on).await?, create(&off).await?);
    let (mut e_on, mut e_off) = (Vec::new(), Vec::new());
    for _ in 0..execs {
        e_on.push(exec_true(&on, &a).await?);
        e_off.push(exec_true(&off, &b).await?);
    }
    kill(&on, &a).await?;
    kill(&off, &b).await?;
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        rows.push(Row::new(
            format!("create → first exec done {name}, metering on / off"),
            "ms",
            ms(percentile(&mut c_on, p)),
            Some(ms(percentile(&mut c_off, p))),
        ));
        rows.push(Row::new(
            format!("exec `true` round trip {name}, metering on / off"),
            "ms",
            ms(percentile(&mut e_on, p)),
            Some(ms(percentile(&mut e_off, p))),
        ));
    }

    // The default quota holds 32 vCPUs: room for the idle sandboxes.
    for d in [&on, &off] {
        let resp = d
            .put("/v1/teams/default/quota")
            .json(&json!({"max_sandboxes": idle + 10, "max_vcpus": idle + 10, "max_memory_mb": (idle + 10) * 512}))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("raising the quota failed: {}", resp.text().await?);
        }
    }
    for i in 0..idle {
        create(&on).await?;
        create(&off).await?;
        if (i + 1) % 10 == 0 {
            eprintln!("idle sandboxes {}/{idle} on each daemon", i + 1);
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p_on, p_off) = (
        on.pid().context("daemon pid")?,
        off.pid().context("daemon pid")?,
    );
    let (t_on, t_off) = (cpu_time(p_on)?, cpu_time(p_off)?);
    tokio::time::sleep(Duration::from_secs(window)).await;
    let used_on = cpu_time(p_on)? - t_on;
    let used_off = cpu_time(p_off)? - t_off;
    let per_sample = used_on.saturating_sub(used_off).as_secs_f64() / window as f64;
    rows.push(Row::new(
        format!("daemon CPU per second, {idle} idle sandboxes, meter every 1 s / off"),
        "ms",
        used_on.as_secs_f64() * 1000.0 / window as f64,
        Some(used_off.as_secs_f64() * 1000.0 / window as f64),
    ));
    rows.push(Row::new(
        format!("one meter sample of {idle} idle sandboxes (CPU)"),
        "ms",
        per_sample * 1000.0,
        None,
    ));
    rows.push(Row::new(
        format!("meter's share of one core at the default 15 s, {idle} idle sandboxes"),
        "%",
        per_sample / 15.0 * 100.0,
        None,
    ));

    let mut scrapes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let resp = on.get("/metrics").send().await?;
        resp.bytes().await?;
        scrapes.push(t.elapsed());
    }
    rows.push(Row::new(
        format!("GET /metrics p50, {idle} sandboxes"),
        "ms",
        ms(percentile(&mut scrapes, 50.0)),
        None,
    ));
    Ok(rows)
}
