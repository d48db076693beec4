//! A sandbox that answered 201 answers its first call, through the native
//! API and the E2B proxy alike, also when it was given the address of a
//! sandbox that was just killed (the lowest free slot is handed out again
//! as soon as a teardown confirms it), and under concurrent creates and kills.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use warren_e2e::Daemon;

/// Waits until the killed sandbox's network namespace is gone: its slot is
/// then released, and the next create is given its addresses.
async fn wait_torn_down(id: &str) {
    let netns = Path::new("/run/netns").join(format!("warren-{id}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while netns.exists() {
        assert!(
            Instant::now() < deadline,
            "sandbox {id} was never torn down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The slot is released right after the namespace goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// `GET /health` of the sandbox's agent through the E2B proxy.
async fn e2b_health(d: &Daemon, id: &str) -> Result<(), String> {
    let resp = d
        .http
        .get(format!("{}/health", d.url))
        .header("E2b-Sandbox-Id", id)
        .header("X-API-Key", &d.key)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {body}"))
    }
}

async fn kill(d: &Daemon, id: &str) {
    let resp = d
        .delete(&format!("/v1/sandboxes/{id}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "kill {id}: {}", resp.status());
}

/// Ends the sandbox's kernel at once, as the OOM killer would: its
/// connections to the host end without a FIN.
fn kill_sentry(id: &str) {
    let status = std::process::Command::new("pkill")
        .args(["-KILL", "-f", &format!("runsc-sandbox.*{id}")])
        .status()
        .unwrap();
    assert!(status.success(), "no runsc-sandbox process of {id} found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_first_call_through_the_e2b_proxy_reaches_a_reused_address() {
    let d = Daemon::with_base().await;
    let mut failures = Vec::new();
    for round in 0..4 {
        let sb = d.create_sandbox(json!({})).await;
        if let Err(e) = e2b_health(&d, &sb.id).await {
            failures.push(format!("round {round}, sandbox {}: {e}", sb.id));
        }
        // The proxy now keeps a connection to this address alive; the
        // sandbox dies without closing it, and the next create is given the
        // same address once the teardown has released it.
        kill_sentry(&sb.id);
        kill(&d, &sb.id).await;
        wait_torn_down(&sb.id).await;
    }
    assert!(
        failures.is_empty(),
        "first calls failed:\n{}\n--- daemon log ---\n{}",
        failures.join("\n"),
        d.log()
    );
}

/// Three clients at once, each create → first call → kill, half of the
/// first calls native and half through the E2B proxy. CI runs 8 rounds a
/// client; `WARREN_FIRST_CALL_ROUNDS` asks for more (docs/reliability.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_first_calls_hold_under_concurrent_creates_and_kills() {
    const CLIENTS: usize = 3;
    let rounds: usize = std::env::var("WARREN_FIRST_CALL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(8);
    let d = std::sync::Arc::new(Daemon::with_base().await);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let d = d.clone();
        clients.spawn(async move {
            let mut failures = Vec::new();
            for round in 0..rounds {
                let sb = d.create_sandbox(json!({})).await;
                let first = if (client + round) % 2 == 0 {
                    e2b_health(&d, &sb.id).await
                } else {
                    let resp = d
                        .post(&format!("/v1/sandboxes/{}/exec", sb.id))
                        .json(&json!({"cmd": ["true"]}))
                        .send()
                        .await
                        .map_err(|e| e.to_string());
                    match resp {
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            match warren_e2e::decode_exec(&text) {
                                Ok(out) if status == 200 && out.exit_code == Some(0) => Ok(()),
                                _ => Err(format!("{status}: {text}")),
                            }
                        }
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = first {
                    failures.push(format!("client {client} round {round} {}: {e}", sb.id));
                }
                kill(&d, &sb.id).await;
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = clients.join_next().await {
        failures.extend(done.unwrap());
    }
    println!(
        "first calls: {} cycles, {} failed",
        CLIENTS * rounds,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "first calls failed:\n{}\n--- daemon log ---\n{}",
        failures.join("\n"),
        d.log()
    );
}
