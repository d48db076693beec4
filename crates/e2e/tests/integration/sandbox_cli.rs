//! The CLI against a real daemon.

use std::process::{Output, Stdio};

use warren_e2e::Daemon;

fn run(d: &Daemon, args: &[&str]) -> Output {
    d.run_cli(args)
}

fn run_as(d: &Daemon, key: &str, args: &[&str]) -> Output {
    d.cli()
        .env("WARREN_API_KEY", key)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("warren runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test]
async fn sandbox_cli_flow() {
    let d = Daemon::with_base().await;
    let created = run(&d, &["create", "--metadata", "via=cli"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let id = stdout(&created).trim().to_owned();
    assert_eq!(id.len(), 20, "create prints the id: {id:?}");

    let ls = run(&d, &["ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&ls.stdout).expect("ls --json is JSON");
    assert!(listed.to_string().contains(&id));

    // exec streams output and passes the exit code through.
    let out = run(
        &d,
        &[
            "exec",
            &id,
            "--",
            "bash",
            "-c",
            "echo to-out; echo to-err >&2; exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(stdout(&out), "to-out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");

    // cp both ways keeps bytes exactly.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    let up = run(
        &d,
        &[
            "cp",
            src.to_str().unwrap(),
            &format!("{id}:/tmp/copied.bin"),
        ],
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let sum = run(&d, &["exec", &id, "--", "sha256sum", "/tmp/copied.bin"]);
    let inside = stdout(&sum);
    let dst = dir.path().join("back.bin");
    let down = run(
        &d,
        &[
            "cp",
            &format!("{id}:/tmp/copied.bin"),
            dst.to_str().unwrap(),
        ],
    );
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(std::fs::read(&dst).unwrap(), data);
    assert!(inside.starts_with(&sha256_hex(&data)), "{inside}");

    let missing = run(&d, &["info", "abcdefghijklmnopqrst"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));

    let killed = run(&d, &["kill", &id]);
    assert!(killed.status.success());
    let after = run(&d, &["exec", &id, "--", "true"]);
    assert_ne!(after.status.code(), Some(0));
}

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// `warren team`, `user`, `key` and `whoami` against a real daemon: the
/// operator makes a team, its admin adds a user and mints them a viewer key,
/// which then cannot create sandboxes, and dies when revoked.
#[tokio::test]
async fn sandbox_cli_manages_teams_users_and_keys() {
    let d = Daemon::start().await.expect("daemon starts");
    let json = |o: &Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("--json output is JSON")
    };
    let team = json(&run(
        &d,
        &["team", "create", "acme", "--admin", "alice", "--json"],
    ));
    let alice = team["key"]["secret"].as_str().unwrap().to_owned();
    let as_alice = |args: &[&str]| run_as(&d, &alice, args);
    let who = json(&as_alice(&["whoami", "--json"]));
    assert_eq!(who["team_name"], "acme");
    assert_eq!(who["role"], "admin");

    let bob = json(&as_alice(&["user", "create", "bob", "--json"]));
    let bob_id = bob["id"].as_str().unwrap();
    let key = as_alice(&[
        "key", "create", "bob-ro", "--user", bob_id, "--role", "viewer",
    ]);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let bob_key = stdout(&key).trim().to_owned();
    assert!(bob_key.starts_with("wrn_"), "{bob_key}");
    let listed = stdout(&as_alice(&["key", "ls"]));
    assert!(
        listed.contains("bob-ro") && listed.contains("viewer"),
        "{listed}"
    );

    let as_bob = |args: &[&str]| run_as(&d, &bob_key, args);
    let denied = as_bob(&["create"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("sandboxes:create"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(as_bob(&["ls"]).status.success());

    let key_id = bob_key.split('_').nth(1).unwrap();
    assert!(as_alice(&["key", "revoke", key_id]).status.success());
    let after = as_bob(&["ls"]);
    assert_eq!(after.status.code(), Some(1));
    // The operator's team list names both teams.
    let teams = stdout(&run(&d, &["team", "ls"]));
    assert!(
        teams.contains("acme") && teams.contains("default"),
        "{teams}"
    );
}
