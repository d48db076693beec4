//! `warren webhook` against the real API in process: create, ls,
//! deliveries and rm, human and `--json`, and a refused destination.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::Value;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

async fn warren(url: &str, key: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WARREN_URL", url)
        .env("WARREN_API_KEY", key)
        .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
        .args(args)
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("warren runs"))
        .await
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_created_listed_logged_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let server = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let url = format!("http://{}", server.serve().await.unwrap());
    let key = server.admin_key.clone().unwrap();

    let o = warren(
        &url,
        &key,
        &[
            "--json",
            "webhook",
            "create",
            "https://example.com/hook",
            "--events",
            "sandbox.paused,sandbox.killed",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let created: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(created["events"][1], "sandbox.killed");

    let o = warren(&url, &key, &["webhook", "ls"]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(&id) && out.contains("sandbox.paused,sandbox.killed"),
        "{out}"
    );
    assert!(!out.contains("whsec_"), "{out}");

    let o = warren(&url, &key, &["--json", "webhook", "deliveries", &id]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let log: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(log["deliveries"], serde_json::json!([]));

    let o = warren(
        &url,
        &key,
        &[
            "webhook",
            "create",
            "http://169.254.169.254/",
            "--events",
            "*",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("169.254.169.254"),
        "{}",
        text(&o.stderr)
    );

    let o = warren(&url, &key, &["webhook", "rm", &id]).await;
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = warren(&url, &key, &["webhook", "rm", &id]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    server.stop().await;
}
