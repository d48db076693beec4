//! Access grants (E2B's envd and traffic access tokens, Warren's traffic
//! token) are not a fixed function of the sandbox: they die with the key
//! they were handed to, with a rollback and with the sandbox; they open one
//! sandbox and never its forks; and they survive a pause and resume, as
//! E2B's SDKs expect.

use serde_json::{Value, json};
use warren_e2e::Daemon;

/// Answers `ok` on every path.
const SERVER: &str = r#"
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
S(("0.0.0.0", 8000), H).serve_forever()
"#;

/// `POST path` through E2B's API with `key`: the JSON answer, if any
/// (status 2xx).
async fn e2b_post(d: &Daemon, key: &str, path: &str, body: Value) -> Value {
    let resp = d
        .http
        .post(format!("{}{path}", d.url))
        .header("X-API-KEY", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}\n{}", d.log());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// The envd grant `key` is given for `id` by E2B's `GET /sandboxes/{id}`.
async fn envd_grant(d: &Daemon, key: &str, id: &str) -> String {
    let resp = d
        .http
        .get(format!("{}/sandboxes/{id}", d.url))
        .header("X-API-KEY", key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    body["envdAccessToken"].as_str().unwrap().to_owned()
}

/// The status of reading `/etc/hostname` from sandbox `id`'s agent through
/// the E2B proxy with `token`.
async fn agent_status(d: &Daemon, id: &str, token: &str) -> u16 {
    d.http
        .get(format!("{}/files?path=/etc/hostname", d.url))
        .header("E2b-Sandbox-Id", id)
        .header("X-Access-Token", token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The status of `GET /` on port 8000 of `id` through the E2B proxy with
/// a traffic token.
async fn port_status(d: &Daemon, id: &str, traffic: &str) -> u16 {
    d.http
        .get(format!("{}/", d.url))
        .header("E2b-Sandbox-Id", id)
        .header("E2b-Sandbox-Port", "8000")
        .header("E2B-Traffic-Access-Token", traffic)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sandbox_grants_die_with_the_key_they_were_handed_to() {
    let d = Daemon::with_base().await;
    let member = d.mint(&d.key, json!({"name": "agent-runner"})).await;
    let created = e2b_post(&d, &member, "/sandboxes", json!({"templateID": "base"})).await;
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let envd = created["envdAccessToken"].as_str().unwrap().to_owned();
    let traffic = created["trafficAccessToken"].as_str().unwrap().to_owned();
    d.start_python_server(&id, SERVER, 8000).await;

    // Asking again gives the key the grant it holds.
    assert_eq!(envd_grant(&d, &member, &id).await, envd);
    let (status, info) = d
        .call(&member, "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["traffic_token"], traffic.as_str());
    assert_eq!(agent_status(&d, &id, &envd).await, 200);
    assert_eq!(port_status(&d, &id, &traffic).await, 200);
    // The admin's own grant is another.
    let admin_envd = envd_grant(&d, &d.key, &id).await;
    assert_ne!(admin_envd, envd);

    let member_id = member.split('_').nth(1).unwrap();
    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/keys/{member_id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(agent_status(&d, &id, &envd).await, 401, "envd grant");
    assert_eq!(port_status(&d, &id, &traffic).await, 401, "traffic grant");
    let by_host = reqwest::Client::builder()
        .resolve(&format!("8000-{id}.localhost"), d.addr)
        .build()
        .unwrap()
        .get(format!("http://8000-{id}.localhost:{}/", d.addr.port()))
        .header("X-Warren-Traffic-Token", &traffic)
        .send()
        .await
        .unwrap();
    assert_eq!(by_host.status(), 401, "traffic grant on a port URL");

    // The sandbox and the grants of other keys are untouched.
    assert_eq!(agent_status(&d, &id, &admin_envd).await, 200);
    let out = d.sh(&id, "cat /etc/hostname").await;
    assert_eq!(out.exit_code, Some(0));
}

#[tokio::test]
async fn sandbox_grants_open_one_sandbox_survive_a_pause_and_die_with_a_rollback() {
    let d = Daemon::with_base().await;
    let created = e2b_post(&d, &d.key, "/sandboxes", json!({"templateID": "base"})).await;
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let envd = created["envdAccessToken"].as_str().unwrap().to_owned();

    // A fork is a new sandbox: the parent's grant does not open it.
    let forked = e2b_post(&d, &d.key, &format!("/sandboxes/{id}/fork"), json!({})).await;
    let branch = forked[0]["sandbox"]["sandboxID"]
        .as_str()
        .unwrap()
        .to_owned();
    let branch_envd = forked[0]["sandbox"]["envdAccessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(branch_envd, envd);
    assert_eq!(agent_status(&d, &branch, &envd).await, 401);
    assert_eq!(agent_status(&d, &branch, &branch_envd).await, 200);
    assert_eq!(agent_status(&d, &id, &branch_envd).await, 401);
    assert_eq!(agent_status(&d, &id, &envd).await, 200);

    // A pause and a resume keep it (E2B's SDKs go on with the token they
    // had after `connect()`).
    e2b_post(&d, &d.key, &format!("/sandboxes/{id}/pause"), json!({})).await;
    let connected = e2b_post(
        &d,
        &d.key,
        &format!("/sandboxes/{id}/connect"),
        json!({"timeout": 60}),
    )
    .await;
    assert_eq!(connected["envdAccessToken"], envd.as_str());
    assert_eq!(agent_status(&d, &id, &envd).await, 200);

    // A rollback withdraws it; the key gets a new one.
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{id}/snapshots"),
            Some(json!({"name": "clean"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{id}/rollback"),
            Some(json!({"snapshot": "clean"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(agent_status(&d, &id, &envd).await, 401);
    let renewed = envd_grant(&d, &d.key, &id).await;
    assert_ne!(renewed, envd);
    assert_eq!(agent_status(&d, &id, &renewed).await, 200);

    // A kill ends what it opens: E2B's edge answers 502 for a dead
    // sandbox (the SDKs' `is_running` reads it as "not running").
    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(agent_status(&d, &id, &renewed).await, 502);
    assert_eq!(agent_status(&d, &branch, &branch_envd).await, 200);
}

#[tokio::test]
async fn sandbox_forged_and_foreign_grants_are_refused() {
    let d = Daemon::with_base().await;
    let created = e2b_post(&d, &d.key, "/sandboxes", json!({"templateID": "base"})).await;
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let envd = created["envdAccessToken"].as_str().unwrap().to_owned();
    let traffic = created["trafficAccessToken"].as_str().unwrap().to_owned();
    let (head, mac) = envd.rsplit_once('.').unwrap();
    let forged_mac = format!("{head}.{}", mac.chars().rev().collect::<String>());
    let (_, traffic_mac) = traffic.rsplit_once('.').unwrap();
    let spliced = format!("{head}.{traffic_mac}");
    for bad in [
        forged_mac.as_str(),
        spliced.as_str(),
        "wgr_",
        "wgr_x.y",
        "",
        &d.key,
    ] {
        assert_eq!(agent_status(&d, &id, bad).await, 401, "{bad:?}");
    }
    // The traffic grant opens the sandbox's ports, never its agent.
    assert_eq!(agent_status(&d, &id, &traffic).await, 401);
    assert_eq!(agent_status(&d, &id, &envd).await, 200);
}
