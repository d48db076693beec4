//! The code interpreter as the `e2b-code-interpreter` SDKs use it: HTTP to
//! the server on port 49999 through the daemon's E2B proxy, the requests
//! the SDKs send.
//!
//! - Create → first `run_code` result: an E2B create of `code-interpreter`
//!   (from its template snapshot, then from a warm pool of it) and
//!   `run_code("1+1")` until its result, against a plain create of `base`
//!   and a first `exec true`, alternating in the same run.
//! - `run_code("1+1")` round trip on one sandbox, p50 and p99.
//! - `df.describe()` of a 1,000 × 1,000 DataFrame through `run_code`
//!   (round trip), against the same call timed inside a plain `python3`
//!   process in the same sandbox (the computation alone).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use warren_e2e::{Daemon, decode_exec};

use crate::stats::{Row, ms, percentile};

const TEMPLATE: &str = "code-interpreter";
const FRAME: &str = "import numpy as np, pandas as pd\n\
                     df = pd.DataFrame(np.random.default_rng(0).random((1000, 1000)))";

/// A sandbox created through E2B's API: its id and envd token.
struct E2bSandbox {
    id: String,
    token: String,
}

async fn e2b_create(d: &Daemon, template: &str) -> anyhow::Result<E2bSandbox> {
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .json(&json!({"templateID": template, "timeout": 600}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("create of {template} failed: {}", resp.text().await?);
    }
    let body: Value = resp.json().await?;
    Ok(E2bSandbox {
        id: body["sandboxID"]
            .as_str()
            .context("no sandboxID")?
            .to_owned(),
        token: body["envdAccessToken"]
            .as_str()
            .context("no envdAccessToken")?
            .to_owned(),
    })
}

/// `run_code(code)` as the SDKs send it; the lines of the answer.
async fn run_code(d: &Daemon, s: &E2bSandbox, code: &str) -> anyhow::Result<Vec<Value>> {
    let resp = d
        .http
        .post(format!("{}/execute", d.url))
        .header("E2b-Sandbox-Id", &s.id)
        .header("E2b-Sandbox-Port", "49999")
        .header("X-Access-Token", &s.token)
        .json(&json!({"code": code}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("run_code failed: {}", resp.text().await?);
    }
    let lines: Vec<Value> = resp
        .text()
        .await?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    if let Some(error) = lines.iter().find(|l| l["type"] == "error") {
        bail!("{code:?} failed in the kernel: {error}");
    }
    Ok(lines)
}

/// The `text` of the main result.
fn main_text(lines: &[Value]) -> Option<&str> {
    lines
        .iter()
        .find(|l| l["type"] == "result" && l["is_main_result"] == true)
        .and_then(|l| l["text"].as_str())
}

async fn exec(d: &Daemon, id: &str, cmd: &[&str]) -> anyhow::Result<String> {
    let body = d
        .post(&format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({ "cmd": cmd }))
        .send()
        .await?
        .text()
        .await?;
    let out = decode_exec(&body)?;
    if out.exit_code != Some(0) {
        bail!("{cmd:?} in {id} failed: {body}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn kill(d: &Daemon, id: &str) -> anyhow::Result<()> {
    d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    // Let the teardown finish before the next create.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

pub async fn run(creates: usize, calls: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start_with(&["--template-snapshots", "true"]).await?;
    d.ensure_template(TEMPLATE).await?;
    let made = Instant::now();
    while !d.log().contains("template snapshot made") {
        if made.elapsed() > Duration::from_secs(300) {
            bail!("the template snapshot was not made:\n{}", d.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (mut first_result, mut first_exec) = (Vec::new(), Vec::new());
    for _ in 0..creates {
        let t = Instant::now();
        let s = e2b_create(&d, TEMPLATE).await?;
        let lines = run_code(&d, &s, "1+1").await?;
        first_result.push(t.elapsed());
        if main_text(&lines) != Some("2") {
            bail!("run_code(\"1+1\") answered {lines:?}");
        }
        kill(&d, &s.id).await?;

        let t = Instant::now();
        let s = e2b_create(&d, "base").await?;
        exec(&d, &s.id, &["/bin/true"]).await?;
        first_exec.push(t.elapsed());
        kill(&d, &s.id).await?;
    }

    crate::pool::set_pool(&d, TEMPLATE, 2, 2, false).await?;
    let mut pooled = Vec::new();
    for _ in 0..creates {
        crate::pool::wait_ready(&d, TEMPLATE, 2).await?;
        let t = Instant::now();
        let s = e2b_create(&d, TEMPLATE).await?;
        let lines = run_code(&d, &s, "1+1").await?;
        pooled.push(t.elapsed());
        if main_text(&lines) != Some("2") {
            bail!("run_code(\"1+1\") answered {lines:?}");
        }
        kill(&d, &s.id).await?;
    }
    d.delete(&format!("/v1/pools/{TEMPLATE}")).send().await?;

    let s = e2b_create(&d, TEMPLATE).await?;
    run_code(&d, &s, "1+1").await?;
    let mut round_trips = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        run_code(&d, &s, "1+1").await?;
        round_trips.push(t.elapsed());
    }

    run_code(&d, &s, FRAME).await?;
    let (mut describe, mut plain) = (Vec::new(), Vec::new());
    let script = format!(
        "{FRAME}\nimport time\nt = time.perf_counter()\ndf.describe()\nprint(time.perf_counter() - t)"
    );
    for _ in 0..5 {
        let t = Instant::now();
        run_code(&d, &s, "df.describe()").await?;
        describe.push(t.elapsed());
        let printed = exec(&d, &s.id, &["python3", "-c", &script]).await?;
        let seconds: f64 = printed
            .trim()
            .parse()
            .with_context(|| format!("python printed {printed:?}"))?;
        plain.push(Duration::from_secs_f64(seconds));
    }
    kill(&d, &s.id).await?;

    let p = |v: &mut Vec<Duration>, q: f64| ms(percentile(v, q));
    Ok(vec![
        Row::new(
            "create → first run_code result (code-interpreter), p50, vs create → first exec (base)",
            "ms",
            p(&mut first_result, 50.0),
            Some(p(&mut first_exec, 50.0)),
        ),
        Row::new(
            "create → first run_code result (code-interpreter), p90, vs create → first exec (base)",
            "ms",
            p(&mut first_result, 90.0),
            Some(p(&mut first_exec, 90.0)),
        ),
        Row::new(
            "create → first run_code result (code-interpreter, warm pool), p50, vs create → first exec (base)",
            "ms",
            p(&mut pooled, 50.0),
            Some(p(&mut first_exec, 50.0)),
        ),
        Row::new(
            "run_code(\"1+1\") round trip, p50",
            "ms",
            p(&mut round_trips, 50.0),
            None,
        ),
        Row::new(
            "run_code(\"1+1\") round trip, p99",
            "ms",
            p(&mut round_trips, 99.0),
            None,
        ),
        Row::new(
            "1,000×1,000 DataFrame describe(): run_code round trip p50, vs the call in plain python3",
            "ms",
            p(&mut describe, 50.0),
            Some(p(&mut plain, 50.0)),
        ),
    ])
}
