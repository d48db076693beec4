//! The whole API, driven in process over the fake runtime (no root, no
//! sockets): who may call what (401, 403, 404 across teams), the error
//! bodies of both surfaces, request validation, and a sandbox's life
//! through the real handlers and services.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{Request, StatusCode};
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

/// One in-process Warren and the directory it lives in.
struct Warren {
    server: InProcess,
    _dir: tempfile::TempDir,
}

impl Warren {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
            .await
            .unwrap();
        Self { server, _dir: dir }
    }

    fn admin(&self) -> String {
        self.server.admin_key.clone().unwrap()
    }

    /// `method path` with `key` (as a Bearer) and a JSON body.
    async fn call(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.server.call(key, method, path, body).await
    }

    /// A new key of the admin's team with `role`.
    async fn key(&self, role: &str) -> String {
        let (status, body) = self
            .call(
                Some(&self.admin()),
                "POST",
                "/v1/keys",
                Some(json!({"name": role, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().unwrap().to_owned()
    }

    /// The admin key of a new team.
    async fn other_team(&self) -> String {
        let (status, body) = self
            .call(
                Some(&self.admin()),
                "POST",
                "/v1/teams",
                Some(json!({"name": "rivals", "admin": "eve"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["key"]["secret"].as_str().unwrap().to_owned()
    }

    async fn create(&self, key: &str) -> String {
        let (status, body) = self
            .call(Some(key), "POST", "/v1/sandboxes", Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

fn assert_native_error(body: &Value, code: &str) {
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn a_sandbox_lives_through_the_real_handlers() {
    let w = Warren::start().await;
    let admin = w.admin();
    let id = w.create(&admin).await;
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"cmd": ["echo", "hello"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The answer streams one JSON event a line; output is base64.
    let events: Vec<Value> = body
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stdout: Vec<u8> = events
        .iter()
        .filter(|e| e["type"] == "stdout")
        .flat_map(|e| BASE64.decode(e["data"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(stdout, b"hello\n");
    assert_eq!(events.last().unwrap()["exit_code"], 0, "{body}");

    let (status, list) = w.call(Some(&admin), "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["sandboxes"][0]["id"], id.as_str(), "{list}");

    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_native_error(&body, "not_found");
    w.server.stop().await;
}

#[tokio::test]
async fn credentials_are_checked_before_anything_else() {
    let w = Warren::start().await;
    let id = w.create(&w.admin()).await;
    let member = w.key("member").await;
    let revoked = w.key("member").await;
    let revoked_id = revoked.split('_').nth(1).unwrap();
    let (status, _) = w
        .call(
            Some(&w.admin()),
            "DELETE",
            &format!("/v1/keys/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let forged = format!("{}x", &member[..member.len() - 1]);
    for (who, key) in [
        ("no key", None),
        ("a malformed key", Some("wrn_nope")),
        ("a forged secret", Some(forged.as_str())),
        ("a revoked key", Some(revoked.as_str())),
    ] {
        for (method, path) in [
            ("GET", "/v1/sandboxes".to_owned()),
            ("GET", format!("/v1/sandboxes/{id}")),
            ("POST", format!("/v1/sandboxes/{id}/exec")),
            ("GET", "/v1/keys".to_owned()),
            ("GET", "/v1/audit/entries".to_owned()),
        ] {
            let (status, body) = w.call(key, method, &path, Some(json!({}))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{who}: {method} {path}");
            assert_native_error(&body, "unauthenticated");
        }
    }
    // A sandbox token is for the sandbox listener only.
    let (status, _) = w
        .call(Some("wst_abc.def"), "GET", "/v1/sandboxes", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    w.server.stop().await;
}

/// `e2b: true` hands out a key spelled `e2b_` + lowercase hex (what E2B's
/// SDKs accept): the same key on both surfaces, with its role, and revoked
/// like any other.
#[tokio::test]
async fn an_e2b_spelled_key_is_a_real_key_on_both_surfaces() {
    let w = Warren::start().await;
    let admin = w.admin();
    let mint = |role: &'static str| {
        w.call(
            Some(&admin),
            "POST",
            "/v1/keys",
            Some(json!({"name": "sdk", "role": role, "e2b": true})),
        )
    };
    let (status, body) = mint("member").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["secret"].as_str().unwrap().to_owned();
    let id = body["id"].as_str().unwrap().to_owned();
    let hex = key.strip_prefix("e2b_").expect("E2B's prefix");
    assert!(
        !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{key}"
    );
    let e2b_list = |key: String| {
        let req = Request::get("/v2/sandboxes")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap();
        w.server.send(req)
    };

    let (status, me) = w.call(Some(&key), "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        (me["key"].as_str(), me["role"].as_str()),
        (Some(id.as_str()), Some("member"))
    );
    let sandbox = w.create(&key).await;
    let (status, listed) = e2b_list(key.clone()).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["sandboxID"], sandbox.as_str(), "{listed}");

    // Its role binds it as any key's does.
    let (_, body) = mint("viewer").await;
    let viewer = body["secret"].as_str().unwrap().to_owned();
    let (status, _) = w
        .call(Some(&viewer), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Revoked, it opens nothing on either surface, in either spelling.
    let (status, _) = w
        .call(Some(&w.admin()), "DELETE", &format!("/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w.call(Some(&key), "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = e2b_list(key.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], 401, "{body}");
    let raw = String::from_utf8(hex::decode(hex).unwrap()).unwrap();
    assert!(raw.starts_with(&format!("wrn_{id}_")), "{raw}");
    let (status, _) = w.call(Some(&raw), "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    w.server.stop().await;
}

#[tokio::test]
async fn roles_decide_what_a_key_may_do() {
    let w = Warren::start().await;
    let id = w.create(&w.admin()).await;
    let viewer = w.key("viewer").await;
    let member = w.key("member").await;
    let cases = [
        (&viewer, "GET", "/v1/sandboxes".to_owned(), StatusCode::OK),
        (
            &viewer,
            "GET",
            format!("/v1/sandboxes/{id}"),
            StatusCode::OK,
        ),
        (
            &viewer,
            "POST",
            "/v1/sandboxes".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (
            &viewer,
            "POST",
            format!("/v1/sandboxes/{id}/exec"),
            StatusCode::FORBIDDEN,
        ),
        (
            &viewer,
            "DELETE",
            format!("/v1/sandboxes/{id}"),
            StatusCode::FORBIDDEN,
        ),
        (&member, "GET", "/v1/keys".to_owned(), StatusCode::FORBIDDEN),
        (
            &member,
            "GET",
            "/v1/teams".to_owned(),
            StatusCode::FORBIDDEN,
        ),
        (&member, "GET", "/v1/whoami".to_owned(), StatusCode::OK),
        (
            &member,
            "POST",
            "/v1/secrets".to_owned(),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (key, method, path, want) in cases {
        let body = (method != "GET").then(|| json!({"name": "x", "value": "y"}));
        let (status, answer) = w.call(Some(key), method, &path, body).await;
        assert_eq!(status, want, "{method} {path}: {answer}");
        if want == StatusCode::FORBIDDEN {
            assert_native_error(&answer, "permission_denied");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(':'), "names the scope it lacks: {message}");
        }
    }
    w.server.stop().await;
}

#[tokio::test]
async fn another_teams_sandbox_is_not_found_on_every_route() {
    let w = Warren::start().await;
    let id = w.create(&w.admin()).await;
    let rival = w.other_team().await;
    let routes = [
        ("GET", format!("/v1/sandboxes/{id}")),
        ("DELETE", format!("/v1/sandboxes/{id}")),
        ("POST", format!("/v1/sandboxes/{id}/exec")),
        (
            "GET",
            format!("/v1/sandboxes/{id}/files?path=/etc/hostname"),
        ),
        ("POST", format!("/v1/sandboxes/{id}/timeout")),
        ("POST", format!("/v1/sandboxes/{id}/pause")),
        ("POST", format!("/v1/sandboxes/{id}/resume")),
        ("POST", format!("/v1/sandboxes/{id}/fork")),
        ("GET", format!("/v1/sandboxes/{id}/snapshots")),
        ("POST", format!("/v1/sandboxes/{id}/snapshots")),
        ("POST", format!("/v1/sandboxes/{id}/rollback")),
        ("GET", format!("/v1/sandboxes/{id}/timeline")),
        ("PUT", format!("/v1/sandboxes/{id}/network")),
        ("GET", format!("/v1/sandboxes/{id}/network/events")),
        ("PUT", format!("/v1/sandboxes/{id}/wake")),
        ("GET", format!("/v1/sandboxes/{id}/events")),
        ("POST", format!("/v1/sandboxes/{id}/events")),
        ("GET", format!("/v1/sandboxes/{id}/timers")),
        ("POST", format!("/v1/sandboxes/{id}/timers")),
    ];
    for (method, path) in &routes {
        let (status, body) = w.call(Some(&rival), method, path, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_native_error(&body, "not_found");
    }
    // The sandbox is untouched and the rival sees none of it.
    let (status, _) = w
        .call(
            Some(&w.admin()),
            "GET",
            &format!("/v1/sandboxes/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = w.call(Some(&rival), "GET", "/v1/sandboxes", None).await;
    assert_eq!(list["sandboxes"], json!([]));
    w.server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_precise_errors_in_each_surfaces_shape() {
    let w = Warren::start().await;
    let admin = w.admin();
    // Native: malformed JSON, unknown fields, wrong types, unknown routes.
    let raw = Request::post("/v1/sandboxes")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let (status, body) = w.server.send(raw).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_native_error(&body, "invalid_argument");
    for bad in [
        json!({"cpus": "two"}),
        json!({"no_such_field": 1}),
        json!({"timeout_s": 0}),
        json!({"memory_mb": 1}),
    ] {
        let (status, body) = w
            .call(Some(&admin), "POST", "/v1/sandboxes", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_native_error(&body, "invalid_argument");
    }
    let big = json!({"metadata": {"k": "x".repeat(2 * 1024 * 1024)}});
    let (status, _) = w
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(big))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = w.call(Some(&admin), "GET", "/v1/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_native_error(&body, "not_found");

    // E2B: `{code: <number>, message}`, its own key header.
    let req = Request::post("/sandboxes")
        .header("x-api-key", &admin)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"templateID": "base", "timeout": -5}).to_string(),
        ))
        .unwrap();
    let (status, body) = w.server.send(req).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 400, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let req = Request::get("/sandboxes")
        .header("x-api-key", "wrn_nope")
        .body(Body::empty())
        .unwrap();
    let (status, body) = w.server.send(req).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 401, "{body}");
    w.server.stop().await;
}

#[tokio::test]
async fn every_documented_route_is_served_and_guarded() {
    let w = Warren::start().await;
    let (status, doc) = w.call(None, "GET", "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "{}", paths.len());
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "sbx0000000000000000x")
            .replace("{snapshot}", "snp0000000000000000x")
            .replace("{name}", "n")
            .replace("{team}", "t000000000000")
            .replace("{index}", "0");
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let (status, body) = w.call(None, &method, &concrete, Some(json!({}))).await;
            let open = ["/v1/health", "/v1/openapi.json"].contains(&path.as_str());
            if open {
                assert_eq!(status, StatusCode::OK, "{method} {path}");
            } else if path == warren_server::api::HOOK_DELIVERY {
                // Authenticated by a hook's signature, not a key: an
                // unknown hook is not found.
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
            } else if path == warren_server::api::SESSION {
                // The dashboard's login takes its key in the body; without
                // a cookie there is no session to read, and none to end.
                let want = match method.as_str() {
                    "POST" => StatusCode::BAD_REQUEST,
                    "GET" => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::NO_CONTENT,
                };
                assert_eq!(status, want, "{method} {path}: {body}");
            } else {
                // Served (not the fallback's "no such endpoint") and closed
                // to a caller without a key.
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            }
        }
    }
    w.server.stop().await;
}

/// Polls `GET path` with `key` until it answers `want` (the reaper runs
/// every half second); panics after ten seconds.
async fn until_status(w: &Warren, key: &str, path: &str, want: StatusCode) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = w.call(Some(key), "GET", path, None).await;
        if status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} still answers {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn lifetimes_and_keys_expire_when_the_clock_says_so() {
    let w = Warren::start().await;
    let admin = w.admin();
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/sandboxes",
            Some(json!({"timeout_s": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/keys",
            Some(json!({"name": "brief", "expires_in_s": 120})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let brief = body["secret"].as_str().unwrap().to_owned();

    // Time stands still: nothing expires however long the test takes.
    let path = format!("/v1/sandboxes/{id}");
    assert_eq!(
        w.call(Some(&brief), "GET", &path, None).await.0,
        StatusCode::OK
    );

    w.server.clock.advance(time::Duration::seconds(61));
    until_status(&w, &admin, &path, StatusCode::NOT_FOUND).await;
    let (status, _) = w.call(Some(&brief), "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, StatusCode::OK, "the key has a minute left");

    w.server.clock.advance(time::Duration::seconds(60));
    let (status, body) = w.call(Some(&brief), "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    w.server.stop().await;
}

#[tokio::test]
async fn events_are_numbered_kept_in_order_deduplicated_and_audited_without_payload() {
    let w = Warren::start().await;
    let admin = w.admin();
    let id = w.create(&admin).await;
    let path = format!("/v1/sandboxes/{id}/events");
    let send = |body: Value| {
        let path = path.clone();
        let admin = admin.clone();
        let w = &w;
        async move { w.call(Some(&admin), "POST", &path, Some(body)).await }
    };
    let secret_payload = json!({"conclusion": "failure", "token": "do-not-log-me"});
    let (status, body) = send(json!({"type": "ci.finished", "source": "github", "data": secret_payload, "dedupe_key": "delivery-1"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body, json!({"seq": 1, "duplicate": false}));
    let (_, body) = send(json!({"type": "review.comment", "source": "github"})).await;
    assert_eq!(body["seq"], 2);
    // The sender's retry finds its first event.
    let (status, body) = send(
        json!({"type": "ci.finished", "source": "github", "data": {}, "dedupe_key": "delivery-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body, json!({"seq": 1, "duplicate": true}));

    let (status, list) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let events = list["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "ci.finished");
    assert_eq!(events[0]["data"], secret_payload);
    assert_eq!(events[0]["delivery"], "pending");
    let (_, page) = w
        .call(
            Some(&admin),
            "GET",
            &format!("{path}?after=1&limit=1"),
            None,
        )
        .await;
    assert_eq!(page["events"][0]["seq"], 2);
    assert_eq!(page["next_after"], 2);

    // The audit log has its digest, never its payload.
    let (_, audit) = w
        .call(
            Some(&admin),
            "GET",
            "/v1/audit/entries?action=event.receive",
            None,
        )
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("ci.finished") && text.contains("sha256"),
        "{text}"
    );
    assert!(
        !text.contains("do-not-log-me"),
        "payload in the audit log: {text}"
    );
    w.server.stop().await;
}

#[tokio::test]
async fn bad_events_and_strangers_are_refused() {
    let w = Warren::start().await;
    let admin = w.admin();
    let id = w.create(&admin).await;
    let path = format!("/v1/sandboxes/{id}/events");
    for bad in [
        json!({"type": "", "source": "x"}),
        json!({"type": "has space", "source": "x"}),
        json!({"type": "t", "source": ""}),
        json!({"type": "t", "source": "line\nbreak"}),
        json!({"type": "t", "source": "x", "dedupe_key": ""}),
        json!({"type": "t", "source": "x", "unknown": 1}),
        json!({"type": "t", "source": "x", "data": "y".repeat(300 * 1024)}),
    ] {
        let (status, body) = w.call(Some(&admin), "POST", &path, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_native_error(&body, "invalid_argument");
    }
    for query in ["?limit=0", "?limit=5000", "?after=-1", "?cursor=3"] {
        let (status, _) = w
            .call(Some(&admin), "GET", &format!("{path}{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    // Another team's key finds no such sandbox; a viewer reads but cannot send.
    let rival = w.other_team().await;
    let ok = json!({"type": "t", "source": "x"});
    let (status, _) = w.call(Some(&rival), "POST", &path, Some(ok.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.call(Some(&rival), "GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let viewer = w.key("viewer").await;
    let (status, body) = w.call(Some(&viewer), "POST", &path, Some(ok.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("events:send"),
        "{body}"
    );
    let (status, _) = w.call(Some(&viewer), "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK);
    // Nothing was added by the refused sends.
    let (_, list) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(list["events"], json!([]));
    // A killed sandbox takes no more events.
    w.call(Some(&admin), "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    let (status, _) = w.call(Some(&admin), "POST", &path, Some(ok)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.server.stop().await;
}
