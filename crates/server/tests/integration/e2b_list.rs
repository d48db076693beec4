//! E2B's sandbox listing, in process over the fake runtime: order by start
//! time, `startedAfter`, the template filter (snapshot-started sandboxes
//! included), pages that hold while sandboxes change state or end between
//! them, and a typed 400 for every bad parameter.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

struct Warren {
    server: InProcess,
    key: String,
    _dir: tempfile::TempDir,
}

/// One answer of the listing: status, `x-next-token`, `x-total-running`
/// and the body.
struct Listed {
    status: StatusCode,
    next: Option<String>,
    running: Option<String>,
    body: Value,
}

impl Listed {
    fn ids(&self) -> Vec<String> {
        self.body
            .as_array()
            .unwrap_or_else(|| panic!("{} {}", self.status, self.body))
            .iter()
            .map(|s| s["sandboxID"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Warren {
    /// A Warren with templates `base` and `other`.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("templates/other");
        std::fs::create_dir_all(other.join("rootfs")).unwrap();
        std::fs::write(
            other.join("template.json"),
            r#"{"name":"other","status":"ready","size_bytes":0,"recipe":"base"}"#,
        )
        .unwrap();
        let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
            .await
            .unwrap();
        let key = server.admin_key.clone().unwrap();
        Self {
            server,
            key,
            _dir: dir,
        }
    }

    /// `method path` as the E2B SDK sends it (`X-API-KEY`).
    async fn e2b(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", &self.key);
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.server.send(req).await
    }

    async fn list(&self, query: &str) -> Listed {
        let req = Request::get(format!("/v2/sandboxes?{query}"))
            .header("x-api-key", &self.key)
            .body(Body::empty())
            .unwrap();
        let resp = self.server.api.clone().oneshot(req).await.unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (next, running) = (header("x-next-token"), header("x-total-running"));
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Listed {
            status,
            next,
            running,
            body: serde_json::from_slice(&bytes).unwrap(),
        }
    }

    /// Every id of the listing `query`, page by page of `limit`.
    async fn walk(&self, query: &str, limit: usize) -> Vec<String> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = format!("{query}&limit={limit}");
            if let Some(t) = &token {
                q.push_str(&format!("&nextToken={t}"));
            }
            let page = self.list(&q).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            assert!(page.ids().len() <= limit);
            ids.extend(page.ids());
            match page.next {
                Some(t) => token = Some(t),
                None => return ids,
            }
        }
    }

    /// A sandbox of `template` (a template or snapshot name), then ten
    /// seconds pass.
    async fn create(&self, template: &str) -> String {
        let (status, body) = self
            .e2b(
                "POST",
                "/v2/sandboxes",
                Some(json!({"templateID": template, "metadata": {"suite": "list"}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.server.clock.advance(time::Duration::seconds(10));
        body["sandboxID"].as_str().unwrap().to_owned()
    }
}

fn ids(v: &[&String]) -> Vec<String> {
    v.iter().map(|s| (*s).clone()).collect()
}

#[tokio::test]
async fn e2b_listing_orders_filters_by_start_and_template_and_pages_stably() {
    let w = Warren::start().await;
    let a = w.create("base").await;
    let b = w.create("other").await;
    let c = w.create("base").await;
    let (status, snap) = w
        .e2b(
            "POST",
            &format!("/sandboxes/{a}/snapshots"),
            Some(json!({"name": "warm"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{snap}");
    let d = w.create("warm").await;

    // Newest first unless asked otherwise, as E2B's spec says.
    let all = w.list("").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.ids(), ids(&[&d, &c, &b, &a]));
    assert_eq!(all.running.as_deref(), Some("4"));
    assert_eq!(w.list("order=desc").await.ids(), all.ids());
    assert_eq!(w.list("order=asc").await.ids(), ids(&[&a, &b, &c, &d]));

    // `startedAfter` is inclusive, in any offset.
    let started_b = all.body[2]["startedAt"].as_str().unwrap().to_owned();
    let at_b =
        time::OffsetDateTime::parse(&started_b, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let encode = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let q = format!("order=asc&startedAfter={}", encode(&started_b));
    assert_eq!(w.list(&q).await.ids(), ids(&[&b, &c, &d]));
    let later = (at_b + time::Duration::nanoseconds(1))
        .to_offset(time::macros::offset!(+05:30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let q = format!("order=asc&startedAfter={}", encode(&later));
    assert_eq!(w.list(&q).await.ids(), ids(&[&c, &d]));

    // The template filter: the template a sandbox runs on, which for one
    // started from a snapshot is the snapshot's template.
    assert_eq!(
        w.list("template=base&order=asc").await.ids(),
        ids(&[&a, &c, &d])
    );
    assert_eq!(w.list("template=other").await.ids(), ids(&[&b]));
    assert_eq!(all.body[0]["templateID"], "base", "{}", all.body);
    assert!(w.list("template=nosuch").await.ids().is_empty());
    assert!(w.list("template=warm").await.ids().is_empty());
    let (status, versions) = w.e2b("GET", "/v1/templates/base", None).await;
    assert_eq!(status, StatusCode::OK, "{versions}");
    let version = versions["versions"][0]["version"].as_str().unwrap();
    let q = format!("template=base%40{version}&order=asc");
    assert_eq!(w.list(&q).await.ids(), ids(&[&a, &c, &d]));
    let unknown = "0".repeat(version.len());
    if unknown != version {
        let q = format!("template=base%40{unknown}");
        assert!(w.list(&q).await.ids().is_empty());
    }
    assert_eq!(
        w.list("template=base%3Alatest&order=asc").await.ids(),
        ids(&[&a, &c, &d])
    );
    assert!(w.list("template=base%3Anosuch").await.ids().is_empty());
    let filtered = w
        .list("template=other&startedAfter=2000-01-01T00%3A00%3A00Z")
        .await;
    assert_eq!(filtered.ids(), ids(&[&b]));
    assert_eq!(filtered.running.as_deref(), Some("1"));

    // Pages: the cursor holds while its own sandbox ends and the next one
    // pauses; nothing is skipped or listed twice.
    let first = w.list("order=asc&limit=2").await;
    assert_eq!(first.ids(), ids(&[&a, &b]));
    let token = first.next.clone().expect("more follow");
    let (status, _) = w.e2b("DELETE", &format!("/sandboxes/{b}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = w.e2b("POST", &format!("/sandboxes/{c}/pause"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let second = w
        .list(&format!("order=asc&limit=2&nextToken={token}"))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.ids(), ids(&[&c, &d]));
    assert_eq!(second.body[0]["state"], "paused");
    assert_eq!(second.next, None);
    assert_eq!(second.running.as_deref(), Some("2"));

    // Walks a page at a time in either order, across running and paused.
    assert_eq!(w.walk("order=desc", 1).await, ids(&[&d, &c, &a]));
    assert_eq!(w.walk("order=asc", 2).await, ids(&[&a, &c, &d]));
    assert_eq!(w.walk("state=paused", 1).await, ids(&[&c]));
    let paused = w.list("state=paused").await;
    assert_eq!(paused.running, None, "no running ones asked for");

    // A sandbox resumed between pages of `state=running` is listed once.
    let first = w.list("state=running&order=asc&limit=1").await;
    assert_eq!(first.ids(), ids(&[&a]));
    let (status, body) = w
        .e2b(
            "POST",
            &format!("/sandboxes/{c}/connect"),
            Some(json!({"timeout": 60})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = first.next.expect("more follow");
    let rest = w
        .list(&format!(
            "state=running&order=asc&limit=5&nextToken={token}"
        ))
        .await;
    assert_eq!(rest.ids(), ids(&[&c, &d]));

    // Another team's listing holds none of it.
    let (status, team) = w
        .server
        .call(
            Some(&w.key),
            "POST",
            "/v1/teams",
            Some(json!({"name": "rivals", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let rival = Warren {
        key: team["key"]["secret"].as_str().unwrap().to_owned(),
        ..w
    };
    let theirs = rival.list("template=base").await;
    assert_eq!(theirs.body, json!([]));
    rival.server.stop().await;
}

#[tokio::test]
async fn bad_e2b_listing_parameters_are_typed_400s() {
    let w = Warren::start().await;
    w.create("base").await;
    for query in [
        "order=newest",
        "order=ASC",
        "order=",
        "startedAfter=yesterday",
        "startedAfter=2026-01-01T00%3A00%3A00",
        "startedAfter=2026-13-01T00%3A00%3A00Z",
        "template=",
        "template=a%2Fb",
        "template=base%3A",
        "template=base%40",
        "nextToken=sbx00000000000000000",
        "nextToken=12x.sbx",
        "limit=0",
        "limit=101",
        "state=asleep",
        "startedBefore=2026-01-01T00%3A00%3A00Z",
    ] {
        let listed = w.list(query).await;
        assert_eq!(
            listed.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            listed.body
        );
        assert_eq!(listed.body["code"], 400, "{query}: {}", listed.body);
        let message = listed.body["message"].as_str().unwrap();
        let key = query.split('=').next().unwrap();
        assert!(message.contains(key), "{query}: {message}");
    }
    w.server.stop().await;
}
