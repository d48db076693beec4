//! Team secrets end to end through a real daemon: set, replace, list and
//! delete over the API and the CLI; scopes and teams; the audit log names
//! secrets and never holds a value; values are encrypted at rest.

use std::io::Write as _;
use std::process::Stdio;

use serde_json::{Value, json};
use warren_api_types::{SecretList, TeamCreated};
use warren_e2e::Daemon;

const VALUE: &str = "ghp_e2eSecretValue0123456789abcdef";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
        } else if meta.is_file()
            && let Ok(bytes) = std::fs::read(&p)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(p.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn root_secrets_are_team_scoped_audited_and_encrypted_at_rest() {
    let mut d = Daemon::start().await.expect("daemon starts");
    let admin = d.key.clone();

    let (status, s) = d
        .call(
            &admin,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "gh", "value": VALUE})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["name"], "gh");
    assert!(!s.to_string().contains(VALUE));
    let (status, s) = d
        .call(
            &admin,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "gh", "value": format!("{VALUE}-2")})),
        )
        .await;
    assert_eq!(status, 200, "replacing answers 200: {s}");

    // Bad input is refused precisely.
    let big = "x".repeat(64 * 1024 + 1);
    let (status, err) = d
        .call(
            &admin,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "big", "value": big})),
        )
        .await;
    assert_eq!(status, 413, "{err}");
    assert!(err["message"].as_str().unwrap().contains("64 KiB"), "{err}");
    let (status, err) = d
        .call(
            &admin,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "../x", "value": "v"})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = d
        .call(
            &admin,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "nl", "value": "a\nb"})),
        )
        .await;
    assert_eq!(status, 400, "{err}");

    // Members use secrets (list names) but do not manage them; viewers do neither.
    let member = d.mint(&admin, json!({"name": "m", "role": "member"})).await;
    let viewer = d.mint(&admin, json!({"name": "v", "role": "viewer"})).await;
    let (status, list) = d.call(&member, "GET", "/v1/secrets", None).await;
    assert_eq!(status, 200, "{list}");
    let list: SecretList = serde_json::from_value(list).unwrap();
    assert_eq!(list.secrets.len(), 1);
    assert_eq!(list.secrets[0].name, "gh");
    let (status, err) = d
        .call(
            &member,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "m", "value": "v"})),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("secrets:manage"),
        "{err}"
    );
    let (status, _) = d.call(&member, "DELETE", "/v1/secrets/gh", None).await;
    assert_eq!(status, 403);
    let (status, _) = d.call(&viewer, "GET", "/v1/secrets", None).await;
    assert_eq!(status, 403);

    // Another team sees none of them, and cannot delete them.
    let (status, created) = d
        .call(
            &admin,
            "POST",
            "/v1/teams",
            Some(json!({"name": "team-b", "admin": "bea"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let b = serde_json::from_value::<TeamCreated>(created)
        .unwrap()
        .key
        .secret;
    let (status, list) = d.call(&b, "GET", "/v1/secrets", None).await;
    assert_eq!((status, list), (200, json!({"secrets": []})));
    let (status, err) = d.call(&b, "DELETE", "/v1/secrets/gh", None).await;
    assert_eq!(status, 404, "{err}");
    // B's secret of the same name is its own.
    let (status, _) = d
        .call(
            &b,
            "POST",
            "/v1/secrets",
            Some(json!({"name": "gh", "value": "b-value"})),
        )
        .await;
    assert_eq!(status, 201);

    // The CLI: value from stdin, listing, removal.
    let mut child = d
        .cli()
        .args(["secret", "set", "npm"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{VALUE}-npm\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.run_cli(&["secret", "ls", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: SecretList = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = list.secrets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["gh", "npm"]);
    let out = d.run_cli(&["secret", "ls"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("npm"));
    let out = d.run_cli(&["secret", "rm", "npm"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.run_cli(&["secret", "rm", "npm"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The audit log names the secrets and never holds a value.
    let (status, entries) = d
        .call(&admin, "GET", "/v1/audit/entries?action=secret.set", None)
        .await;
    assert_eq!(status, 200);
    let sets: Vec<&Value> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["entry"])
        .collect();
    // The operator's admin reads every team's entries: A's two sets of gh,
    // B's gh (in B's team), A's npm.
    assert_eq!(sets.len(), 4, "{entries}");
    assert_eq!(sets[0]["target"], "gh");
    assert_eq!(sets[1]["details"]["replaced"], true);
    assert_ne!(sets[2]["team"], sets[0]["team"]);
    let (_, deletes) = d
        .call(
            &admin,
            "GET",
            "/v1/audit/entries?action=secret.delete",
            None,
        )
        .await;
    assert_eq!(deletes["entries"].as_array().unwrap().len(), 1, "{deletes}");
    let (_, all) = d
        .call(&admin, "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    assert!(!all.to_string().contains(VALUE));

    // Nothing in the data directory holds a value in clear (the database
    // holds ciphertexts, the log never a value); the key file is private.
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    let leaks = files_containing(d.data_dir(), VALUE.as_bytes());
    assert!(leaks.is_empty(), "value found in {leaks:?}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(d.data_dir().join("secrets/secrets-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // A restart loads the same key file and keeps the secrets.
    d.restart().await.unwrap();
    let (status, list) = d.call(&admin, "GET", "/v1/secrets", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["secrets"][0]["name"], "gh");
}
