//! Template snapshots: creating a sandbox of a template with a start
//! command (`code-interpreter`) from its template snapshot, against
//! the engine restoring that same image and against a cold create.
//!
//! One daemon makes the template's image at start and restores it for
//! every create; each create is timed from the request to its 201 and to
//! the answer of a first `exec true`. The engine's figure is the `runsc
//! restore --detach` of that very image into that sandbox's bundle, the
//! runsc process alone, as the daemon's runtime timed it during the same
//! create (the `runsc` lap of its `launched` log line). A second daemon,
//! with template snapshots off, creates the template cold (boot, agent,
//! start command until its port answers) for the third figure. Each
//! sandbox is killed before the next create.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use warren_api_types::Sandbox;
use warren_e2e::{Daemon, decode_exec};

use crate::stats::{Row, ms, percentile};

const TEMPLATE: &str = "code-interpreter";

/// What one create took.
struct Create {
    id: String,
    to_created: Duration,
    to_exec: Duration,
}

async fn create(d: &Daemon) -> anyhow::Result<Create> {
    let t = Instant::now();
    let resp = d
        .post("/v1/sandboxes")
        .json(&json!({"template": TEMPLATE, "timeout_s": 600}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("create failed: {}", resp.text().await?);
    }
    let to_created = t.elapsed();
    let id = resp.json::<Sandbox>().await?.id;
    let body = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["/bin/true"]}))
        .send()
        .await?
        .text()
        .await?;
    let to_exec = t.elapsed();
    if decode_exec(&body)?.exit_code != Some(0) {
        bail!("exec true in {id} failed: {body}");
    }
    Ok(Create {
        id,
        to_created,
        to_exec,
    })
}

async fn kill(d: &Daemon, id: &str) -> anyhow::Result<()> {
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    // Let the teardown finish before the next create.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

/// The `runsc` lap of the runtime's last `launched` line for `id`.
fn runsc_lap(log: &str, id: &str) -> Option<Duration> {
    let line = log
        .lines()
        .rfind(|l| l.contains("launched") && l.contains(id))?;
    let rest = &line[line.find(" runsc=")? + " runsc=".len()..];
    let ms: f64 = rest[..rest.find("ms")?].parse().ok()?;
    Some(Duration::from_secs_f64(ms / 1000.0))
}

/// Whether the audit says `id` was restored from its template's snapshot.
async fn from_snapshot(d: &Daemon, id: &str) -> anyhow::Result<bool> {
    let list: warren_api_types::AuditEntryList = d
        .get_json(&format!(
            "/v1/audit/entries?sandbox={id}&action=sandbox.create"
        ))
        .await;
    Ok(list
        .entries
        .first()
        .is_some_and(|l| l.entry.details.get("from_template_snapshot") == Some(&json!(true))))
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

pub async fn run(creates: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start_with(&["--template-snapshots", "true"]).await?;
    d.ensure_template(TEMPLATE).await?;
    let made = Instant::now();
    while !d.log().contains("template snapshot made") {
        if made.elapsed() > Duration::from_secs(300) {
            bail!("the template snapshot was not made:\n{}", d.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let image_bytes = dir_size(&d.data_dir().join("snapshots/images"));

    let (mut created, mut exec, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..creates {
        let c = create(&d).await?;
        if !from_snapshot(&d, &c.id).await? {
            bail!("{} was not created from the template snapshot", c.id);
        }
        engine.push(
            runsc_lap(&d.log(), &c.id)
                .with_context(|| format!("no runsc lap for {} in the log", c.id))?,
        );
        created.push(c.to_created);
        exec.push(c.to_exec);
        kill(&d, &c.id).await?;
    }
    drop(d);

    let cold_daemon = Daemon::start_with(&[]).await?;
    let (mut cold_created, mut cold_exec) = (Vec::new(), Vec::new());
    for _ in 0..creates {
        let c = create(&cold_daemon).await?;
        cold_created.push(c.to_created);
        cold_exec.push(c.to_exec);
        kill(&cold_daemon, &c.id).await?;
    }

    let p50 = |v: &mut Vec<Duration>| ms(percentile(v, 50.0));
    let p90 = |v: &mut Vec<Duration>| ms(percentile(v, 90.0));
    Ok(vec![
        Row::new(
            format!("{TEMPLATE}: create (201), p50, vs runsc restore of the same image"),
            "ms",
            p50(&mut created),
            Some(p50(&mut engine)),
        ),
        Row::new(
            format!("{TEMPLATE}: create → first exec, p50, vs runsc restore of the same image"),
            "ms",
            p50(&mut exec),
            Some(p50(&mut engine)),
        ),
        Row::new(
            format!("{TEMPLATE}: create → first exec, p90, vs runsc restore of the same image"),
            "ms",
            p90(&mut exec),
            Some(p90(&mut engine)),
        ),
        Row::new(
            format!("{TEMPLATE}: create (201), p50, vs cold create"),
            "ms",
            p50(&mut created),
            Some(p50(&mut cold_created)),
        ),
        Row::new(
            format!("{TEMPLATE}: create → first exec, p50, vs cold create"),
            "ms",
            p50(&mut exec),
            Some(p50(&mut cold_exec)),
        ),
        Row::new(
            format!("{TEMPLATE}: template snapshot image size"),
            "MiB",
            image_bytes as f64 / 1048576.0,
            None,
        ),
    ])
}
