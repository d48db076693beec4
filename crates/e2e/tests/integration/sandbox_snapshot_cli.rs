//! `warren pause`, `resume`, `snapshot`, `snapshots`, `rollback`, `fork` and
//! `create --from-snapshot` against a real daemon.

use std::process::{Output, Stdio};

use warren_e2e::Daemon;

fn run(d: &Daemon, args: &[&str]) -> Output {
    let out = d
        .cli()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("warren runs");
    assert!(
        out.status.success(),
        "warren {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

#[tokio::test]
async fn sandbox_snapshot_cli_flow() {
    let d = Daemon::with_base().await;
    let id = stdout(&run(&d, &["create", "-q", "--persistent"]));
    run(&d, &["exec", &id, "--", "bash", "-c", "echo one > /tmp/f"]);

    assert_eq!(stdout(&run(&d, &["pause", &id])), format!("{id} paused"));
    assert_eq!(stdout(&run(&d, &["resume", &id])), format!("{id} running"));

    let snap = stdout(&run(&d, &["snapshot", &id, "one"]));
    assert_eq!(snap.len(), 16, "snapshot prints its id: {snap:?}");
    run(&d, &["exec", &id, "--", "bash", "-c", "echo two > /tmp/f"]);
    let listed: serde_json::Value =
        serde_json::from_slice(&run(&d, &["snapshots", &id, "--json"]).stdout).unwrap();
    assert_eq!(listed["snapshots"][0]["name"], "one");

    assert_eq!(
        stdout(&run(&d, &["rollback", &id, "one"])),
        format!("{id} running")
    );
    assert_eq!(
        stdout(&run(&d, &["exec", &id, "--", "cat", "/tmp/f"])),
        "one"
    );

    let branches = stdout(&run(&d, &["fork", &id, "-n", "2"]));
    let branches: Vec<&str> = branches.lines().collect();
    assert_eq!(branches.len(), 2, "{branches:?}");
    for b in &branches {
        assert_eq!(stdout(&run(&d, &["exec", b, "--", "cat", "/tmp/f"])), "one");
    }

    let other = stdout(&run(&d, &["create", "-q", "--from-snapshot", &snap]));
    assert_eq!(
        stdout(&run(&d, &["exec", &other, "--", "cat", "/tmp/f"])),
        "one"
    );

    run(&d, &["snapshots", &id, "--delete", "one"]);
    let listed: serde_json::Value =
        serde_json::from_slice(&run(&d, &["snapshots", &id, "--json"]).stdout).unwrap();
    assert!(
        listed["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "one" || s["available"] == false),
        "{listed}"
    );
}
