//! Event figures (`docs/events.md`), each against its baseline in the
//! same run:
//!
//! - **Event → handled**: a sandbox created with `on_event: /bin/true`;
//!   the time from sending an event until the handler has run and the
//!   event reads `acknowledged` (polled every [`POLL`]), for a running
//!   sandbox, one paused in standby and one paused to an image. Baseline:
//!   the same work without the inbox — an `exec /bin/true` on the running
//!   sandbox, `resume` plus `exec /bin/true` on the paused ones.
//! - **Inbox throughput**: events accepted durably per second through the
//!   API by [`SENDERS`] concurrent senders, against the store alone
//!   (`append_event` on the daemon's own database file, same senders).
//! - **HTTP to a paused port**: a GET through the port proxy to a paused
//!   sandbox's server, to its first byte, against `resume` plus `exec
//!   /bin/true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::join_all;
use serde_json::{Value, json};
use time::OffsetDateTime;
use warren_api_types::Sandbox;
use warren_core::SandboxId;
use warren_e2e::{Daemon, decode_exec};
use warren_store::{NewEvent, SqliteStore, Store};

use crate::stats::{Row, ms, percentile};

/// How often the acknowledgement is looked for.
const POLL: Duration = Duration::from_millis(2);
/// Concurrent senders of the throughput figure.
const SENDERS: usize = 16;

async fn post(d: &Daemon, path: &str, body: Value) -> anyhow::Result<String> {
    let resp = d.post(path).json(&body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("POST {path}: {status} {text}");
    }
    Ok(text)
}

async fn create(d: &Daemon, body: Value) -> anyhow::Result<Sandbox> {
    Ok(serde_json::from_str(
        &post(d, "/v1/sandboxes", body).await?,
    )?)
}

