//! Admission under load: a burst of concurrent creates larger than the
//! daemon starts at once is served or refused at once with a retry hint,
//! never left hanging, while the daemon keeps answering; and a host short
//! of memory refuses new sandboxes while the running ones keep working.
//! The full burst (100 creates) and the capacity probe are in the bench
//! harness (`warren-bench load`, docs/reliability.md).

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;
use warren_e2e::Daemon;
use warren_e2e::load::{self, Outcome};

/// Creates of the CI burst; `WARREN_LOAD_CREATES` sets another number.
const CI_CREATES: usize = 32;

fn small() -> serde_json::Value {
    json!({"template": "base", "memory_mb": 128, "disk_mb": 256, "timeout_s": 600})
}

#[tokio::test]
async fn sandbox_burst_of_creates_is_served_or_refused_fast_with_a_retry_hint() {
    let creates = std::env::var("WARREN_LOAD_CREATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CREATES);
    // Two turns and a queue of six: most of the burst cannot wait.
    let d = Daemon::with_base_and(&["--max-creating", "2", "--create-queue", "6"]).await;
    load::raise_quota(&d, creates + 10).await.unwrap();

    let burst = load::burst(&d, creates, &small()).await;
    let created = burst.created();
    let refused = burst.refused();
    println!(
        "load: {creates} creates in {:?}: {} created, {} refused, {} failed; {} health calls",
        burst.elapsed,
        created.len(),
        refused.len(),
        burst.failed().len(),
        burst.health.len()
    );
    // Every call ended: created, or refused with a hint (the classifier
    // counts anything else, a call past the bound included, as failed).
    assert!(
        burst.failed().is_empty(),
        "{:#?}\n{}",
        burst.failed(),
        d.log()
    );
    assert!(!created.is_empty(), "nothing was created\n{}", d.log());
    assert!(
        !refused.is_empty(),
        "a burst of {creates} fit two turns and a queue of six"
    );
    for r in &refused {
        let Outcome::Refused { status, code, .. } = r else {
            unreachable!()
        };
        assert_eq!((*status, code.as_str()), (503, "unavailable"), "{r:?}");
    }
    // The daemon answered health all along.
    assert!(
        burst.health_failures.is_empty(),
        "{:?}",
        burst.health_failures
    );
    assert!(!burst.health.is_empty());

    // Every sandbox the burst created ran its first command.
    for (id, _, ready) in &created {
        assert!(ready.is_ok(), "{id}: {ready:?}\n{}", d.log());
    }

    // A refused caller that waits as told gets its sandbox.
    let Some(Outcome::Refused { retry_after_s, .. }) = refused.first() else {
        unreachable!()
    };
    let mut wait = Duration::from_secs(u64::from(*retry_after_s));
    let mut tries = 0;
    let id = loop {
        tokio::time::sleep(wait).await;
        let (status, body) = d.call(&d.key, "POST", "/v1/sandboxes", Some(small())).await;
        if status == 201 {
            break body["id"].as_str().unwrap().to_owned();
        }
        tries += 1;
        assert!(tries < 10 && status == 503, "{status}: {body}");
        wait = Duration::from_secs(body["retry_after_s"].as_u64().unwrap());
    };
    assert_eq!(d.sh(&id, "echo ok").await.stdout_str(), "ok\n");
}

#[tokio::test]
async fn sandbox_host_short_of_memory_refuses_new_sandboxes_and_keeps_running_ones() {
    // Without standby a resume restores the paused sandbox's image: it
    // needs memory again.
    let mut d = Daemon::with_base_and(&["--standby", "0"]).await;
    let running = d.create_sandbox(small()).await;
    let paused = d.create_sandbox(small()).await;
    let (status, body) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/pause", paused.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    d.sh(&running.id, "echo kept > /tmp/kept").await;

    // The same host, with a reserve larger than any host's memory.
    d.stop_with(Signal::SIGTERM).unwrap();
    d.set_serve_args(&["--standby", "0", "--memory-reserve-mb", "100000000"]);
    d.restart().await.unwrap();

    let refusals = [
        ("POST", "/v1/sandboxes".to_owned(), Some(small())),
        (
            "POST",
            format!("/v1/sandboxes/{}/fork", running.id),
            Some(json!({"count": 1})),
        ),
        ("POST", format!("/v1/sandboxes/{}/resume", paused.id), None),
    ];
    for (method, path, body) in refusals {
        let resp = d
            .http
            .request(method.parse().unwrap(), format!("{}{path}", d.url))
            .bearer_auth(&d.key)
            .json(&body.unwrap_or(json!({})))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "{path}");
        let header = resp.headers()[reqwest::header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .to_owned();
        let err: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(err["code"], "unavailable", "{path}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("short of memory"),
            "{err}"
        );
        assert_eq!(header, err["retry_after_s"].to_string(), "{path}");
    }
    // E2B's create is refused the same way.
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .json(&json!({"templateID": "base", "timeout": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key(reqwest::header::RETRY_AFTER));

    // What runs keeps working; what is paused stays paused.
    let out = d.sh(&running.id, "cat /tmp/kept").await;
    assert_eq!(out.stdout_str(), "kept\n");
    let sb: warren_api_types::Sandbox = d.get_json(&format!("/v1/sandboxes/{}", paused.id)).await;
    assert_eq!(sb.state, "paused");
    let list: warren_api_types::SandboxList = d.get_json("/v1/sandboxes").await;
    assert_eq!(list.sandboxes.len(), 2, "{list:?}");
}
