//! Lifecycle webhooks out of a real daemon: a receiver on 127.0.0.1 (opened
//! with `--webhook-allow`) gets a real sandbox's created, paused, resumed
//! and killed events, each signed under the registration's secret; an
//! answer of 500 is retried and the delivery log shows both attempts; the
//! cloud metadata address and, without the flag, loopback are refused at
//! registration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use warren_e2e::Daemon;

/// One request the receiver took: lower-case headers and the body.
#[derive(Debug, Clone)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A tiny HTTP/1.1 receiver: 500 to its first request, 204 to the rest.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let headers: BTreeMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let first = {
                    let mut log = log.lock().unwrap();
                    log.push(Received { headers, body });
                    log.len() == 1
                };
                let answer: &[u8] = if first {
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 9\r\nconnection: close\r\n\r\ntry later"
                } else {
                    b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"
                };
                let _ = conn.write_all(answer).await;
            });
        }
    });
    (format!("http://{addr}/hook"), seen)
}

/// Checks a Standard Webhooks signature the way a receiver would.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let content = format!(
        "{}.{}.{}",
        r.headers["webhook-id"],
        r.headers["webhook-timestamp"],
        String::from_utf8_lossy(&r.body)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(content.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"]
        .split(' ')
        .any(|s| s == expected)
}

#[tokio::test]
async fn sandbox_lifecycle_webhooks_reach_a_local_receiver_signed_and_retried() {
    let (url, seen) = receiver().await;
    let d = Daemon::with_base_and(&[
        "--webhook-allow",
        "127.0.0.0/8",
        "--webhook-first-retry",
        "1",
    ])
    .await;
    let key = d.key.clone();
    let (status, body) = d
        .call(
            &key,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "http://169.254.169.254/latest/meta-data", "events": ["*"]})),
        )
        .await;
    assert_eq!(status, 400, "the metadata address stays closed: {body}");

    let events = [
        "sandbox.created",
        "sandbox.paused",
        "sandbox.resumed",
        "sandbox.killed",
    ];
    let (status, hook) = d
        .call(
            &key,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let hook_id = hook["id"].as_str().unwrap().to_owned();

    let sb = d
        .create_sandbox(json!({"metadata": {"task": "webhooks"}}))
        .await;
    for step in ["pause", "resume"] {
        let (status, body) = d
            .call(
                &key,
                "POST",
                &format!("/v1/sandboxes/{}/{step}", sb.id),
                None,
            )
            .await;
        assert_eq!(status, 200, "{step}: {body}\n{}", d.log());
    }
    let (status, _) = d
        .call(&key, "DELETE", &format!("/v1/sandboxes/{}", sb.id), None)
        .await;
    assert_eq!(status, 204);

    // Every event arrives (the first attempt at one of them got a 500).
    let mut types = Vec::new();
    for _ in 0..300 {
        types = seen
            .lock()
            .unwrap()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["type"].clone())
            .map(|t| t.as_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        if events.iter().all(|e| types.iter().any(|t| t == e)) && types.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events.iter().all(|e| types.iter().any(|t| t == e)) && types.len() >= 5,
        "received {types:?}\n{}",
        d.log()
    );
    let received = seen.lock().unwrap().clone();
    for r in &received {
        assert!(verifies(&secret, r), "bad signature on {r:?}");
        let payload: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(payload["sandbox_id"], sb.id.as_str(), "{payload}");
        assert_eq!(payload["id"], r.headers["webhook-id"].as_str());
        assert_eq!(payload["data"]["metadata"]["task"], "webhooks", "{payload}");
    }
    let retried = &received[0];
    assert_eq!(
        received
            .iter()
            .filter(|r| r.headers["webhook-id"] == retried.headers["webhook-id"])
            .count(),
        2,
        "the refused delivery came again with its id"
    );

    // The delivery log shows both attempts of the retried one.
    let mut log = Value::Null;
    for _ in 0..50 {
        (_, log) = d
            .call(
                &key,
                "GET",
                &format!("/v1/webhooks/{hook_id}/deliveries"),
                None,
            )
            .await;
        let all = log["deliveries"].as_array().unwrap();
        if all.len() == 4 && all.iter().all(|x| x["state"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = log["deliveries"].as_array().unwrap();
    assert_eq!(all.len(), 4, "{log}");
    let twice = all
        .iter()
        .find(|x| x["event_id"] == retried.headers["webhook-id"].as_str())
        .unwrap();
    assert_eq!(twice["state"], "delivered", "{log}");
    assert_eq!(twice["attempts"], 2, "{log}");
    assert_eq!(twice["log"][0]["status"], 500, "{log}");
    assert_eq!(twice["log"][0]["response"], "try later", "{log}");
    assert_eq!(twice["log"][1]["status"], 204, "{log}");
}

#[tokio::test]
async fn sandbox_webhooks_to_internal_addresses_are_refused_without_the_flag() {
    let d = Daemon::start().await.expect("daemon starts");
    let key = d.key.clone();
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
    ] {
        let (status, body) = d
            .call(
                &key,
                "POST",
                "/v1/webhooks",
                Some(json!({"url": url, "events": ["*"]})),
            )
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("never go to"),
            "{body}"
        );
    }
}
