//! Schemathesis over every operation of `/v1/openapi.json`, against a real
//! daemon with the operator key: no 5xx, no hang (30 s per request), every
//! response's status, content type, headers and body as documented, input
//! the schema forbids refused with a 4xx, no answer without a key. The
//! checks, the hooks and the one fixture are in `tests/api-fuzz/`; the
//! environment is made by `scripts/deps.sh` (`target/api-fuzz-venv`).
//!
//! `WARREN_API_FUZZ_EXAMPLES` sets the examples per operation (default 10,
//! about a minute here); `WARREN_API_FUZZ_SEED` replays a run's seed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use warren_api_types::{TeamCreated, WhoAmI};
use warren_e2e::{Daemon, workspace_target};

const DEFAULT_EXAMPLES: &str = "10";

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/api-fuzz")
}

#[tokio::test(flavor = "multi_thread")]
async fn sandbox_api_fuzz_every_documented_operation() {
    // A templates directory of its own: the fuzzer removes and tags
    // templates like any operator may.
    let templates = Daemon::private_templates(&["base", "tiny", "code-interpreter"]).unwrap();
    let d = Daemon::start_in(templates.path(), &[]).await.unwrap();
    let me: WhoAmI = d.get_json("/v1/whoami").await;
    // Few sandboxes and forks of two at most: each is a real gVisor
    // sandbox on a small host.
    let (status, body) = d
        .call(
            &d.key,
            "PUT",
            &format!("/v1/teams/{}/quota", me.team),
            Some(json!({"max_sandboxes": 6, "max_branches": 2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // The sandboxes the routes under `/v1/sandboxes/{id}` work on (one for
    // the timeout alone, one to kill), and the team whose quota the quota
    // routes change (see schemathesis.toml).
    let mut sandboxes = Vec::new();
    for _ in 0..3 {
        sandboxes.push(d.create_sandbox(json!({"timeout_s": 3600})).await.id);
    }
    let other: TeamCreated = d
        .created_as(
            &d.key,
            "/v1/teams",
            json!({"name": "fuzzed", "admin": "fuzzed-admin"}),
        )
        .await;
    // A hook, a volume and a webhook for their routes, each twice (the
    // second to delete).
    let mut fixtures = Vec::new();
    for suffix in ["", "_TO_DELETE"] {
        let (hook, volume, webhook) = hook_volume_webhook(&d, &sandboxes[0], suffix).await;
        fixtures.push((format!("WARREN_FUZZ_HOOK{suffix}"), hook));
        fixtures.push((format!("WARREN_FUZZ_VOLUME{suffix}"), volume));
        fixtures.push((format!("WARREN_FUZZ_WEBHOOK{suffix}"), webhook));
    }

    let schemathesis = workspace_target().join("api-fuzz-venv/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} is missing: run scripts/deps.sh to create the API fuzzer's environment",
        schemathesis.display()
    );
    let examples =
        std::env::var("WARREN_API_FUZZ_EXAMPLES").unwrap_or_else(|_| DEFAULT_EXAMPLES.into());
    // Hypothesis' caches go here, not into the source tree.
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("600")
        .arg(&schemathesis)
        .args(["--config-file", "schemathesis.toml", "--no-color", "run"])
        .arg(format!("{}/v1/openapi.json", d.url))
        .args(["--max-examples", &examples])
        .current_dir(suite_dir())
        .env("WARREN_FUZZ_KEY", &d.key)
        .env("WARREN_FUZZ_KEY_ID", &me.key)
        .env("WARREN_FUZZ_SANDBOX", &sandboxes[0])
        .env("WARREN_FUZZ_TIMEOUT_SANDBOX", &sandboxes[1])
        .env("WARREN_FUZZ_KILL_SANDBOX", &sandboxes[2])
        .env("WARREN_FUZZ_TEAM", &other.team.id)
        .env("HYPOTHESIS_STORAGE_DIRECTORY", scratch.path())
        .envs(fixtures)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Ok(seed) = std::env::var("WARREN_API_FUZZ_SEED") {
        cmd.args(["--seed", &seed]);
    }
    let out = tokio::task::block_in_place(|| cmd.output()).expect("schemathesis runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    let log = d.log();
    assert!(
        out.status.success(),
        "schemathesis found failures ({}):\n{report}\n--- daemon log (tail) ---\n{}",
        out.status,
        tail(&log, 200)
    );
    assert!(!log.contains("panicked at"), "the daemon panicked:\n{log}");
    // The run kept its credentials and the daemon still serves.
    let (status, body) = d.call(&d.key, "GET", "/v1/whoami", None).await;
    assert_eq!(status, 200, "{body}");
}

/// A hook (standard kind, subscribed by `sandbox`), a volume and a
/// lifecycle webhook (its address never resolves); their ids (the volume's
/// name).
async fn hook_volume_webhook(d: &Daemon, sandbox: &str, suffix: &str) -> (String, String, String) {
    let hook: Value = d
        .created_as(
            &d.key,
            "/v1/hooks",
            json!({"kind": "standard", "subscriptions": [{"sandbox": sandbox}]}),
        )
        .await;
    let volume: Value = d
        .created_as(
            &d.key,
            "/v1/volumes",
            json!({"name": format!("fuzz{suffix}")}),
        )
        .await;
    let webhook: Value = d
        .created_as(
            &d.key,
            "/v1/webhooks",
            json!({"url": "https://warren-fuzz.invalid/hook", "events": ["*"]}),
        )
        .await;
    let id = |v: &Value| v.as_str().unwrap().to_owned();
    (
        id(&hook["hook"]["id"]),
        id(&volume["name"]),
        id(&webhook["id"]),
    )
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
