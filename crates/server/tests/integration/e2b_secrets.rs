//! E2B's Secrets API, in process over the fake runtime: create, list,
//! get, update and delete on Warren's team secrets, with the native
//! routes' scopes and audit entries; another team's secret is not found,
//! bad names are 400s, and no answer ever carries a value.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

const VALUE: &str = "sk-live-do-not-show-me";
const NEW_VALUE: &str = "sk-live-rotated-never-shown";

/// `method path` as the E2B SDK sends it: status, `x-next-token`, body.
async fn e2b(
    w: &InProcess,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = w.api.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let next = resp
        .headers()
        .get("x-next-token")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(VALUE) && !text.contains(NEW_VALUE),
        "{method} {path} answered a value: {text}"
    );
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, next, body)
}

async fn key(w: &InProcess, admin: &str, role: &str) -> String {
    let (status, body) = w
        .call(
            Some(admin),
            "POST",
            "/v1/keys",
            Some(json!({"name": role, "role": role})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn e2b_secrets_are_team_secrets_written_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();

    // Create: 201, the canonical name, version 1, metadata empty.
    let (status, _, created) = e2b(
        &w,
        &admin,
        "POST",
        "/secrets",
        Some(json!({"name": "OpenAI-Key", "value": VALUE})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secretID"], "sec_openai-key");
    assert_eq!(created["name"], "openai-key");
    assert_eq!(created["currentVersion"], 1);
    assert_eq!(created["metadata"], json!({}));
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());
    let (status, _, body) = e2b(
        &w,
        &admin,
        "POST",
        "/secrets",
        Some(json!({"name": "openai-key", "value": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], 409);

    // It is the native secret: listed there, by name only.
    let (status, native) = w.call(Some(&admin), "GET", "/v1/secrets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(native["secrets"][0]["name"], "openai-key", "{native}");

    // Get by id or by name.
    for path in ["/secrets/sec_openai-key", "/secrets/openai-key"] {
        let (status, _, got) = e2b(&w, &admin, "GET", path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {got}");
        assert_eq!(got["secretID"], "sec_openai-key");
    }

    // Update: a new version, the creation time kept.
    let (status, _, updated) = e2b(
        &w,
        &admin,
        "POST",
        "/secrets/sec_openai-key",
        Some(json!({"value": NEW_VALUE})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["currentVersion"], 2);
    assert_eq!(updated["createdAt"], created["createdAt"]);

    // A sandbox's header transform naming the secret is an injection of it;
    // one naming a secret the team lacks is a 400.
    let rules = |name: &str| {
        json!({"templateID": "base", "network": {"allowOut": ["api.openai.com"], "rules": {
            "api.openai.com": [{"transform": {"headers": {
                "Authorization": format!("Bearer ${{e2b.secrets.{name}}}")
            }}}]
        }}})
    };
    let (status, _, sbx) = e2b(
        &w,
        &admin,
        "POST",
        "/v2/sandboxes",
        Some(rules("openai-key")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sbx}");
    let id = sbx["sandboxID"].as_str().unwrap();
    let (status, native) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{native}");
    let inject = &native["network"]["inject"][0];
    assert_eq!(
        (&inject["secret"], &inject["header"], &inject["format"]),
        (
            &json!("openai-key"),
            &json!("Authorization"),
            &json!("Bearer {value}")
        ),
        "{native}"
    );
    let (status, _, body) = e2b(&w, &admin, "POST", "/v2/sandboxes", Some(rules("nosuch"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Pages by name; the token survives its secret's deletion.
    for name in ["b-one", "c-two", "d-three"] {
        let (status, _, body) = e2b(
            &w,
            &admin,
            "POST",
            "/secrets",
            Some(json!({"name": name, "value": VALUE, "metadata": {}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, next, page) = e2b(&w, &admin, "GET", "/secrets?limit=2", None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page), ["b-one", "c-two"]);
    let next = next.expect("more follow");
    let (status, _, _) = e2b(&w, &admin, "DELETE", "/secrets/c-two", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, more, page) = e2b(
        &w,
        &admin,
        "GET",
        &format!("/secrets?limit=2&nextToken={next}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(names(&page), ["d-three", "openai-key"]);
    assert_eq!(more, None);

    // Scopes as on /v1/secrets: members read names, only managers write;
    // viewers see nothing.
    let member = key(&w, &admin, "member").await;
    let viewer = key(&w, &admin, "viewer").await;
    let (status, _, listed) = e2b(&w, &member, "GET", "/secrets", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 3);
    for (key, method, path, body) in [
        (
            &member,
            "POST",
            "/secrets",
            Some(json!({"name": "m", "value": VALUE})),
        ),
        (
            &member,
            "POST",
            "/secrets/openai-key",
            Some(json!({"value": VALUE})),
        ),
        (&member, "DELETE", "/secrets/openai-key", None),
        (&viewer, "GET", "/secrets", None),
        (&viewer, "GET", "/secrets/openai-key", None),
    ] {
        let (status, _, body) = e2b(&w, key, method, path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert_eq!(body["code"], 403, "{body}");
    }

    // Another team: not found, whether by id or name, and its own list is
    // empty; nothing of ours changes.
    let (status, team) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let rival = team["key"]["secret"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        ("GET", "/secrets/sec_openai-key", None),
        ("GET", "/secrets/openai-key", None),
        (
            "POST",
            "/secrets/sec_openai-key",
            Some(json!({"value": "theirs"})),
        ),
        ("DELETE", "/secrets/openai-key", None),
    ] {
        let (status, _, body) = e2b(&w, &rival, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["code"], 404, "{body}");
    }
    let (_, _, theirs) = e2b(&w, &rival, "GET", "/secrets", None).await;
    assert_eq!(theirs, json!([]));
    let (_, _, ours) = e2b(&w, &admin, "GET", "/secrets/openai-key", None).await;
    assert_eq!(ours["currentVersion"], 2, "{ours}");

    // Bad names, values and fields are 400s; unknown secrets 404s.
    for body in [
        json!({"name": "", "value": VALUE}),
        json!({"name": "has.dot", "value": VALUE}),
        json!({"name": "a{b}", "value": VALUE}),
        json!({"name": "sec_mine", "value": VALUE}),
        json!({"name": "x".repeat(64), "value": VALUE}),
        json!({"name": "ok", "value": ""}),
        json!({"name": "ok", "value": "line\nbreak"}),
        json!({"name": "ok", "value": VALUE, "metadata": {"team": "ml"}}),
        json!({"name": "ok"}),
    ] {
        let (status, _, answer) = e2b(&w, &admin, "POST", "/secrets", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["code"], 400, "{answer}");
    }
    for query in ["limit=0", "nextToken=zzz", "colour=red"] {
        let (status, _, answer) = e2b(&w, &admin, "GET", &format!("/secrets?{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
    }
    for path in [
        "/secrets/nosuch",
        "/secrets/sec_nosuch",
        "/secrets/has%20space",
    ] {
        let (status, _, _) = e2b(&w, &admin, "GET", path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _, _) = e2b(&w, &admin, "DELETE", "/secrets/c-two", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted once");

    // The audit log has the native entries, with names and never values.
    let (status, audit) = w
        .call(Some(&admin), "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let text = audit.to_string();
    assert!(!text.contains(VALUE) && !text.contains(NEW_VALUE), "{text}");
    let actions: Vec<(String, String)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| &line["entry"])
        .filter(|e| e["action"].as_str().unwrap().starts_with("secret."))
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for want in [
        ("secret.set", "openai-key"),
        ("secret.set", "b-one"),
        ("secret.delete", "c-two"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, t)| (a.as_str(), t.as_str()) == want),
            "{want:?} in {actions:?}"
        );
    }
    let sets = actions
        .iter()
        .filter(|(a, t)| a == "secret.set" && t == "openai-key");
    assert_eq!(sets.count(), 2, "create and update: {actions:?}");
    w.stop().await;
}
