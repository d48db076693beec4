//! Lifecycle webhooks out, in process over the fake runtime: registration
//! checks (URL, destination, events, secret, team), and deliveries to a
//! receiver on 127.0.0.1 that fails first and is retried when the manual
//! clock passes the retry's time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use http::StatusCode;
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::signature;
use warren_server::testing::InProcess;

struct Warren {
    server: InProcess,
    _dir: tempfile::TempDir,
}

impl Warren {
    async fn start(allow: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let allow = allow.iter().map(|c| c.parse().unwrap()).collect();
        let server = InProcess::start_with(dir.path(), Arc::new(FakeRuntime::new()), allow)
            .await
            .unwrap();
        Self { server, _dir: dir }
    }

    fn admin(&self) -> String {
        self.server.admin_key.clone().unwrap()
    }

    async fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.server.call(Some(key), method, path, body).await
    }
}

#[tokio::test]
async fn registrations_are_checked_and_belong_to_their_team() {
    let w = Warren::start(&[]).await;
    let admin = w.admin();
    for (body, why) in [
        (
            json!({"url": "ftp://example.com/", "events": ["*"]}),
            "scheme",
        ),
        (
            json!({"url": "http://127.0.0.1:9000/", "events": ["*"]}),
            "loopback",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            "metadata",
        ),
        (
            json!({"url": "http://[::1]/", "events": ["*"]}),
            "loopback v6",
        ),
        (
            json!({"url": "http://10.0.0.1/", "events": ["*"]}),
            "private",
        ),
        (
            json!({"url": "http://localhost/", "events": ["*"]}),
            "localhost",
        ),
        (
            json!({"url": "https://example.com/", "events": ["sandbox.exploded"]}),
            "event",
        ),
        (
            json!({"url": "https://example.com/", "events": []}),
            "no events",
        ),
        (
            json!({"url": "https://example.com/", "events": ["*"], "secret": "hunter2"}),
            "secret",
        ),
    ] {
        let (status, resp) = w.call(&admin, "POST", "/v1/webhooks", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {resp}");
        assert_eq!(resp["code"], "invalid_argument", "{why}: {resp}");
    }
    let (status, created) = w
        .call(
            &admin,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://example.com/hook", "events": ["sandbox.paused", "sandbox.killed"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap();
    assert!(signature::secret_key(secret).is_ok(), "{created}");

    let (status, list) = w.call(&admin, "GET", "/v1/webhooks", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    assert!(list["webhooks"][0].get("secret").is_none(), "{list}");

    // Another team sees none of it.
    let (status, team) = w
        .call(
            &admin,
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let eve = team["key"]["secret"].as_str().unwrap().to_owned();
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{id}")),
        ("GET", format!("/v1/webhooks/{id}/deliveries")),
        ("DELETE", format!("/v1/webhooks/{id}")),
    ] {
        let (status, body) = w.call(&eve, method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (_, theirs) = w.call(&eve, "GET", "/v1/webhooks", None).await;
    assert_eq!(theirs["webhooks"], json!([]));

    // Viewers read, never register.
    let (status, viewer) = w
        .call(
            &admin,
            "POST",
            "/v1/keys",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let viewer = viewer["secret"].as_str().unwrap();
    let (status, _) = w
        .call(
            viewer,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://example.com/", "events": ["*"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = w
        .call(&admin, "DELETE", &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(&admin, "GET", &format!("/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A team holds at most 20.
    let hook = json!({"url": "https://example.com/hook", "events": ["*"]});
    for _ in 0..20 {
        let (status, body) = w
            .call(&admin, "POST", "/v1/webhooks", Some(hook.clone()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = w.call(&admin, "POST", "/v1/webhooks", Some(hook)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "quota_exceeded", "{body}");
    w.server.stop().await;
}

/// What the receiver saw: headers and body of each request.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver on 127.0.0.1; with `fail_first` it answers 500 to its first
/// request, else (and after) 200.
async fn receiver(fail_first: bool) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: HeaderMap, body: Bytes| async move {
                let mut seen = seen.lock().unwrap();
                seen.push((headers, body));
                if fail_first && seen.len() == 1 {
                    (StatusCode::INTERNAL_SERVER_ERROR, "try later")
                } else {
                    (StatusCode::OK, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

async fn until<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_failed_delivery_is_retried_when_its_time_comes_with_the_same_id() {
    let w = Warren::start(&["127.0.0.0/8"]).await;
    let admin = w.admin();
    let (url, seen) = receiver(true).await;
    let (status, created) = w
        .call(
            &admin,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["sandbox.created"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let hook = created["id"].as_str().unwrap().to_owned();
    let key = signature::secret_key(created["secret"].as_str().unwrap()).unwrap();

    let (status, sandbox) = w
        .call(&admin, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    let sandbox = sandbox["id"].as_str().unwrap().to_owned();

    until("the first attempt", || seen.lock().unwrap().len() == 1).await;
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    let mut log = Value::Null;
    for _ in 0..100 {
        (_, log) = w.call(&admin, "GET", &deliveries, None).await;
        if log["deliveries"][0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(d["state"], "pending", "{log}");
    assert_eq!(d["last_status"], 500, "{log}");
    assert_eq!(d["sandbox_id"], sandbox.as_str());
    // Not retried before its time: the clock stands still.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);

    w.server.clock.advance(time::Duration::seconds(7));
    until("the retry", || seen.lock().unwrap().len() == 2).await;
    for _ in 0..100 {
        (_, log) = w.call(&admin, "GET", &deliveries, None).await;
        if log["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = &log["deliveries"][0];
    assert_eq!(d["state"], "delivered", "{log}");
    assert_eq!(d["attempts"], 2, "{log}");
    assert_eq!(d["log"][0]["status"], 500, "{log}");
    assert_eq!(d["log"][0]["response"], "try later", "{log}");
    assert_eq!(d["log"][1]["status"], 200, "{log}");

    let seen = seen.lock().unwrap().clone();
    let ids: Vec<&str> = seen
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "a retry keeps the event's id");
    assert_eq!(ids[0], d["event_id"].as_str().unwrap());
    for (headers, body) in seen.iter() {
        let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let ts: i64 = h("webhook-timestamp").unwrap().parse().unwrap();
        let received = signature::Received {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
        };
        assert_eq!(signature::verify(&key, received, body, ts), Ok(()));
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "sandbox.created");
        assert_eq!(payload["sandbox_id"], sandbox.as_str());
        assert_eq!(payload["data"]["state"], "running");
        assert_eq!(payload["data"]["template"], "base");
    }
    w.server.stop().await;
}

#[tokio::test]
async fn e2b_registrations_get_e2b_payloads_and_the_sandbox_events_listing() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let w = Warren::start(&["127.0.0.0/8"]).await;
    let admin = w.admin();
    let (url, seen) = receiver(false).await;
    let (status, hook) = w
        .call(
            &admin,
            "POST",
            "/events/webhooks",
            Some(json!({
                "name": "mine",
                "url": url,
                "enabled": true,
                "events": ["sandbox.lifecycle.created", "sandbox.lifecycle.updated"],
                "signatureSecret": "s3cret",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(
        hook["events"],
        json!(["sandbox.lifecycle.created"]),
        "{hook}"
    );
    assert_eq!(hook["name"], "mine");
    assert!(
        hook["teamID"].is_string() && hook["createdAt"].is_string(),
        "{hook}"
    );
    let id = hook["id"].as_str().unwrap().to_owned();

    let (status, sandbox) = w
        .call(
            &admin,
            "POST",
            "/v1/sandboxes",
            Some(json!({"metadata": {"k": "v"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    let sandbox = sandbox["id"].as_str().unwrap().to_owned();
    until("the delivery", || seen.lock().unwrap().len() == 1).await;
    let (headers, body) = seen.lock().unwrap()[0].clone();
    let digest = sha2::Sha256::new()
        .chain_update(b"s3cret")
        .chain_update(&body)
        .finalize();
    let want = base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest);
    assert_eq!(headers["e2b-signature"].to_str().unwrap(), want);
    assert_eq!(headers["e2b-webhook-id"].to_str().unwrap(), id);
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "sandbox.lifecycle.created", "{payload}");
    assert_eq!(payload["sandboxId"], sandbox.as_str());
    assert_eq!(
        payload["eventData"]["sandbox_metadata"]["k"], "v",
        "{payload}"
    );

    let (status, _) = w
        .call(&admin, "DELETE", &format!("/v1/sandboxes/{sandbox}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, events) = w
        .call(
            &admin,
            "GET",
            &format!("/events/sandboxes/{sandbox}?orderAsc=true"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["sandbox.lifecycle.created", "sandbox.lifecycle.killed"]
    );
    let (_, killed) = w
        .call(
            &admin,
            "GET",
            &format!("/events/sandboxes/{sandbox}?types=sandbox.lifecycle.killed"),
            None,
        )
        .await;
    assert_eq!(killed.as_array().unwrap().len(), 1, "{killed}");
    // Only the created event was wanted: the kill was never sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.lock().unwrap().len(), 1);

    let (status, patched) = w
        .call(
            &admin,
            "PATCH",
            &format!("/events/webhooks/{id}"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["enabled"], false);
    let (status, bad) = w
        .call(
            &admin,
            "POST",
            "/events/webhooks",
            Some(json!({"url": "http://169.254.169.254/", "signatureSecret": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["code"], 400, "{bad}");

    let (_, team) = w
        .call(
            &admin,
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    let eve = team["key"]["secret"].as_str().unwrap().to_owned();
    for (method, path) in [
        ("GET", format!("/events/webhooks/{id}")),
        ("DELETE", format!("/events/webhooks/{id}")),
        ("GET", format!("/events/sandboxes/{sandbox}")),
    ] {
        let (status, body) = w.call(&eve, method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    let (status, _) = w
        .call(&admin, "DELETE", &format!("/events/webhooks/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    w.server.stop().await;
}

#[tokio::test]
async fn a_pending_delivery_is_sent_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let allow = vec!["127.0.0.0/8".parse().unwrap()];
    let first = InProcess::start_with(dir.path(), Arc::new(FakeRuntime::new()), allow.clone())
        .await
        .unwrap();
    let admin = first.admin_key.clone().unwrap();
    let w = Warren {
        server: first,
        _dir: tempfile::tempdir().unwrap(),
    };
    let (url, seen) = receiver(true).await;
    let (status, hook) = w
        .call(
            &admin,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["sandbox.created"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let deliveries = format!("/v1/webhooks/{}/deliveries", hook["id"].as_str().unwrap());
    let (status, _) = w
        .call(&admin, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    until("the first attempt", || seen.lock().unwrap().len() == 1).await;
    for _ in 0..100 {
        let (_, log) = w.call(&admin, "GET", &deliveries, None).await;
        if log["deliveries"][0]["attempts"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.server.stop().await;

    let second = InProcess::start_with(dir.path(), Arc::new(FakeRuntime::new()), allow)
        .await
        .unwrap();
    second.clock.advance(time::Duration::seconds(7));
    let w = Warren {
        server: second,
        _dir: tempfile::tempdir().unwrap(),
    };
    until("the retry after the restart", || {
        seen.lock().unwrap().len() == 2
    })
    .await;
    let mut log = Value::Null;
    for _ in 0..100 {
        (_, log) = w.call(&admin, "GET", &deliveries, None).await;
        if log["deliveries"][0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(log["deliveries"][0]["state"], "delivered", "{log}");
    assert_eq!(log["deliveries"][0]["attempts"], 2, "{log}");
    w.server.stop().await;
}

#[tokio::test]
async fn the_reapers_kill_is_a_killed_event() {
    let w = Warren::start(&["127.0.0.0/8"]).await;
    let admin = w.admin();
    let (url, seen) = receiver(false).await;
    let (status, hook) = w
        .call(
            &admin,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": url, "events": ["sandbox.killed"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let (status, sandbox) = w
        .call(
            &admin,
            "POST",
            "/v1/sandboxes",
            Some(json!({"timeout_s": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    w.server.clock.advance(time::Duration::seconds(61));
    until("the killed event", || seen.lock().unwrap().len() == 1).await;
    let body = seen.lock().unwrap()[0].1.clone();
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["type"], "sandbox.killed", "{payload}");
    assert_eq!(payload["sandbox_id"], sandbox["id"], "{payload}");
    assert_eq!(payload["data"]["state"], "killed", "{payload}");
    assert_eq!(payload["data"]["from_state"], "running", "{payload}");
    assert_eq!(payload["data"]["reason"], "expired", "{payload}");
    w.server.stop().await;
}

#[tokio::test]
async fn a_signing_secret_is_not_in_the_database() {
    let w = Warren::start(&[]).await;
    let admin = w.admin();
    let secret = signature::new_secret();
    let (status, body) = w
        .call(
            &admin,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://example.com/hook", "events": ["*"], "secret": secret})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["secret"], secret.as_str());
    let key_b64 = secret.strip_prefix("whsec_").unwrap();
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(w._dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("warren.db") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!stored.is_empty());
    let found = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(found(b"https://example.com/hook"), "the row is there");
    assert!(!found(key_b64.as_bytes()), "the secret is not");
    w.server.stop().await;
}
