//! The daemon's listeners cannot be starved, and client numbers cannot
//! crash it: slow or silent connections are closed, connections over a
//! source's cap are refused with 429 (on the API per client address, on
//! the sandbox listener per sandbox), and huge durations are a 400.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_e2e::Daemon;

/// Reads until the daemon closes `conn`; how long that took, or `None` if
/// it kept the connection open for `limit`.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Whether the daemon answers a new client's health check.
async fn still_serves(d: &Daemon) -> bool {
    d.get("/v1/health")
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

#[tokio::test]
async fn sandbox_api_listener_closes_slow_and_idle_connections() {
    let d = Daemon::start().await.expect("daemon starts");
    // A head that never ends, and a kept-alive connection that goes quiet.
    let mut slow = TcpStream::connect(d.addr).await.unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(d.addr).await.unwrap();
    idle.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let (slow, idle) = tokio::join!(
        closed_within(&mut slow, Duration::from_secs(40)),
        closed_within(&mut idle, Duration::from_secs(40))
    );
    assert!(
        slow.is_some(),
        "a never-ending request head held its connection"
    );
    assert!(idle.is_some(), "an idle kept-alive connection was held");
    assert!(still_serves(&d).await);
}

#[tokio::test]
async fn sandbox_api_listener_caps_connections_per_client_address() {
    let d = Daemon::start_with(&["--max-connections-per-source", "8"])
        .await
        .expect("daemon starts");
    // The test's own client may hold a pooled connection or two as well.
    let mut held = Vec::new();
    let mut refused = None;
    for _ in 0..12 {
        let mut c = TcpStream::connect(d.addr).await.unwrap();
        c.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let n = c.read(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
        if answer.starts_with("HTTP/1.1 200") {
            held.push(c);
        } else {
            refused = Some(answer);
        }
    }
    assert!(held.len() <= 8, "{} connections were held", held.len());
    let refused = refused.expect("no connection was refused");
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    drop(held);
    // The slots come back once the connections close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = d.get("/v1/health").send().await.unwrap().status();
        if status.is_success() {
            break;
        }
        assert!(Instant::now() < deadline, "the cap never freed: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A sandbox opening hundreds of connections to its daemon holds at most
/// its cap of them; the rest are refused, and other callers are served.
#[tokio::test]
async fn sandbox_connection_flood_from_inside_is_capped() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let script = r#"
import os, socket, urllib.parse
u = urllib.parse.urlparse(os.environ["WARREN_API_URL"])
held, refused = [], 0
for i in range(200):
    s = socket.create_connection((u.hostname, u.port), timeout=5)
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    head = s.recv(12)
    if head == b"HTTP/1.1 429":
        refused += 1
        s.close()
    else:
        held.append(s)
print(len(held), refused)
"#;
    let out = d
        .exec(&sb.id, json!({"cmd": ["python3", "-c", script]}))
        .await;
    assert_eq!(
        out.exit_code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Vec<usize> = out
        .stdout_str()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 2, "{}", out.stdout_str());
    assert!(
        counts[0] <= 32,
        "the sandbox held {} connections",
        counts[0]
    );
    assert_eq!(counts[0] + counts[1], 200);
    assert!(still_serves(&d).await);
}

/// E2B durations meet the clock only after validation: i64::MAX seconds is
/// a 400, not a crashed handler, and the sandbox's lifetime is unchanged.
#[tokio::test]
async fn sandbox_huge_durations_are_refused_not_crashed() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let huge = i64::MAX;
    let calls = [
        (
            format!("/sandboxes/{}/refreshes", sb.id),
            json!({"duration": huge}),
        ),
        (
            format!("/sandboxes/{}/connect", sb.id),
            json!({"timeout": huge}),
        ),
        (
            format!("/v2/sandboxes/{}/connect", sb.id),
            json!({"timeout": huge}),
        ),
        (
            format!("/sandboxes/{}/timeout", sb.id),
            json!({"timeout": huge}),
        ),
        (
            format!("/v1/sandboxes/{}/timeout", sb.id),
            json!({"timeout_s": huge}),
        ),
    ];
    for (path, body) in calls {
        let resp = d.post(&path).json(&body).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("{path}: the daemon dropped the request: {e}"));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, 400, "{path}: {text}");
    }
    let after: warren_api_types::Sandbox = d.get_json(&format!("/v1/sandboxes/{}", sb.id)).await;
    assert_eq!(after.expires_at, sb.expires_at);
}
