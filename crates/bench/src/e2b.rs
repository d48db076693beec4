//! E2B figures: the same flows through the official E2B Python SDK and
//! through Warren's native API, timed by one Python process
//! (`py/e2b_flow.py`) against one daemon, so the ratio is what the E2B
//! surface (control plane and envd proxy) costs over the native path.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use warren_e2e::{Daemon, workspace_target};

use crate::stats::{Row, ms, percentile};

#[derive(Deserialize)]
struct Samples {
    sdk_round: Vec<f64>,
    native_round: Vec<f64>,
    sdk_run: Vec<f64>,
    native_run: Vec<f64>,
}

fn durations(ms: &[f64]) -> Vec<Duration> {
    ms.iter()
        .map(|m| Duration::from_secs_f64(m / 1000.0))
        .collect()
}

pub async fn run(template: &str, creates: usize, runs: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start().await?;
    d.ensure_template(template).await?;
    let python = workspace_target().join("e2b-venv/bin/python");
    if !python.exists() {
        bail!("{} is missing: run scripts/deps.sh", python.display());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/e2b_flow.py");
    let out = tokio::task::spawn_blocking({
        let (url, key, template) = (d.url.clone(), d.key.clone(), template.to_owned());
        move || {
            Command::new(python)
                .arg(script)
                .args([
                    "--creates",
                    &creates.to_string(),
                    "--runs",
                    &runs.to_string(),
                ])
                .args(["--template", &template])
                .env("E2B_API_URL", &url)
                .env("E2B_SANDBOX_URL", &url)
                .env("E2B_API_KEY", &key)
                .env("WARREN_URL", &url)
                .env("WARREN_KEY", &key)
                .env_remove("E2B_DEBUG")
                .output()
        }
    })
    .await?
    .context("running py/e2b_flow.py")?;
    if !out.status.success() {
        bail!(
            "py/e2b_flow.py failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
    }
    let s: Samples = serde_json::from_slice(&out.stdout).context("reading the samples")?;
    let (mut sdk_round, mut native_round) = (durations(&s.sdk_round), durations(&s.native_round));
    let (mut sdk_run, mut native_run) = (durations(&s.sdk_run), durations(&s.native_run));
    let mut rows = Vec::new();
    let mut figures = [
        (
            "create → run `echo hi` → kill",
            &mut sdk_round,
            &mut native_round,
        ),
        ("`commands.run(\"echo hi\")`", &mut sdk_run, &mut native_run),
    ];
    for (figure, sdk, native) in &mut figures {
        for (name, p) in [("p50", 50.0), ("p99", 99.0)] {
            let native_ms = ms(percentile(native, p));
            rows.push(Row::new(
                format!("{figure} {name}"),
                "ms",
                ms(percentile(sdk, p)),
                Some(native_ms),
            ));
        }
    }
    Ok(rows)
}
