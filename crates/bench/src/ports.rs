//! Exposed-port figures: one small GET through the daemon's port proxy
//! (`/v1/sandboxes/{id}/ports/{port}/`, traffic token) against the same GET
//! straight to the sandbox's address on its link, each on a kept-alive
//! connection with TCP_NODELAY, from one client in one run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;
use warren_api_types::Sandbox;
use warren_e2e::Daemon;

use crate::stats::{Row, ms, percentile};

const PORT: u16 = 8000;

/// A keep-alive HTTP/1.1 server answering `ok` (with TCP_NODELAY: it
/// writes headers and body apart, and Nagle's algorithm would hold the body
/// for the client's delayed ACK, ~40 ms), and the sandbox's address.
const SETUP: &str = r#"cat > /tmp/ok.py <<'EOF'
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("0.0.0.0", 8000), H).serve_forever()
EOF
(python3 /tmp/ok.py >/dev/null 2>&1 &)
for i in $(seq 100); do curl -sf localhost:8000/ >/dev/null && break; sleep 0.1; done
python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("192.0.2.1", 9)); print(s.getsockname()[0])'"#;

async fn timed_gets(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    // The first request opens the connections; it is not counted.
    for i in 0..=n {
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.header("x-warren-traffic-token", t);
        }
        let t = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        let elapsed = t.elapsed();
        if status != 200 || &body[..] != b"ok" {
            bail!("GET {url}: {status}");
        }
        if i > 0 {
            samples.push(elapsed);
        }
    }
    Ok(samples)
}

pub async fn run(template: &str, requests: usize) -> anyhow::Result<Vec<Row>> {
    let d = Daemon::start().await?;
    d.ensure_template(template).await?;
    let sb: Sandbox = d
        .post("/v1/sandboxes")
        .json(&json!({"template": template, "timeout_s": 3600}))
        .send()
        .await?
        .json()
        .await?;
    let setup = d
        .post(&format!("/v1/sandboxes/{}/exec", sb.id))
        .json(&json!({"cmd": ["bash", "-c", SETUP]}))
        .send()
        .await?
        .text()
        .await?;
    let out = warren_e2e::decode_exec(&setup)?;
    let ip = out.stdout_str().trim().to_owned();
    if out.exit_code != Some(0) || ip.is_empty() {
        bail!("server setup failed: {}", out.stderr_str());
    }
    let detail: Sandbox = d.get_json(&format!("/v1/sandboxes/{}", sb.id)).await;
    let token = detail
        .traffic_token
        .context("the sandbox detail has no traffic token")?;
    let client = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let proxied = format!("{}/v1/sandboxes/{}/ports/{PORT}/", d.url, sb.id);
    let direct = format!("http://{ip}:{PORT}/");
    let mut through = timed_gets(&client, &proxied, Some(&token), requests).await?;
    let mut straight = timed_gets(&client, &direct, None, requests).await?;
    let mut rows = Vec::new();
    for p in [50.0, 99.0] {
        rows.push(Row::new(
            format!("GET through the port proxy, p{p}"),
            "ms",
            ms(percentile(&mut through, p)),
            Some(ms(percentile(&mut straight, p))),
        ));
    }
    d.delete(&format!("/v1/sandboxes/{}", sb.id)).send().await?;
    Ok(rows)
}
