//! Exec end to end: argv reaches the program as given, the daemon's
//! connection to the agent stays warm between commands and is dialled
//! again when it dies, and a revoked key stops at the next command.

use serde_json::json;
use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_exec_argv_reaches_the_program_verbatim() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let args = [
        "two words",
        "'single'",
        "\"double\"",
        "$HOME",
        "`id`",
        "$(id)",
        "*",
        "; echo injected",
        "back\\slash",
        "",
    ];
    let mut cmd = vec!["printf", "<%s>\n"];
    cmd.extend(args);
    let out = d.exec(&sb.id, json!({ "cmd": cmd })).await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    let expected: String = args.iter().map(|a| format!("<{a}>\n")).collect();
    assert_eq!(out.stdout_str(), expected);
}

/// Local ends of the daemon's established connections to agents in `cidr`.
fn agent_connections(cidr: &str) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established", "dst", cidr])
        .args(["dport", "=", ":49983"])
        .output()
        .expect("ss runs");
    assert!(out.status.success(), "{out:?}");
    let mut conns: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    conns.sort();
    conns
}

#[tokio::test]
async fn sandbox_exec_keeps_the_agent_connection_warm_and_redials_a_dead_one() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let run_true = || d.exec(&sb.id, json!({"cmd": ["/bin/true"]}));
    assert_eq!(run_true().await.exit_code, Some(0));
    let warm = agent_connections(&d.cidr);
    assert!(!warm.is_empty(), "no connection kept to the agent");
    for _ in 0..3 {
        assert_eq!(run_true().await.exit_code, Some(0));
    }
    assert_eq!(agent_connections(&d.cidr), warm, "each exec dialled anew");

    // Kill the daemon's connections to the agent where it cannot see it.
    let killed = std::process::Command::new("ss")
        .args(["-K", "dst", &d.cidr, "dport", "=", ":49983"])
        .output()
        .expect("ss runs");
    assert!(killed.status.success(), "{killed:?}");
    for _ in 0..3 {
        let out = run_true().await;
        assert_eq!(out.exit_code, Some(0), "{out:?}\n{}", d.log());
    }
    let again = agent_connections(&d.cidr);
    assert!(!again.is_empty());
    assert!(
        again.iter().all(|c| !warm.contains(c)),
        "{warm:?} {again:?}"
    );
}

#[tokio::test]
async fn sandbox_exec_stops_at_once_when_its_key_is_revoked() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let key = d.mint(&d.key, json!({"name": "runner"})).await;
    let exec = |key: String| {
        let d = &d;
        let path = format!("/v1/sandboxes/{}/exec", sb.id);
        async move {
            d.call(&key, "POST", &path, Some(json!({"cmd": ["/bin/true"]})))
                .await
        }
    };
    for _ in 0..3 {
        let (status, body) = exec(key.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let key_id = key.split('_').nth(1).unwrap();
    let (status, body) = d
        .call(&d.key, "DELETE", &format!("/v1/keys/{key_id}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = exec(key.clone()).await;
    assert_eq!(status, 401, "{body}");
}