async fn exec_true(d: &Daemon, id: &str) -> anyhow::Result<()> {
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

async fn pause(d: &Daemon, id: &str) -> anyhow::Result<()> {
    post(d, &format!("/v1/sandboxes/{id}/pause"), json!({})).await?;
    // Let the background release (standby freeze or runsc delete) end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// Sends one event and waits until the handler has acknowledged it.
async fn event_to_handled(d: &Daemon, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let sent: Value = serde_json::from_str(
        &post(
            d,
            &format!("/v1/sandboxes/{id}/events"),
            json!({"type": "bench", "source": "bench"}),
        )
        .await?,
    )?;
    let seq = sent["seq"].as_u64().context("no seq")?;
    let path = format!("/v1/sandboxes/{id}/events?after={}&limit=1", seq - 1);
    let deadline = t + Duration::from_secs(60);
    loop {
        let listed: Value = d.get(&path).send().await?.json().await?;
        if listed["events"][0]["delivery"] == "acknowledged" {
            return Ok(t.elapsed());
        }
        if Instant::now() > deadline {
            bail!("event {seq} of {id} was never handled: {listed}");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn resume_to_exec(d: &Daemon, id: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    post(d, &format!("/v1/sandboxes/{id}/resume"), json!({})).await?;
    exec_true(d, id).await?;
    Ok(t.elapsed())
}

/// Event → handled against the baseline, `runs` times each, on `d`:
/// `paused` pauses before every sample.
async fn handled_rows(
    d: &Daemon,
    label: &str,
    paused: bool,
    runs: usize,
) -> anyhow::Result<Vec<Row>> {
    let handler = json!({"cmd": ["/bin/true"]});
    let sb = create(
        d,
        json!({"timeout_s": 3600, "persistent": true, "on_event": handler}),
    )
    .await?;
    let plain = create(d, json!({"timeout_s": 3600, "persistent": true})).await?;
    exec_true(d, &plain.id).await?;
    event_to_handled(d, &sb.id).await?;
    let (mut event, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        if paused {
            pause(d, &sb.id).await?;
            event.push(event_to_handled(d, &sb.id).await?);
            pause(d, &plain.id).await?;
            baseline.push(resume_to_exec(d, &plain.id).await?);
        } else {
            event.push(event_to_handled(d, &sb.id).await?);
            let t = Instant::now();
            exec_true(d, &plain.id).await?;
            baseline.push(t.elapsed());
        }
    }
    for id in [&sb.id, &plain.id] {
        d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    }
    let base = if paused { "resume + exec" } else { "exec" };
    Ok(vec![Row::new(
        format!("event → handled, {label}, p50 (vs {base})"),
        "ms",
        ms(percentile(&mut event, 50.0)),
        Some(ms(percentile(&mut baseline, 50.0))),
    )])
}

/// Events per second through the API, then straight into the store.
async fn throughput(d: &Daemon, events: usize) -> anyhow::Result<Row> {
    let sb = create(d, json!({"timeout_s": 3600})).await?;
    let path = Arc::new(format!("/v1/sandboxes/{}/events", sb.id));
    let per_sender = events / SENDERS;
    let t = Instant::now();
    let sends = (0..SENDERS).map(|s| {
        let path = path.clone();
        async move {
            for i in 0..per_sender {
                let body = json!({"type": "load", "source": "bench", "data": {"s": s, "i": i}});
                let resp = d.post(&path).json(&body).send().await?;
                if resp.status() != 202 {
                    bail!("send: {}", resp.status());
                }
            }
            anyhow::Ok(())
        }
    });
    for r in join_all(sends).await {
        r?;
    }
    let api_rate = (per_sender * SENDERS) as f64 / t.elapsed().as_secs_f64();

    let store = Arc::new(SqliteStore::open(d.data_dir().join("warren.db")).await?);
    let id: SandboxId = sb.id.parse()?;
    let t = Instant::now();
    let appends = (0..SENDERS).map(|s| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            for i in 0..per_sender {
                let data = json!({"s": s, "i": i}).to_string();
                let event = NewEvent {
                    sandbox: id.clone(),
                    kind: "load".into(),
                    source: "bench".into(),
                    sha256: "0".repeat(64),
                    data,
                    dedupe_key: None,
                    received_at: OffsetDateTime::now_utc(),
                };
                store.append_event(event, 1_000_000).await?;
            }
            anyhow::Ok(())
        }
    });
    for r in join_all(appends).await {
        r?;
    }
    let store_rate = (per_sender * SENDERS) as f64 / t.elapsed().as_secs_f64();
    d.delete(&format!("/v1/sandboxes/{}", sb.id)).send().await?;
    Ok(Row::new(
        format!("inbox throughput, {SENDERS} senders (vs the store alone)"),
        "events/s",
        api_rate,
        Some(store_rate),
    ))
}

/// A server answering `ok` on port 8000; the sandbox's traffic token.
const SERVER: &str = r#"cat > /tmp/ok.py <<'EOF'
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
http.server.HTTPServer(("0.0.0.0", 8000), H).serve_forever()
EOF
(python3 /tmp/ok.py >/dev/null 2>&1 &)
for i in $(seq 100); do curl -sf localhost:8000/ >/dev/null && exit 0; sleep 0.1; done; exit 1"#;

/// GET to a paused sandbox's port → first byte, against resume + exec.
async fn paused_port_rows(d: &Daemon, label: &str, runs: usize) -> anyhow::Result<Vec<Row>> {
    let sb = create(d, json!({"timeout_s": 3600, "persistent": true})).await?;
    let plain = create(d, json!({"timeout_s": 3600, "persistent": true})).await?;
    let body = post(
        d,
        &format!("/v1/sandboxes/{}/exec", sb.id),
        json!({"cmd": ["bash", "-c", SERVER]}),
    )
    .await?;
    if decode_exec(&body)?.exit_code != Some(0) {
        bail!("the port's server did not start: {body}");
    }
    let detail: Sandbox = d.get_json(&format!("/v1/sandboxes/{}", sb.id)).await;
    let token = detail.traffic_token.context("no traffic token")?;
    let url = format!("{}/v1/sandboxes/{}/ports/8000/", d.url, sb.id);
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let (mut first_byte, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        pause(d, &sb.id).await?;
        let t = Instant::now();
        let resp = client
            .get(&url)
            .header("x-warren-traffic-token", &token)
            .send()
            .await?;
        if resp.status() != 200 {
            bail!("GET to the paused port: {}", resp.status());
        }
        first_byte.push(t.elapsed());
        resp.bytes().await?;
        pause(d, &plain.id).await?;
        baseline.push(resume_to_exec(d, &plain.id).await?);
    }
    for id in [&sb.id, &plain.id] {
        d.delete(&format!("/v1/sandboxes/{id}")).send().await?;
    }
    Ok(vec![Row::new(
        format!("HTTP to a paused port → first byte, {label}, p50 (vs resume + exec)"),
        "ms",
        ms(percentile(&mut first_byte, 50.0)),
        Some(ms(percentile(&mut baseline, 50.0))),
    )])
}

pub async fn run(runs: usize, events: usize) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let standby = Daemon::start_with(&["--standby", "10m"]).await?;
    standby.ensure_template("base").await?;
    rows.extend(handled_rows(&standby, "running", false, runs).await?);
    rows.extend(handled_rows(&standby, "from standby", true, runs).await?);
    rows.extend(paused_port_rows(&standby, "from standby", runs).await?);
    rows.push(throughput(&standby, events).await?);
    drop(standby);
    let image = Daemon::start_with(&["--standby", "0"]).await?;
    image.ensure_template("base").await?;
    rows.extend(handled_rows(&image, "from an image", true, runs).await?);
    rows.extend(paused_port_rows(&image, "from an image", runs).await?);
    Ok(rows)
}
