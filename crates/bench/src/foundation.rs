//! Foundation figures: create-to-exec-ready, exec round trip, idle memory.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use warren_api_types::Sandbox;
use warren_e2e::{Daemon, decode_exec};

use crate::raw::RawRunsc;
use crate::stats::{Row, ms, percentile};

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

async fn exec_true(d: &Daemon, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let body = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["/bin/true"]}))
        .send()
        .await?
        .text()
        .await?;
    let elapsed = t.elapsed();
    let out = decode_exec(&body)?;
    if out.exit_code != Some(0) {
        bail!("exec true failed: {body}");
    }
    Ok(elapsed)
}

async fn kill(d: &Daemon, id: &str) -> anyhow::Result<()> {
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    Ok(())
}

pub async fn run(
    template: &str,
    creates: usize,
    execs: usize,
    idle: usize,
) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start().await?;
    d.ensure_template(template).await?;
    let rootfs = Daemon::template_rootfs(template)?;
    let raw = RawRunsc::new(&rootfs)?;
    let mut rows = Vec::new();

    // Create: Warren's create (agent answering) and its first exec, against
    // bare `runsc run --detach`, interleaved so both see the same machine.
    let (mut w_create, mut w_ready, mut r_run) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..creates {
        let t = Instant::now();
        let id = create(&d, template).await?;
        w_create.push(t.elapsed());
        exec_true(&d, &id).await?;
        w_ready.push(t.elapsed());
        kill(&d, &id).await?;

        let raw_id = format!("rawbench{i:012}");
        r_run.push(raw.start(&raw_id)?);
        raw.remove(&raw_id);
        eprintln!("create {}/{creates}", i + 1);
    }
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        let raw_p = ms(percentile(&mut r_run, p));
        rows.push(Row::new(
            format!("create (agent ready) {name}"),
            "ms",
            ms(percentile(&mut w_create, p)),
            Some(raw_p),
        ));
        rows.push(Row::new(
            format!("create → first exec done {name}"),
            "ms",
            ms(percentile(&mut w_ready, p)),
            Some(raw_p),
        ));
    }

    // Exec round trip of `true`.
    let id = create(&d, template).await?;
    let raw_id = "rawbenchexec0000000";
    raw.start(raw_id)?;
    // Each side in its own block: a `runsc exec` leaves host processes
    // exiting on the two cores, which would slow the next Warren exec.
    let mut w_exec = Vec::new();
    for _ in 0..execs {
        w_exec.push(exec_true(&d, &id).await?);
    }
    let mut r_exec = Vec::new();
    for _ in 0..execs {
        r_exec.push(raw.exec_true(raw_id)?);
    }
    raw.remove(raw_id);
    kill(&d, &id).await?;
    for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
        rows.push(Row::new(
            format!("exec `true` round trip {name}"),
            "ms",
            ms(percentile(&mut w_exec, p)),
            Some(ms(percentile(&mut r_exec, p))),
        ));
    }

    // Idle memory with `idle` sandboxes running.
    let mut ids = HashSet::new();
    for i in 0..idle {
        ids.insert(
            create(&d, template)
                .await
                .with_context(|| format!("idle sandbox {i}"))?,
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let per_sandbox = crate::host::pss_kb(&ids)? as f64 / 1024.0 / idle.max(1) as f64;
    rows.push(Row::new(
        format!("memory per idle sandbox ({idle} running, PSS)"),
        "MiB",
        per_sandbox,
        None,
    ));
    for id in &ids {
        kill(&d, id).await?;
    }
    Ok(rows)
}
