//! A sandbox token is honoured only with its sandbox's proof of origin,
//! which the runtime gives with each instance (`warren_runtime::Origin`):
//! driven in process over the fake runtime, whose instances' traffic comes
//! from 127.0.0.1, on the sandbox listener's router.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

async fn send(router: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

/// `GET path` on the sandbox listener with `token`, from `peer`.
async fn from(server: &InProcess, token: &str, path: &str, peer: &str) -> StatusCode {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut req = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    send(&server.sandbox_api, req).await.0
}

#[tokio::test]
async fn a_sandbox_token_counts_only_from_its_sandboxes_origin() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = server.admin_key.clone().unwrap();
    let create = Request::post("/v1/sandboxes")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({"template": "base"}).to_string()))
        .unwrap();
    let (status, body) = send(&server.api, create).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token the daemon wrote into the sandbox.
    let read = Request::get(format!("/v1/sandboxes/{id}/files?path=/run/warren/token"))
        .header("authorization", format!("Bearer {admin}"))
        .body(Body::empty())
        .unwrap();
    let (status, token) = send(&server.api, read).await;
    assert_eq!(status, StatusCode::OK);
    let token = String::from_utf8(token).unwrap().trim().to_owned();
    assert!(token.starts_with("wst_"), "{token}");

    let path = format!("/v1/sandboxes/{id}");
    assert_eq!(
        from(&server, &token, &path, "127.0.0.1:40000").await,
        StatusCode::OK
    );
    for elsewhere in ["10.77.0.2:40000", "127.0.0.2:40000"] {
        assert_eq!(
            from(&server, &token, &path, elsewhere).await,
            StatusCode::UNAUTHORIZED,
            "{elsewhere}"
        );
    }
    server.stop().await;
}
