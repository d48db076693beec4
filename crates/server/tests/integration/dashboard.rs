//! The dashboard in process, over the fake runtime: the page and its
//! headers, the exchange of a key for a session cookie and the cookie
//! acting as that key (CSRF, revocation, expiry, logout), and the live
//! sandbox list (`GET /v1/sandboxes/watch`).

use axum::body::Body;
use http::{HeaderMap, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_server::testing::InProcess;

struct Warren {
    server: InProcess,
    _dir: tempfile::TempDir,
}

/// A request to the main API: `method path` with extra headers and an
/// optional raw body (sent as JSON).
fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap()
}

/// A logged-in page: the cookie to send and the CSRF token.
struct Login {
    cookie: String,
    csrf: String,
    key: String,
}

impl Warren {
    async fn start() -> Self {
        let (server, dir) = super::fixtures::start().await;
        Self { server, _dir: dir }
    }

    fn admin(&self) -> String {
        self.server.admin_key.clone().unwrap()
    }

    async fn raw(&self, req: Request<Body>) -> Response<Body> {
        self.server.api.clone().oneshot(req).await.unwrap()
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let resp = self.raw(req).await;
        let (parts, body) = resp.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (parts.status, parts.headers, value)
    }

    /// The audit log's entries of `action`.
    async fn audit(&self, action: &str) -> Vec<Value> {
        let path = format!("/v1/audit/entries?action={action}");
        let (status, body) = self
            .server
            .call(Some(&self.admin()), "GET", &path, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["entries"].as_array().unwrap().clone()
    }

    /// Opens `GET /v1/sandboxes/watch` with one credential header.
    async fn watch(&self, credential: (&str, &str)) -> Response<Body> {
        self.raw(request("GET", "/v1/sandboxes/watch", &[credential], None))
            .await
    }

    async fn login(&self, key: &str) -> Login {
        let body = json!({ "api_key": key }).to_string();
        let (status, headers, answer) = self
            .send(request("POST", "/v1/session", &[], Some(&body)))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let set = headers[header::SET_COOKIE].to_str().unwrap();
        let cookie = set.split(';').next().unwrap().to_owned();
        Login {
            cookie,
            csrf: answer["csrf_token"].as_str().unwrap().to_owned(),
            key: answer["key"].as_str().unwrap().to_owned(),
        }
    }

    /// `method path` with the session's cookie, and its CSRF token if
    /// `csrf` says so.
    async fn with_cookie(
        &self,
        login: &Login,
        csrf: bool,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("cookie", login.cookie.as_str())];
        if csrf {
            headers.push(("x-csrf-token", login.csrf.as_str()));
        }
        let (status, _, value) = self.send(request(method, path, &headers, body)).await;
        (status, value)
    }
}

