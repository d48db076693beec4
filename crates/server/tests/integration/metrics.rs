//! `GET /metrics` scraped by a real Prometheus server (Debian's
//! `prometheus`, installed by `scripts/deps.sh`): its query API returns
//! Warren's series. The daemon runs in process over the fake runtime.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

/// A Prometheus server, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Prometheus scraping `target` every second with `key`.
fn prometheus(target: std::net::SocketAddr, key: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: warren\n    metrics_path: /metrics\n    authorization:\n      type: Bearer\n      credentials: {key}\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed (scripts/deps.sh installs Debian's package)");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// The value of the instant query `q`, once it has one (or after a minute).
async fn query(p: &Prometheus, q: &str) -> Option<f64> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let url = url::Url::parse_with_params(&format!("{}/api/v1/query", p.url), [("query", q)])
            .unwrap();
        let answer = http.get(url).send().await;
        if let Ok(resp) = answer
            && let Ok(body) = resp.json::<Value>().await
            && let Some(value) = body["data"]["result"][0]["value"][1].as_str()
        {
            return value.parse().ok();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

#[tokio::test]
async fn prometheus_scrapes_warrens_series() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let (status, body) = w
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Operators only; the text is OpenMetrics.
    let (status, _) = w.call(None, "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let member = w.key("member").await;
    let (status, _) = w.call(Some(&member), "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, text) = w.call(Some(&admin), "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("warren_sandboxes{state=\"running\"} 1"),
        "{text}"
    );
    let id = body["id"].as_str().unwrap();
    assert!(
        !text.contains(id),
        "no sandbox id becomes a label of the fixed series"
    );
    // Audit appends are timed (the create was audited).
    assert!(
        text.lines()
            .any(|l| l.starts_with("warren_audit_append_seconds_count ") && !l.ends_with(" 0")),
        "{text}"
    );
    // This daemon runs with per-sandbox series: a sandbox the meter counted
    // has its own.
    w.clock.advance(time::Duration::seconds(30));
    w.sample_meter().await;
    let (_, text) = w.call(Some(&admin), "GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    assert!(
        text.contains(&format!("warren_sandbox_cpu_seconds{{sandbox=\"{id}\"")),
        "{text}"
    );

    let addr = w.serve().await.unwrap();
    let p = prometheus(addr, &admin);
    assert_eq!(query(&p, "up{job=\"warren\"}").await, Some(1.0));
    assert_eq!(
        query(&p, "warren_sandboxes{state=\"running\"}").await,
        Some(1.0)
    );
    let creates = query(
        &p,
        "warren_http_requests_total{method=\"POST\",route=\"/v1/sandboxes\",status=\"201\"}",
    )
    .await;
    assert_eq!(creates, Some(1.0));
    let timed = query(
        &p,
        "warren_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/sandboxes\"}",
    )
    .await;
    assert_eq!(timed, Some(1.0));
    // Its own scrapes are counted too, by route.
    let scrapes = query(
        &p,
        "warren_http_requests_total{route=\"/metrics\",status=\"200\"}",
    )
    .await;
    assert!(scrapes.is_some_and(|n| n >= 1.0), "{scrapes:?}");
}
