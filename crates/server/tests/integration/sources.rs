//! Sources of events driven in process over the fake runtime: GitHub and
//! Standard Webhooks deliveries to hooks (signatures, replays, stale
//! timestamps, unknown hooks, other teams, oversized bodies) and timers
//! firing as the manual clock moves, also across a restart on the same
//! data directory.

use std::sync::Arc;

use axum::body::Body;
use hmac::{Hmac, Mac};
use http::{Request, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::signature;
use warren_server::testing::InProcess;

async fn create_sandbox(w: &InProcess, key: &str) -> String {
    let (status, body) = w
        .call(Some(key), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn inbox(w: &InProcess, key: &str, id: &str) -> Vec<Value> {
    let (status, body) = w
        .call(
            Some(key),
            "GET",
            &format!("/v1/sandboxes/{id}/events"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["events"].as_array().unwrap().clone()
}

async fn other_team(w: &InProcess, admin: &str) -> String {
    let (status, body) = w
        .call(
            Some(admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["key"]["secret"].as_str().unwrap().to_owned()
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts `body` to the hook's delivery path with `headers`.
async fn deliver(
    w: &InProcess,
    hook: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/v1/hooks/{hook}/deliver"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    w.send(req.body(Body::from(body.to_vec())).unwrap()).await
}

fn github_headers(
    secret: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    vec![
        ("x-hub-signature-256", github_signature(secret, body)),
        ("x-github-event", event.to_owned()),
        ("x-github-delivery", delivery.to_owned()),
    ]
}

fn check_suite(repo: &str, pr: u64) -> Vec<u8> {
    json!({
        "action": "completed",
        "check_suite": {"conclusion": "failure", "head_branch": "fix", "pull_requests": [{"number": pr}]},
        "repository": {"full_name": repo},
    })
    .to_string()
    .into_bytes()
}

async fn github_hook(w: &InProcess, key: &str, subscriptions: Value) -> (String, String) {
    let (status, body) = w
        .call(
            Some(key),
            "POST",
            "/v1/hooks",
            Some(json!({"kind": "github", "subscriptions": subscriptions})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["hook"]["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_github_delivery_reaches_only_the_subscribed_sandbox_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let subscribed = create_sandbox(&w, &admin).await;
    let other_pr = create_sandbox(&w, &admin).await;
    let bystander = create_sandbox(&w, &admin).await;
    let (hook, secret) = github_hook(
        &w,
        &admin,
        json!([
            {"sandbox": subscribed, "repository": "acme/app", "pull_request": 7, "events": ["check_suite"]},
            {"sandbox": other_pr, "repository": "acme/app", "pull_request": 8, "events": ["check_suite"]},
        ]),
    )
    .await;

    let body = check_suite("Acme/App", 7);
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "check_suite", "d-1", &body),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer, json!({"delivered": 1, "duplicate": false}));
    let events = inbox(&w, &admin, &subscribed).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "github.check_suite");
    assert_eq!(events[0]["source"], "github:Acme/App");
    assert_eq!(events[0]["dedupe_key"], "github:d-1");
    assert_eq!(events[0]["data"]["check_suite"]["conclusion"], "failure");
    assert!(inbox(&w, &admin, &other_pr).await.is_empty());
    assert!(inbox(&w, &admin, &bystander).await.is_empty());

    // A replay of the same delivery id is not delivered again.
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "check_suite", "d-1", &body),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"delivered": 0, "duplicate": true}));
    assert_eq!(inbox(&w, &admin, &subscribed).await.len(), 1);

    // A bad signature, a missing one, or a signature of another body: 401,
    // the same words, nothing delivered.
    let mut forged = github_headers(&secret, "check_suite", "d-2", &body);
    forged[0].1 = github_signature("not-the-secret-at-all", &body);
    let mut unsigned = github_headers(&secret, "check_suite", "d-3", &body);
    unsigned.remove(0);
    let tampered = github_headers(&secret, "check_suite", "d-4", b"{}");
    let mut messages = Vec::new();
    for headers in [forged, unsigned, tampered] {
        let (status, answer) = deliver(&w, &hook, &headers, &body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
        messages.push(answer["message"].clone());
    }
    assert!(messages.windows(2).all(|m| m[0] == m[1]), "{messages:?}");
    assert!(!messages[0].to_string().contains(&secret));
    assert_eq!(inbox(&w, &admin, &subscribed).await.len(), 1);

    // The sandbox listener does not take deliveries, signed or not.
    let body9 = check_suite("acme/app", 7);
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/v1/hooks/{hook}/deliver"))
        .header("content-type", "application/json");
    for (name, value) in github_headers(&secret, "check_suite", "d-9", &body9) {
        req = req.header(name, value);
    }
    let resp = w
        .sandbox_api
        .clone()
        .oneshot(req.body(Body::from(body9)).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(inbox(&w, &admin, &subscribed).await.len(), 1);

    // A ping answers without delivering; other events and repositories
    // reach nobody.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "ping", "d-5", ping),
        ping,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let push =
        json!({"ref": "refs/heads/fix", "repository": {"full_name": "acme/app"}}).to_string();
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "push", "d-6", push.as_bytes()),
        push.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["delivered"], 0);
    assert_eq!(inbox(&w, &admin, &subscribed).await.len(), 1);

    // The counts and the audit log; never the secret.
    let (status, shown) = w
        .call(Some(&admin), "GET", &format!("/v1/hooks/{hook}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["rejected"], 3, "{shown}");
    assert_eq!(shown["accepted"], 3, "{shown}");
    let (_, listed) = w.call(Some(&admin), "GET", "/v1/hooks", None).await;
    assert_eq!(listed["hooks"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    let (_, audit) = w
        .call(
            Some(&admin),
            "GET",
            "/v1/audit/entries?action=hook.deliver",
            None,
        )
        .await;
    let text = audit.to_string();
    assert!(text.contains("d-1") && !text.contains(&secret), "{text}");
    w.stop().await;
}

#[tokio::test]
async fn strangers_unknown_hooks_and_oversized_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let rival = other_team(&w, &admin).await;
    let ours = create_sandbox(&w, &admin).await;
    let theirs = create_sandbox(&w, &rival).await;

    // A hook may not name another team's sandbox: the same 404 as none.
    let sub = |sbx: &str| json!([{"sandbox": sbx, "repository": "acme/app", "events": ["push"]}]);
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/hooks",
            Some(json!({"kind": "github", "subscriptions": sub(&theirs)})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (hook, secret) = github_hook(&w, &admin, sub(&ours)).await;
    // Another team neither sees nor deletes it.
    for (method, path) in [
        ("GET", format!("/v1/hooks/{hook}")),
        ("DELETE", format!("/v1/hooks/{hook}")),
    ] {
        let (status, _) = w.call(Some(&rival), method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, listed) = w.call(Some(&rival), "GET", "/v1/hooks", None).await;
    assert_eq!(listed["hooks"], json!([]));
    // A viewer lists but cannot create.
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/keys",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let viewer = body["secret"].as_str().unwrap().to_owned();
    let (status, _) = w
        .call(
            Some(&viewer),
            "POST",
            "/v1/hooks",
            Some(json!({"kind": "github", "subscriptions": sub(&ours)})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.call(Some(&viewer), "GET", "/v1/hooks", None).await;
    assert_eq!(status, StatusCode::OK);
    // Bad requests.
    for bad in [
        json!({"kind": "gitlab", "subscriptions": sub(&ours)}),
        json!({"kind": "github", "subscriptions": []}),
        json!({"kind": "github", "subscriptions": [{"sandbox": ours, "repository": "nope", "events": ["push"]}]}),
        json!({"kind": "github", "subscriptions": [{"sandbox": ours, "repository": "a/b", "events": []}]}),
        json!({"kind": "github", "secret": "short", "subscriptions": sub(&ours)}),
        json!({"kind": "standard", "subscriptions": [{"sandbox": ours, "repository": "a/b"}]}),
        json!({"kind": "standard", "secret": "whsec_AAAA", "subscriptions": [{"sandbox": ours}]}),
    ] {
        let (status, body) = w
            .call(Some(&admin), "POST", "/v1/hooks", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // An unknown hook is 404, signed or not.
    let body = br#"{"repository":{"full_name":"acme/app"},"ref":"refs/heads/main"}"#;
    let (status, _) = deliver(
        &w,
        "hk_0000",
        &github_headers(&secret, "push", "x", body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Over 1 MiB: 413 without reading on. Over the inbox's 256 KiB: 413.
    let huge = vec![b' '; 1024 * 1024 + 1];
    let (status, _) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "push", "big-1", &huge),
        &huge,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let large = json!({"ref": "refs/heads/main", "repository": {"full_name": "acme/app"}, "pad": "x".repeat(300 * 1024)}).to_string();
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "push", "big-2", large.as_bytes()),
        large.as_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let (_, shown) = w
        .call(Some(&admin), "GET", &format!("/v1/hooks/{hook}"), None)
        .await;
    assert_eq!(shown["rejected"], 2, "{shown}");
    assert!(inbox(&w, &admin, &ours).await.is_empty());

    // A killed subscribed sandbox is skipped, not the sender's error.
    w.call(
        Some(&admin),
        "DELETE",
        &format!("/v1/sandboxes/{ours}"),
        None,
    )
    .await;
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "push", "after-kill", body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["delivered"], 0);

    // A deleted hook takes no more deliveries.
    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("/v1/hooks/{hook}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "push", "late", body),
        body,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.stop().await;
}

#[tokio::test]
async fn standard_webhooks_are_verified_in_their_window_and_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let all = create_sandbox(&w, &admin).await;
    let paid_only = create_sandbox(&w, &admin).await;
    let (status, created) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/hooks",
            Some(json!({"kind": "standard", "subscriptions": [
                {"sandbox": all},
                {"sandbox": paid_only, "events": ["invoice.paid"]},
            ]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let hook = created["hook"]["id"].as_str().unwrap().to_owned();
    let key = signature::secret_key(created["secret"].as_str().unwrap()).unwrap();
    let now = w.clock.clock().now().unix_timestamp();
    let signed = |id: &str, ts: i64, body: &[u8]| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature::sign(&key, id, ts, body)),
        ]
    };

    let paid = br#"{"type":"invoice.paid","data":{"amount":5}}"#;
    let (status, answer) = deliver(&w, &hook, &signed("msg_1", now, paid), paid).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["delivered"], 2);
    let void = br#"{"type":"invoice.void"}"#;
    let (_, answer) = deliver(&w, &hook, &signed("msg_2", now, void), void).await;
    assert_eq!(answer["delivered"], 1);
    assert_eq!(inbox(&w, &admin, &all).await.len(), 2);
    let got = inbox(&w, &admin, &paid_only).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "invoice.paid");
    assert_eq!(got[0]["source"], format!("hook:{hook}"));

    // A replayed id, a stale timestamp, a wrong signature: never delivered.
    let (status, answer) = deliver(&w, &hook, &signed("msg_1", now, paid), paid).await;
    assert_eq!(
        (status, answer["duplicate"].clone()),
        (StatusCode::OK, json!(true))
    );
    let stale = now - signature::TOLERANCE_S - 1;
    let (status, _) = deliver(&w, &hook, &signed("msg_3", stale, paid), paid).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut wrong = signed("msg_4", now, paid);
    wrong[2].1 = signature::sign(
        &signature::secret_key(&signature::new_secret()).unwrap(),
        "msg_4",
        now,
        paid,
    );
    let (status, _) = deliver(&w, &hook, &wrong, paid).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The same delivery moved forward in time past the window is stale too.
    w.clock
        .advance(time::Duration::seconds(signature::TOLERANCE_S + 1));
    let (status, _) = deliver(&w, &hook, &signed("msg_5", now, paid), paid).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inbox(&w, &admin, &all).await.len(), 2);
    let (_, shown) = w
        .call(Some(&admin), "GET", &format!("/v1/hooks/{hook}"), None)
        .await;
    assert_eq!(
        (shown["accepted"].clone(), shown["rejected"].clone()),
        (json!(2), json!(3))
    );
    w.stop().await;
}

/// Polls the inbox until it holds `n` events; panics after ten seconds
/// (the timer worker looks every half second).
async fn until_inbox(w: &InProcess, key: &str, id: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = inbox(w, key, id).await;
        if events.len() >= n {
            return events;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "inbox holds {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Polls the sandbox's pending timers until there are `n` (a fired
/// timer's row goes just after its event is in the inbox).
async fn until_timers(w: &InProcess, key: &str, path: &str, n: usize) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, listed) = w.call(Some(key), "GET", path, None).await;
        if listed["timers"].as_array().is_some_and(|t| t.len() == n) {
            return listed;
        }
        assert!(std::time::Instant::now() < deadline, "timers: {listed}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn timers_fire_when_the_clock_says_so_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/sandboxes",
            Some(json!({"timeout_s": 86400})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/sandboxes/{id}/timers");
    let (status, soon) = w
        .call(
            Some(&admin),
            "POST",
            &path,
            Some(json!({"after": 60, "event": {"type": "reminder", "data": {"n": 1}}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{soon}");
    let (status, later) = w
        .call(
            Some(&admin),
            "POST",
            &path,
            Some(json!({"after": "2h", "event": {"type": "reminder.late", "source": "me"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{later}");
    let (status, gone) = w
        .call(
            Some(&admin),
            "POST",
            &path,
            Some(json!({"after": "1h", "event": {"type": "never"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{gone}");
    let (_, listed) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(listed["timers"].as_array().unwrap().len(), 3);
    let (status, _) = w
        .call(
            Some(&admin),
            "DELETE",
            &format!("{path}/{}", gone["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Time stands still: nothing fires.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(inbox(&w, &admin, &id).await.is_empty());
    w.clock.advance(time::Duration::seconds(61));
    let events = until_inbox(&w, &admin, &id, 1).await;
    assert_eq!(events[0]["type"], "reminder");
    assert_eq!(events[0]["source"], "timer");
    assert_eq!(events[0]["data"], json!({"n": 1}));
    assert_eq!(
        events[0]["dedupe_key"],
        format!("timer:{}", soon["id"].as_str().unwrap())
    );
    until_timers(&w, &admin, &path, 1).await;

    // Stopped and started again on the same directory: the later timer
    // is still there and fires when its time comes.
    w.stop().await;
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let (_, listed) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(listed["timers"][0]["id"], later["id"], "{listed}");
    w.clock.advance(time::Duration::hours(3));
    let events = until_inbox(&w, &admin, &id, 2).await;
    assert_eq!(events[1]["type"], "reminder.late");
    assert_eq!(events[1]["source"], "me");
    until_timers(&w, &admin, &path, 0).await;
    assert_eq!(
        inbox(&w, &admin, &id).await.len(),
        2,
        "each timer fired once"
    );
    w.stop().await;
}

#[tokio::test]
async fn bad_timers_and_strangers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let id = create_sandbox(&w, &admin).await;
    let path = format!("/v1/sandboxes/{id}/timers");
    let ev = json!({"type": "t"});
    for bad in [
        json!({"event": ev}),
        json!({"after": 5, "at": "2030-01-01T00:00:00Z", "event": ev}),
        json!({"after": "soon", "event": ev}),
        json!({"after": -1, "event": ev}),
        json!({"after": "400d", "event": ev}),
        json!({"at": "2001-01-01T00:00:00Z", "event": ev}),
        json!({"at": "tomorrow", "event": ev}),
        json!({"after": 5, "event": {"type": "has space"}}),
        json!({"after": 5, "event": {"type": "t", "data": "y".repeat(300 * 1024)}}),
    ] {
        let (status, body) = w.call(Some(&admin), "POST", &path, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    for _ in 0..100 {
        let (status, body) = w
            .call(
                Some(&admin),
                "POST",
                &path,
                Some(json!({"after": "1d", "event": ev})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            &path,
            Some(json!({"after": "1d", "event": ev})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let rival = other_team(&w, &admin).await;
    for (method, p) in [
        ("GET", path.clone()),
        ("POST", path.clone()),
        ("DELETE", format!("{path}/tmr_x")),
    ] {
        let (status, _) = w
            .call(
                Some(&rival),
                method,
                &p,
                Some(json!({"after": 5, "event": ev})),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {p}");
    }
    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("{path}/tmr_x"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.stop().await;
}

#[tokio::test]
async fn subscriptions_are_added_and_removed_by_the_team_alone() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let rival = other_team(&w, &admin).await;
    let first = create_sandbox(&w, &admin).await;
    let second = create_sandbox(&w, &admin).await;
    let theirs = create_sandbox(&w, &rival).await;
    let (hook, secret) = github_hook(
        &w,
        &admin,
        json!([{"sandbox": first, "repository": "acme/app", "pull_request": 7, "events": ["check_suite"]}]),
    )
    .await;
    let subs = format!("/v1/hooks/{hook}/subscriptions");
    let second_sub = json!({"sandbox": second, "repository": "acme/app", "pull_request": 8, "events": ["check_suite"]});
    let (status, shown) = w
        .call(Some(&admin), "POST", &subs, Some(second_sub.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{shown}");
    assert_eq!(shown["subscriptions"][1]["id"], 1, "{shown}");

    let body = check_suite("acme/app", 8);
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "check_suite", "p8-1", &body),
        &body,
    )
    .await;
    assert_eq!(
        (status, answer["delivered"].clone()),
        (StatusCode::ACCEPTED, json!(1))
    );
    assert_eq!(inbox(&w, &admin, &second).await.len(), 1);
    assert!(inbox(&w, &admin, &first).await.is_empty());

    // Another team can neither add to the hook nor be added to it.
    let (status, _) = w
        .call(Some(&rival), "POST", &subs, Some(second_sub.clone()))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(Some(&rival), "DELETE", &format!("{subs}/1"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(
            Some(&admin),
            "POST",
            &subs,
            Some(json!({"sandbox": theirs, "repository": "acme/app", "events": ["push"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(
            Some(&admin),
            "POST",
            &subs,
            Some(json!({"sandbox": second, "events": ["push"]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a GitHub subscription names its repository"
    );

    // Removed, the route is gone: the next delivery reaches nobody.
    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("{subs}/1"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for missing in ["1", "x"] {
        let (status, _) = w
            .call(Some(&admin), "DELETE", &format!("{subs}/{missing}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
    let (status, answer) = deliver(
        &w,
        &hook,
        &github_headers(&secret, "check_suite", "p8-2", &body),
        &body,
    )
    .await;
    assert_eq!(
        (status, answer["delivered"].clone()),
        (StatusCode::OK, json!(0))
    );
    assert_eq!(inbox(&w, &admin, &second).await.len(), 1);
    w.stop().await;
}
