//! The daemon's client keeps its connection to the agent warm between
//! commands, and dials anew when that connection dies.

use crate::common;

use futures::StreamExt;
use warren_envd::process::{ProcessConfig, ProcessEvent, StartRequest};

use common::Agent;

fn run_true() -> StartRequest {
    StartRequest {
        process: Some(ProcessConfig {
            cmd: "/bin/true".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Runs `/bin/true` and stops reading at its `end` event, as the daemon's
/// exec does; returns the exit code.
async fn run_to_end(client: &warren_envd::EnvdClient) -> i32 {
    let mut events = client.start(&run_true(), None).await.unwrap();
    while let Some(ev) = events.next().await {
        if let ProcessEvent::End(end) = ev.unwrap() {
            return end.exit_code;
        }
    }
    panic!("the stream ended without an end event");
}

/// Local ports of the established connections to the agent's `port`.
fn connections_to(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established", "dst", "127.0.0.1"])
        .arg("dport")
        .arg("=")
        .arg(format!(":{port}"))
        .output()
        .expect("ss runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn port_of(agent: &Agent) -> u16 {
    agent.url.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn root_commands_in_a_row_share_one_kept_alive_connection() {
    let agent = Agent::start().await;
    let port = port_of(&agent);
    let client = agent.client();
    assert_eq!(run_to_end(&client).await, 0);
    let first = connections_to(port);
    assert_eq!(
        first.len(),
        1,
        "one warm connection after a command: {first:?}"
    );
    assert_eq!(run_to_end(&client).await, 0);
    assert_eq!(run_to_end(&client).await, 0);
    assert_eq!(connections_to(port), first, "the next commands reused it");
}

#[tokio::test]
async fn root_a_dead_connection_is_dialled_again() {
    let agent = Agent::start().await;
    let port = port_of(&agent);
    let client = agent.client();
    assert_eq!(run_to_end(&client).await, 0);
    let before = connections_to(port);
    assert_eq!(before.len(), 1, "{before:?}");
    // Destroy the pooled connection under the client's feet.
    let killed = std::process::Command::new("ss")
        .args(["-K", "dst", "127.0.0.1", "dport", "=", &format!(":{port}")])
        .output()
        .expect("ss runs");
    assert!(killed.status.success(), "{killed:?}");
    assert!(connections_to(port).is_empty());
    for _ in 0..3 {
        assert_eq!(run_to_end(&client).await, 0);
    }
    let after = connections_to(port);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before);
}
