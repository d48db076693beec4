//! The audit log end to end: a real daemon and sandbox, the CLI verifying
//! locally, the timeline, and tampering with `warren.db` by SQL while the
//! daemon is stopped.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use warren_e2e::Daemon;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs SQL on the stopped daemon's database with the sqlite3 tool.
fn sqlite(db: &Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 runs");
    assert!(out.status.success(), "sqlite3 {sql}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn verify_with(d: &Daemon, checkpoint: &Path) -> std::process::Output {
    d.run_cli(&[
        "audit",
        "verify",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
    ])
}

/// Waits until a signed head covers the whole log (heads are signed every
/// second while it grows); returns the log's size.
async fn wait_signed(d: &Daemon) -> u64 {
    for _ in 0..100 {
        let out = d.run_cli(&["audit", "verify", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(report["ok"], true, "{report} {}", text(&out.stderr));
        let size = report["entries"].as_u64().unwrap_or(0);
        if size > 0 && report["signed_size"].as_u64() == Some(size) {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no signed head covers the log\n{}", d.log());
}

/// Checks the inclusion proof of entry `index` and a consistency proof from
/// size 1 against the latest signed head, with the daemon's public key.
async fn check_proofs(d: &Daemon, index: u64) {
    let heads: warren_api_types::AuditHeads = d.get_json("/v1/audit/heads").await;
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&heads.public_key[2 * i..2 * i + 2], 16).unwrap();
    }
    let key = warren_audit::VerifyingKey::from_bytes(&key).unwrap();
    let hash = |h: &str| h.parse::<warren_audit::Hash>().unwrap();
    let proof: warren_api_types::InclusionProof = d
        .get_json(&format!("/v1/audit/entries/{index}/proof"))
        .await;
    let head: warren_audit::SignedTreeHead =
        serde_json::from_value(serde_json::to_value(&proof.head).unwrap()).unwrap();
    let head = head
        .verify(&key)
        .expect("the head is signed by the daemon's key");
    let path: Vec<_> = proof.proof.iter().map(|h| hash(h)).collect();
    warren_audit::verify_inclusion(
        &hash(&proof.leaf_hash),
        index,
        head.size,
        &path,
        &head.root_hash,
    )
    .expect("inclusion proof");
    let cons: warren_api_types::ConsistencyProof = d
        .get_json(&format!("/v1/audit/consistency?from=1&to={}", head.size))
        .await;
    assert_eq!(hash(&cons.to_root), head.root_hash);
    let path: Vec<_> = cons.proof.iter().map(|h| hash(h)).collect();
    warren_audit::verify_consistency(1, head.size, &hash(&cons.from_root), &head.root_hash, &path)
        .expect("consistency proof");
}

#[tokio::test]
async fn sandbox_audit_log_verifies_replays_and_names_an_edited_entry() {
    let mut d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let id = sb.id.as_str();
    let failed = d.exec(id, json!({"cmd": ["bash", "-c", "exit 3"]})).await;
    assert_eq!(failed.exit_code, Some(3));
    d.exec(id, json!({"cmd": ["echo", "hello"], "cwd": "/tmp"}))
        .await;
    let up = d
        .put(&format!("/v1/sandboxes/{id}/files?path=/tmp/notes.txt"))
        .body("audit me\n")
        .send()
        .await
        .unwrap();
    assert!(up.status().is_success());
    wait_signed(&d).await;

    let ok = d.run_cli(&["audit", "verify"]);
    assert!(
        ok.status.success(),
        "{}{}",
        text(&ok.stdout),
        text(&ok.stderr)
    );
    assert!(text(&ok.stdout).starts_with("ok: "), "{}", text(&ok.stdout));

    // The timeline tells the session: its token issued, created, two
    // commands with their exit codes, the file with its hash.
    let tl = d.run_cli(&["timeline", id, "--json"]);
    assert!(tl.status.success(), "{}", text(&tl.stderr));
    let timeline: Value = serde_json::from_slice(&tl.stdout).unwrap();
    let events = timeline["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["token", "created", "command", "command", "file_written"],
        "{timeline}"
    );
    assert_eq!(events[2]["exit_code"], 3);
    assert_eq!(events[3]["exit_code"], 0);
    assert_eq!(events[3]["details"]["argv"], json!(["echo", "hello"]));
    assert_eq!(events[3]["details"]["cwd"], "/tmp");
    // sha256("audit me\n")
    let digest = events[4]["details"]["sha256"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 64);
    assert_eq!(events[4]["details"]["size"], 9);
    let human = d.run_cli(&["timeline", id]);
    assert!(
        text(&human.stdout).contains("ran `bash -c exit 3` as user: exit 3"),
        "{}",
        text(&human.stdout)
    );

    // Filters, and proofs checked here against the signed head.
    let execs: warren_api_types::AuditEntryList = d
        .get_json(&format!(
            "/v1/audit/entries?sandbox={id}&action=process.exec"
        ))
        .await;
    let argvs: Vec<&Value> = execs
        .entries
        .iter()
        .map(|l| &l.entry.details["argv"])
        .collect();
    assert_eq!(
        argvs,
        [&json!(["bash", "-c", "exit 3"]), &json!(["echo", "hello"])]
    );
    check_proofs(&d, execs.entries[0].entry.index).await;

    // Edit the first command's details in the database, restart: verify names it.
    let index = events[1]["index"].as_u64().unwrap();
    d.stop_with(Signal::SIGTERM).unwrap();
    let db = d.data_dir().join("warren.db");
    sqlite(
        &db,
        &format!(
            "UPDATE audit_entries SET details = json_set(details, '$.exit_code', 0) WHERE idx = {index}"
        ),
    );
    d.restart().await.unwrap();
    let bad = d.run_cli(&["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad.stdout));
    assert!(
        text(&bad.stderr).contains(&format!("at index {index}:")),
        "{}",
        text(&bad.stderr)
    );
    let report: Value =
        serde_json::from_slice(&d.run_cli(&["audit", "verify", "--json"]).stdout).unwrap();
    assert_eq!(report["first_bad_index"], index);
}

#[tokio::test]
async fn sandbox_audit_checkpoint_detects_a_rollback_of_the_database() {
    let mut d = Daemon::start().await.expect("daemon starts");
    // Requests that change nothing still leave entries (refused creates).
    let refuse = |d: &Daemon| {
        d.post("/v1/sandboxes")
            .json(&json!({"template": "no-such-template"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(refuse(&d).await.unwrap().status(), 404);
    }
    let early = wait_signed(&d).await;
    d.stop_with(Signal::SIGTERM).unwrap();
    let db = d.data_dir().join("warren.db");
    let saved = d.data_dir().join("saved.db");
    sqlite(&db, &format!(".backup '{}'", saved.display()));

    d.restart().await.unwrap();
    for _ in 0..3 {
        refuse(&d).await.unwrap();
    }
    let later = wait_signed(&d).await;
    assert!(later > early);
    let checkpoint = d.data_dir().join("checkpoint.json");
    let cp = d.run_cli(&["audit", "checkpoint", checkpoint.to_str().unwrap()]);
    assert!(cp.status.success(), "{}", text(&cp.stderr));
    let ok = verify_with(&d, &checkpoint);
    assert!(ok.status.success(), "{}", text(&ok.stderr));

    // Roll the whole database back, heads and all.
    d.stop_with(Signal::SIGTERM).unwrap();
    sqlite(&db, &format!(".restore '{}'", saved.display()));
    d.restart().await.unwrap();
    let alone = d.run_cli(&["audit", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(
        report["ok"], true,
        "the rolled-back log is consistent with itself: {report}"
    );
    let bad = verify_with(&d, &checkpoint);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains(&format!("at index {early}")),
        "{}",
        text(&bad.stderr)
    );
}
