//! The daemon's firewall table: the daemon installs it at start and keeps
//! it while it runs, whatever its sandboxes do; a torn-down sandbox's chain
//! goes with it; at stop the table goes unless a sandbox lives on, and the
//! next start replaces it and applies the live sandboxes' chains again.

use std::time::{Duration, Instant};

use serde_json::json;
use warren_e2e::Daemon;

/// The daemon's table: named after its runtime's state directory.
fn table_of(d: &Daemon) -> String {
    let state = d.data_dir().join("runtime").canonicalize().unwrap();
    let pool = d.cidr.parse().unwrap();
    warren_net::Firewall::new(&state, pool).table().to_owned()
}

/// The table's rules, or `None` when it does not exist.
fn listed(table: &str) -> Option<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "inet", table])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// How many sandbox chains (`s<slot>`) the table holds.
fn sandbox_chains(rules: &str) -> usize {
    rules
        .lines()
        .filter(|l| {
            l.trim()
                .strip_prefix("chain s")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

/// Waits until the table holds `n` sandbox chains (teardown runs in the
/// background); the rules then.
async fn wait_for_chains(table: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rules = listed(table).expect("the table exists");
        if sandbox_chains(&rules) == n || Instant::now() > deadline {
            return rules;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills `id` and waits until its teardown has finished (the daemon logs
/// it once the runtime's destroy returned).
async fn kill(d: &Daemon, id: &str) {
    let resp = d
        .delete(&format!("/v1/sandboxes/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !d
        .log()
        .lines()
        .any(|l| l.contains("sandbox torn down") && l.contains(id))
    {
        assert!(Instant::now() < deadline, "no teardown of {id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sandbox_the_firewall_table_lives_with_the_daemon_not_its_sandboxes() {
    let mut d = Daemon::with_base().await;
    let table = table_of(&d);
    let rules = listed(&table).expect("installed at start");
    assert_eq!(sandbox_chains(&rules), 0, "{rules}");

    let a = d.create_sandbox(json!({"template": "base"})).await;
    assert_eq!(sandbox_chains(&listed(&table).unwrap()), 1);
    kill(&d, &a.id).await;
    // The chain goes with the sandbox, the table stays: the sandbox
    // listener's and egress ports stay closed to everything but sandboxes.
    let rules = wait_for_chains(&table, 0).await;
    assert_eq!(sandbox_chains(&rules), 0, "{rules}");
    let port = format!("tcp dport {} drop", d.sandbox_api_port);
    assert!(rules.contains(&port), "{rules}");

    // A live sandbox keeps the table across a restart, and gets its chain
    // back from the new daemon.
    let b = d.create_sandbox(json!({"template": "base"})).await;
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(sandbox_chains(&listed(&table).expect("kept")), 1);
    d.restart().await.unwrap();
    assert_eq!(sandbox_chains(&listed(&table).expect("replaced")), 1);
    assert_eq!(d.sh(&b.id, "echo up").await.stdout_str(), "up\n");

    kill(&d, &b.id).await;
    wait_for_chains(&table, 0).await;
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(listed(&table), None, "the table outlived an empty daemon");
}

#[tokio::test]
async fn sandbox_a_daemon_that_fails_to_start_leaves_no_table() {
    let mut d = Daemon::start().await.expect("daemon starts");
    let table = table_of(&d);
    assert!(listed(&table).is_some());
    d.stop_with(nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(listed(&table), None);
    // The resolver's port is taken: the start fails after the table was
    // installed, and takes it away again.
    let taken = std::net::UdpSocket::bind(("0.0.0.0", d.dns_port)).unwrap();
    let failed = d.restart().await;
    assert!(failed.is_err(), "the daemon started without its DNS port");
    assert_eq!(listed(&table), None, "a failed start left the table");
    drop(taken);
}
