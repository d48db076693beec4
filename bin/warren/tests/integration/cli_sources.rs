//! `warren hook` and `warren timer` against the real API, in process over
//! the fake runtime (as `cli_server.rs`): a hook is created with the secret
//! printed once and the delivery URL, a signed delivery through that URL
//! lands in the sandbox's inbox, and timers are set, listed, fired and
//! removed.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

struct Daemon {
    server: InProcess,
    url: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
            .await
            .unwrap();
        let addr = server.serve().await.unwrap();
        Self {
            server,
            url: format!("http://{addr}"),
            _dir: dir,
        }
    }

    async fn warren(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WARREN_URL", &self.url)
            .env("WARREN_API_KEY", self.server.admin_key.as_deref().unwrap())
            .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
            .args(args)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().expect("warren runs"))
            .await
            .unwrap()
    }

    async fn ok(&self, args: &[&str]) -> String {
        let o = self.warren(args).await;
        assert_eq!(
            o.status.code(),
            Some(0),
            "warren {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    async fn inbox(&self, id: &str) -> Vec<Value> {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/sandboxes/{id}/events", self.url))
            .bearer_auth(self.server.admin_key.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["events"].as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_hook_is_created_delivered_to_listed_and_removed() {
    let d = Daemon::start().await;
    let id = d.ok(&["create"]).await.trim().to_owned();
    let out = d
        .ok(&[
            "hook",
            "create",
            "github",
            "--repo",
            "acme/app",
            "--sandbox",
            &id,
            "--on",
            "check_suite,pull_request_review",
            "--pr",
            "42",
        ])
        .await;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    let (hook, url, secret) = (field("id"), field("url"), field("secret"));
    assert!(
        url.starts_with(&d.url) && url.ends_with("/deliver"),
        "{url}"
    );

    let body = serde_json::json!({
        "action": "submitted",
        "pull_request": {"number": 42},
        "review": {"state": "approved"},
        "repository": {"full_name": "acme/app"},
    })
    .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let resp = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .header("x-github-event", "pull_request_review")
        .header("x-github-delivery", "11111111-2222")
        .header(
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let events = d.inbox(&id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "github.pull_request_review");

    let listed = d.ok(&["hook", "ls"]).await;
    let row = listed
        .lines()
        .find(|l| l.starts_with(&hook))
        .expect(&listed);
    assert!(
        row.contains("acme/app#42") && row.contains("github"),
        "{row}"
    );
    assert!(!listed.contains(&secret), "{listed}");
    let json: Value = serde_json::from_str(&d.ok(&["hook", "ls", "--json"]).await).unwrap();
    assert_eq!(json["hooks"][0]["accepted"], 1);
    let second = d.ok(&["create"]).await.trim().to_owned();
    let routed = d
        .ok(&[
            "hook",
            "subscribe",
            &hook,
            "--sandbox",
            &second,
            "--repo",
            "acme/app",
            "--on",
            "push",
            "--branch",
            "main",
        ])
        .await;
    assert!(
        routed.contains(&format!("1: {second} <- acme/app@main push")),
        "{routed}"
    );
    d.ok(&["hook", "unsubscribe", &hook, "1"]).await;
    let info = d.ok(&["hook", "info", &hook]).await;
    assert!(!info.contains(&second), "{info}");
    d.ok(&["hook", "rm", &hook]).await;
    let o = d.warren(&["hook", "info", &hook]).await;
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));

    let standard: Value = serde_json::from_str(
        &d.ok(&["hook", "create", "standard", "--sandbox", &id, "--json"])
            .await,
    )
    .unwrap();
    assert!(
        standard["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_")),
        "{standard}"
    );
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_are_set_listed_fired_and_removed() {
    let d = Daemon::start().await;
    let id = d.ok(&["create"]).await.trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(&data, r#"{"pr": 42}"#).unwrap();
    let at_file = format!("@{}", data.display());
    let first = d
        .ok(&[
            "timer", &id, "--after", "1m", "--type", "reminder", "--data", &at_file,
        ])
        .await
        .trim()
        .to_owned();
    let second: Value = serde_json::from_str(
        &d.ok(&["timer", &id, "--after", "1h", "--type", "later", "--json"])
            .await,
    )
    .unwrap();
    let listed = d.ok(&["timer", "ls", &id]).await;
    assert!(
        listed.contains(&first) && listed.contains("reminder"),
        "{listed}"
    );
    d.ok(&["timer", "rm", &id, second["id"].as_str().unwrap()])
        .await;
    let o = d
        .warren(&[
            "timer", &id, "--after", "1m", "--type", "x", "--data", "{nope",
        ])
        .await;
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not JSON"));

    d.server.clock.advance(time::Duration::seconds(61));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let events = loop {
        let events = d.inbox(&id).await;
        if !events.is_empty() || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "reminder");
    assert_eq!(events[0]["data"]["pr"], 42);
    // The fired timer's row goes just after its event is in the inbox.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listed: Value =
            serde_json::from_str(&d.ok(&["timer", "ls", &id, "--json"]).await).unwrap();
        if listed["timers"] == serde_json::json!([]) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listed}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    d.server.stop().await;
}