#[tokio::test]
async fn dashboard_page_is_served_from_the_binary_with_a_strict_policy() {
    let w = Warren::start().await;
    let (status, headers, body) = w.send(request("GET", "/", &[], None)).await;
    assert_eq!(status, StatusCode::OK);
    let html = body.as_str().unwrap();
    assert!(html.contains("/assets/app.js"), "{html}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let again = request("GET", "/", &[("if-none-match", &etag)], None);
    assert_eq!(w.raw(again).await.status(), StatusCode::NOT_MODIFIED);

    for (path, kind) in [
        ("/assets/app.js", "text/javascript"),
        ("/assets/app.css", "text/css"),
    ] {
        let (status, headers, _) = w.send(request("GET", path, &[], None)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let content_type = headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    let (status, _, _) = w.send(request("GET", "/assets/nope.js", &[], None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dashboard_login_refuses_bad_keys_and_bad_bodies_without_a_cookie() {
    let w = Warren::start().await;
    // The admin key with its last digit changed.
    let admin = w.admin();
    let (head, last) = admin.split_at(admin.len() - 1);
    let wrong = format!("{head}{}", if last == "0" { "1" } else { "0" });
    let cases = [
        (
            json!({ "api_key": wrong }).to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({ "api_key": "wrn_nope" }).to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            json!({ "api_key": "" }).to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        ("{".to_owned(), StatusCode::BAD_REQUEST),
        ("[]".to_owned(), StatusCode::BAD_REQUEST),
        (json!({ "api_key": 3 }).to_string(), StatusCode::BAD_REQUEST),
        (
            json!({ "api_key": w.admin(), "role": "admin" }).to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "api_key": "x".repeat(2 * 1024 * 1024) }).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (body, expected) in cases {
        let (status, headers, answer) = w
            .send(request("POST", "/v1/session", &[], Some(&body)))
            .await;
        assert_eq!(status, expected, "{answer}");
        assert!(headers.get(header::SET_COOKIE).is_none(), "{answer}");
        assert!(answer["code"].is_string(), "{answer}");
    }
    // A JSON body must say so.
    let plain = Request::builder()
        .method("POST")
        .uri("/v1/session")
        .header("content-type", "text/plain")
        .body(Body::from(json!({ "api_key": w.admin() }).to_string()))
        .unwrap();
    let (status, headers, _) = w.send(plain).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn dashboard_session_acts_as_its_key_and_changes_nothing_without_the_csrf_token() {
    let w = Warren::start().await;
    let body = json!({ "api_key": w.admin() }).to_string();
    let (status, headers, answer) = w
        .send(request("POST", "/v1/session", &[], Some(&body)))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let set = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(set.starts_with("warren_session="), "{set}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert!(answer["expires_at"].is_string(), "{answer}");
    let (_, tls, _) = w
        .send(request(
            "POST",
            "/v1/session",
            &[("x-forwarded-proto", "https")],
            Some(&body),
        ))
        .await;
    assert!(
        tls[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );

    let page = w.login(&w.admin()).await;
    let (status, me) = w.with_cookie(&page, true, "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["role"], "admin");
    assert_eq!(me["key"], page.key.as_str());
    let (status, session) = w.with_cookie(&page, true, "GET", "/v1/session", None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["csrf_token"], page.csrf.as_str());

    // Every call needs the token, reads too: without it, or with another
    // session's, 403 before the route runs.
    for path in ["/v1/whoami", "/v1/sandboxes", "/v1/session"] {
        let (status, refused) = w.with_cookie(&page, false, "GET", path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {refused}");
    }
    let other = w.login(&w.admin()).await;
    let (status, refused) = w
        .with_cookie(&page, false, "POST", "/v1/sandboxes", Some("{}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["code"], "permission_denied");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("X-CSRF-Token")
    );
    let stolen = Login {
        cookie: page.cookie.clone(),
        csrf: other.csrf.clone(),
        key: page.key.clone(),
    };
    let (status, _) = w
        .with_cookie(&stolen, true, "POST", "/v1/sandboxes", Some("{}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, listed) = w
        .with_cookie(&page, true, "GET", "/v1/sandboxes", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["sandboxes"], json!([]), "nothing was created");

    // With it, the session does what its key may.
    let (status, created) = w
        .with_cookie(&page, true, "POST", "/v1/sandboxes", Some("{}"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, _) = w
        .with_cookie(&page, true, "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A key in the header wins over a cookie, and needs no token.
    let admin = format!("Bearer {}", w.admin());
    let bearer = request(
        "POST",
        "/v1/sandboxes",
        &[
            ("authorization", &admin),
            ("cookie", "warren_session=bogus"),
        ],
        Some("{}"),
    );
    let (status, _, created) = w.send(bearer).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    // Logging out needs the token too, then the cookie is dead.
    let (status, _) = w
        .with_cookie(&page, false, "DELETE", "/v1/session", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let headers = [
        ("cookie", page.cookie.as_str()),
        ("x-csrf-token", page.csrf.as_str()),
    ];
    let (status, cleared, _) = w
        .send(request("DELETE", "/v1/session", &headers, None))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        cleared[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with("warren_session=; Max-Age=0")
    );
    let (status, gone) = w.with_cookie(&page, false, "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{gone}");
    // The other session is its own.
    let (status, _) = w.with_cookie(&other, true, "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::OK);

    // Logins and the logout are in the audit log, by the key's user.
    assert_eq!(w.audit("session.open").await.len(), 4);
    let closed = w.audit("session.close").await;
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["entry"]["target"], page.key.as_str());
    let user = format!("user:{}", me["user"].as_str().unwrap());
    assert_eq!(closed[0]["entry"]["actor"][0], user.as_str());
}

#[tokio::test]
async fn dashboard_session_has_its_keys_role_and_ends_with_the_key_or_its_lifetime() {
    let w = Warren::start().await;
    let viewer = w.server.key("viewer").await;
    let page = w.login(&viewer).await;
    let (status, listed) = w
        .with_cookie(&page, true, "GET", "/v1/sandboxes", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let (status, refused) = w
        .with_cookie(&page, true, "POST", "/v1/sandboxes", Some("{}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("viewer"),
        "{refused}"
    );

    // Revoking the key ends its sessions.
    let member = w.server.key("member").await;
    let page = w.login(&member).await;
    let (status, revoked) = w
        .server
        .call(
            Some(&w.admin()),
            "DELETE",
            &format!("/v1/keys/{}", page.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, gone) = w.with_cookie(&page, false, "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{gone}");
    assert!(
        gone["message"].as_str().unwrap().contains("revoked"),
        "{gone}"
    );
    let (status, _) = w
        .with_cookie(&page, false, "GET", "/v1/session", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A session lasts 12 hours.
    let page = w.login(&w.admin()).await;
    w.server.clock.advance(time::Duration::hours(12));
    let (status, expired) = w.with_cookie(&page, false, "GET", "/v1/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{expired}");
    assert!(
        expired["message"].as_str().unwrap().contains("expired"),
        "{expired}"
    );

    // Not on the sandbox listener.
    let body = json!({ "api_key": w.admin() }).to_string();
    let resp = w
        .server
        .sandbox_api
        .clone()
        .oneshot(request("POST", "/v1/session", &[], Some(&body)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// The next event of a server-sent stream (comments skipped): its name and
/// its data.
async fn next_event(body: &mut Body, pending: &mut String) -> (String, Value) {
    loop {
        if let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if name.is_empty() && data.is_empty() {
                continue;
            }
            return (name, serde_json::from_str(&data).unwrap());
        }
        // A guard against a hang, not a timing assertion.
        let frame = tokio::time::timeout(std::time::Duration::from_secs(30), body.frame())
            .await
            .expect("an event within 30 s")
            .expect("the stream goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            pending.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn dashboard_watch_sends_the_teams_list_then_its_changes_only() {
    let w = Warren::start().await;
    let admin = w.admin();
    let (status, before) = w
        .server
        .call(
            Some(&admin),
            "POST",
            "/v1/sandboxes",
            Some(json!({"metadata": {"run": "a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{before}");

    let page = w.login(&admin).await;
    // A browser's EventSource cannot set headers: the token comes in the
    // query. Without it the cookie opens nothing.
    let refused = w.watch(("cookie", &page.cookie)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let path = format!("/v1/sandboxes/watch?csrf_token={}", page.csrf);
    let resp = w
        .raw(request("GET", &path, &[("cookie", &page.cookie)], None))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut pending = String::new();
    // The first event tells the browser to reconnect a second after the
    // stream ends (it does, after `LIFETIME`).
    while !pending.contains("\n\n") {
        let frame = body.frame().await.unwrap().unwrap();
        pending.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    assert!(pending.contains("retry: 1000\n"), "{pending}");
    let (name, list) = next_event(&mut body, &mut pending).await;
    assert_eq!(name, "sandboxes");
    assert_eq!(list["sandboxes"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["sandboxes"][0]["id"], before["id"]);

    let (status, created) = w
        .server
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    loop {
        let (name, sandbox) = next_event(&mut body, &mut pending).await;
        assert_eq!(name, "sandbox", "{sandbox}");
        assert_eq!(sandbox["id"], id.as_str(), "only the new sandbox changed");
        if sandbox["state"] == "running" {
            break;
        }
    }

    // Another team's sandbox is not told; ours, killed, is removed.
    let (rival, _) = super::fixtures::rival_team(&w.server, &admin).await;
    let (status, _) = w
        .server
        .call(Some(&rival), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = w
        .server
        .call(Some(&admin), "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    loop {
        let (name, event) = next_event(&mut body, &mut pending).await;
        assert_eq!(event["id"], id.as_str(), "{name}: {event}");
        if name == "removed" {
            break;
        }
    }
}

#[tokio::test]
async fn dashboard_watches_per_key_are_bounded() {
    let w = Warren::start().await;
    let admin = format!("Bearer {}", w.admin());
    let mut open = Vec::new();
    for _ in 0..8 {
        let resp = w.watch(("authorization", &admin)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        open.push(resp);
    }
    let refused = w.watch(("authorization", &admin)).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    // A viewer may watch (it reads sandboxes); its key has its own count.
    let viewer = format!("Bearer {}", w.server.key("viewer").await);
    let resp = w.watch(("authorization", &viewer)).await;
    assert_eq!(resp.status(), StatusCode::OK);
}
