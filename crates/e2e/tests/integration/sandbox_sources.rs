//! Sources of events against a real daemon and real sandboxes: a signed
//! GitHub delivery lands in the subscribed sandbox's inbox only, a forged
//! or replayed one in none; a timer set before the daemon stops fires once
//! after it starts again on the same data directory (docs/events.md).

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use sha2::Sha256;
use warren_e2e::Daemon;

async fn inbox(d: &Daemon, id: &str) -> Vec<Value> {
    let body: Value = d.get_json(&format!("/v1/sandboxes/{id}/events")).await;
    body["events"].as_array().unwrap().clone()
}

/// Posts a GitHub delivery to the hook, signed with `secret`.
async fn deliver(d: &Daemon, path: &str, secret: &str, delivery: &str, body: &str) -> (u16, Value) {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let resp = d
        .http
        .post(format!("{}{path}", d.url))
        .header("content-type", "application/json")
        .header("x-github-event", "check_suite")
        .header("x-github-delivery", delivery)
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sandbox_github_delivery_reaches_only_the_subscribed_sandbox() {
    let d = Daemon::with_base().await;
    let subscribed = d.create_sandbox(json!({})).await.id;
    let bystander = d.create_sandbox(json!({})).await.id;
    let (status, created) = d
        .call(
            &d.key,
            "POST",
            "/v1/hooks",
            Some(json!({"kind": "github", "subscriptions": [
                {"sandbox": subscribed, "repository": "acme/app", "pull_request": 42,
                 "events": ["check_suite"]},
            ]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let path = created["hook"]["delivery_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let hook = created["hook"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let body = json!({
        "action": "completed",
        "check_suite": {"conclusion": "success", "head_branch": "fix",
                        "pull_requests": [{"number": 42}]},
        "repository": {"full_name": "acme/app"},
    })
    .to_string();

    let (status, answer) = deliver(&d, &path, &secret, "delivery-1", &body).await;
    assert_eq!(status, 202, "{answer}\n{}", d.log());
    assert_eq!(answer["delivered"], 1);
    let events = inbox(&d, &subscribed).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "github.check_suite");
    assert_eq!(events[0]["data"]["check_suite"]["conclusion"], "success");
    assert!(inbox(&d, &bystander).await.is_empty());

    // Forged (another secret) and replayed (same delivery id): neither
    // is delivered.
    let (status, _) = deliver(
        &d,
        &path,
        "a-secret-that-is-not-the-hooks",
        "delivery-2",
        &body,
    )
    .await;
    assert_eq!(status, 401);
    let (status, answer) = deliver(&d, &path, &secret, "delivery-1", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["duplicate"], true);
    assert_eq!(inbox(&d, &subscribed).await.len(), 1);
    assert!(inbox(&d, &bystander).await.is_empty());
    let shown: Value = d.get_json(&format!("/v1/hooks/{hook}")).await;
    assert_eq!(
        (shown["accepted"].clone(), shown["rejected"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn sandbox_timer_fires_after_a_daemon_restart() {
    let mut d = Daemon::with_base().await;
    let id = d.create_sandbox(json!({"timeout_s": 600})).await.id;
    let (status, timer) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{id}/timers"),
            Some(json!({"after": 3, "event": {"type": "reminder", "data": {"pr": 42}}})),
        )
        .await;
    assert_eq!(status, 201, "{timer}");
    let fires_at = time::OffsetDateTime::parse(
        timer["fires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    d.stop_with(Signal::SIGTERM).unwrap();
    // Let the timer fall due while the daemon is down.
    while time::OffsetDateTime::now_utc() <= fires_at {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.restart().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        let events = inbox(&d, &id).await;
        if !events.is_empty() {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "the timer never fired:\n{}",
            d.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "reminder");
    assert_eq!(events[0]["data"], json!({"pr": 42}));
    // The fired timer's row goes just after its event is in the inbox.
    loop {
        let timers: Value = d.get_json(&format!("/v1/sandboxes/{id}/timers")).await;
        if timers["timers"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "{timers}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(inbox(&d, &id).await.len(), 1, "fired once");
}
