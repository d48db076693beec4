//! Warm pools end to end: creates served from a pool carry their caller's
//! team, environment, policy and token and nothing of an earlier claimant;
//! pools refill after claims and shrink when their settings drop; what a
//! pool cannot honour is created cold; only operators manage pools, and
//! bad settings are named; settings survive a restart, pooled sandboxes
//! do not; a frozen pool's sandboxes stay frozen until claimed.

use std::time::Duration;

use serde_json::{Value, json};
use warren_api_types::{PoolList, SandboxList, TeamCreated, TeamQuota, WhoAmI};
use warren_e2e::Daemon;

/// The pool of `template` as `GET /v1/pools` shows it.
async fn pool(d: &Daemon, template: &str) -> Option<warren_api_types::Pool> {
    let (status, list) = d.call(&d.key, "GET", "/v1/pools", None).await;
    assert_eq!(status, 200, "{list}");
    let list: PoolList = serde_json::from_value(list).unwrap();
    list.pools.into_iter().find(|p| p.template == template)
}

/// Sets the pool of `template`; its answer.
async fn set_pool(d: &Daemon, template: &str, body: Value) -> warren_api_types::Pool {
    let (status, answer) = d
        .call(&d.key, "PUT", &format!("/v1/pools/{template}"), Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    serde_json::from_value(answer).unwrap()
}

/// Waits until the pool of `template` holds exactly `n` ready sandboxes
/// and boots none.
async fn wait_ready(d: &Daemon, template: &str, n: u32) {
    let mut last = None;
    for _ in 0..1200 {
        let p = pool(d, template).await;
        if let Some(p) = &p
            && p.ready == n
            && p.booting == 0
        {
            return;
        }
        last = p;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "pool of {template} never had {n} ready: {last:?}\n{}",
        d.log()
    );
}

/// Deletes the pool (so its sandboxes go before the daemon does).
async fn drop_pool(d: &Daemon, template: &str) {
    let (status, body) = d
        .call(&d.key, "DELETE", &format!("/v1/pools/{template}"), None)
        .await;
    assert_eq!(status, 204, "{body}");
}

/// The operator creates team `name`; its admin key.
async fn new_team(d: &Daemon, name: &str) -> String {
    let (status, created) = d
        .call(
            &d.key,
            "POST",
            "/v1/teams",
            Some(json!({"name": name, "admin": "ada"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    serde_json::from_value::<TeamCreated>(created)
        .unwrap()
        .key
        .secret
}

/// Runs `script` in `id` and returns its trimmed stdout.
async fn sh(d: &Daemon, id: &str, script: &str) -> String {
    d.sh(id, script).await.stdout_str().trim().to_owned()
}

/// Runs `script` in `id` with `key`; its stdout, trimmed.
async fn sh_as(d: &Daemon, key: &str, id: &str, script: &str) -> String {
    let (status, out) = d
        .call(
            key,
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"cmd": ["bash", "-c", script]})),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let text = out.as_str().expect("an NDJSON stream");
    warren_e2e::decode_exec(text)
        .unwrap()
        .stdout_str()
        .trim()
        .to_owned()
}

/// Ids of the runsc containers the daemon's runtime has.
fn containers(d: &Daemon) -> Vec<String> {
    let out = std::process::Command::new("runsc")
        .arg("--root")
        .arg(d.data_dir().join("runtime/runsc"))
        .args(["list", "-quiet"])
        .output()
        .expect("runsc runs");
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn sandbox_pooled_creates_carry_the_callers_env_policy_and_token_and_nothing_of_an_earlier_claimant()
 {
    let d = Daemon::with_base().await;
    let other = new_team(&d, "acme").await;
    set_pool(&d, "base", json!({"min": 2, "max": 2})).await;
    wait_ready(&d, "base", 2).await;

    // Pooled sandboxes are no team's: not listed, not counted.
    let (_, list) = d.call(&d.key, "GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_value(list).unwrap();
    assert!(list.sandboxes.is_empty(), "{list:?}");
    let (_, quota) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    let quota: TeamQuota = serde_json::from_value(quota).unwrap();
    assert_eq!(quota.usage.sandboxes, 0);

    // Claimant A (the operator team) leaves a file and its environment.
    let a = d
        .create_sandbox(json!({"env": {"WHO": "a", "ONLY_A": "1"}, "metadata": {"k": "a"}}))
        .await;
    assert_eq!(
        sh(&d, &a.id, "echo a-secret > /tmp/left-by-a; echo $WHO").await,
        "a"
    );

    // Claimant B, another team, with its own policy.
    let policy = json!({"internet": "deny", "allow": ["example.com"]});
    let b: warren_api_types::Sandbox = d
        .created_as(
            &other,
            "/v1/sandboxes",
            json!({"env": {"WHO": "b"}, "metadata": {"k": "b"}, "network": policy}),
        )
        .await;
    assert_ne!(a.id, b.id);
    let p = pool(&d, "base").await.unwrap();
    assert_eq!(
        (p.hits, p.misses),
        (2, 0),
        "both creates came from the pool"
    );

    let (status, info) = d
        .call(&other, "GET", &format!("/v1/sandboxes/{}", b.id), None)
        .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["network"]["allow"], json!(["example.com"]), "{info}");
    assert_eq!(info["metadata"], json!({"k": "b"}));
    assert_eq!(info["state"], "running");
    // The operator's team does not see B, acme sees only B.
    let (status, _) = d
        .call(&d.key, "GET", &format!("/v1/sandboxes/{}", b.id), None)
        .await;
    assert_eq!(status, 404);
    let (_, list) = d.call(&other, "GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_value(list).unwrap();
    let ids: Vec<_> = list.sandboxes.iter().map(|s| s.id.clone()).collect();
    assert_eq!(ids, std::slice::from_ref(&b.id));

    // Nothing of A in B: files, environment.
    let seen = sh_as(
        &d,
        &other,
        &b.id,
        "test -e /tmp/left-by-a && echo found; echo \"$WHO/${ONLY_A:-unset}/$WARREN_SANDBOX_ID\"",
    )
    .await;
    assert_eq!(seen, format!("b/unset/{}", b.id));

    // B's token acts for B in acme.
    let body = sh_as(
        &d,
        &other,
        &b.id,
        "curl -s -m 5 -H \"Authorization: Bearer $(cat \"$WARREN_SANDBOX_TOKEN_FILE\")\" \
         \"$WARREN_API_URL/v1/whoami\"",
    )
    .await;
    let who: WhoAmI = serde_json::from_str(&body).expect(&body);
    assert_eq!(who.sandbox.as_deref(), Some(b.id.as_str()));
    assert_eq!(who.team_name, "acme");

    // Each create is audited as a cold one is, marked pooled.
    let (_, entries) = d
        .call(
            &other,
            "GET",
            &format!("/v1/audit/entries?action=sandbox.create&sandbox={}", b.id),
            None,
        )
        .await;
    let text = entries.to_string();
    assert!(text.contains("\"pooled\":true"), "{text}");

    // acme's quota counts B now.
    let (_, quota) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    let quota: TeamQuota = serde_json::from_value(quota).unwrap();
    assert_eq!(quota.usage.sandboxes, 1);

    d.call(&other, "DELETE", &format!("/v1/sandboxes/{}", b.id), None)
        .await;
    drop_pool(&d, "base").await;
}

#[tokio::test]
async fn sandbox_pools_refill_after_claims_and_shrink_when_settings_drop() {
    let d = Daemon::with_base().await;
    set_pool(&d, "base", json!({"min": 2, "max": 3})).await;
    wait_ready(&d, "base", 2).await;
    let sb = d.create_sandbox(json!({})).await;
    assert_eq!(pool(&d, "base").await.unwrap().hits, 1);
    // Refilled: two ready again (the one create's burst is below min).
    wait_ready(&d, "base", 2).await;
    assert_eq!(sh(&d, &sb.id, "echo up").await, "up");

    // Lower settings shrink it.
    set_pool(&d, "base", json!({"min": 0, "max": 1})).await;
    wait_ready(&d, "base", 1).await;
    // Deleted, it drains and is gone.
    drop_pool(&d, "base").await;
    assert!(pool(&d, "base").await.is_none());
    for _ in 0..600 {
        if containers(&d).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(containers(&d), std::slice::from_ref(&sb.id), "{}", d.log());
}

#[tokio::test]
async fn sandbox_pool_falls_back_to_cold_for_requests_it_cannot_honour() {
    let d = Daemon::with_base().await;
    set_pool(&d, "base", json!({"min": 1, "max": 1})).await;
    wait_ready(&d, "base", 1).await;
    // Another size than the pool's.
    let sb = d.create_sandbox(json!({"memory_mb": 320})).await;
    assert_eq!(sh(&d, &sb.id, "echo cold").await, "cold");
    let p = pool(&d, "base").await.unwrap();
    assert_eq!((p.hits, p.misses, p.ready), (0, 1, 1), "{p:?}");
    let (_, info) = d
        .call(&d.key, "GET", &format!("/v1/sandboxes/{}", sb.id), None)
        .await;
    assert_eq!(info["memory_mb"], 320, "{info}");
    drop_pool(&d, "base").await;
}

#[tokio::test]
async fn sandbox_pool_routes_are_for_operators_only_and_bad_input_is_named() {
    let d = Daemon::with_base().await;
    let other = new_team(&d, "acme").await;
    for (method, path, body) in [
        ("GET", "/v1/pools", None),
        ("PUT", "/v1/pools/base", Some(json!({"min": 0, "max": 1}))),
        ("DELETE", "/v1/pools/base", None),
    ] {
        let (status, answer) = d.call(&other, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    for (body, path, word) in [
        (json!({"min": 3, "max": 2}), "/v1/pools/base", "min"),
        (json!({"min": 0, "max": 100000}), "/v1/pools/base", "max"),
        (json!({"min": 0, "max": 0}), "/v1/pools/base", "max"),
        (json!({"min": 0, "max": 1}), "/v1/pools/no-such", "template"),
        (
            json!({"min": 0, "max": 1, "memory_mb": 1}),
            "/v1/pools/base",
            "memory_mb",
        ),
        (json!({"max": 1}), "/v1/pools/base", "min"),
    ] {
        let (status, answer) = d.call(&d.key, "PUT", path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(word), "{body}: {message}");
    }
    assert!(pool(&d, "base").await.is_none());
    let (status, _) = d.call(&d.key, "DELETE", "/v1/pools/base", None).await;
    assert_eq!(status, 404);

    // The CLI sets, lists (a table, or JSON) and removes.
    let out = d.run_cli(&["pool", "set", "base", "--min", "0", "--max", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = d.run_cli(&["pool", "ls"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TEMPLATE") && text.contains("base"), "{text}");
    let out = d.run_cli(&["pool", "ls", "--json"]);
    let list: PoolList = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(list.pools[0].max, 1);
    let out = d.run_cli(&["pool", "rm", "base"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pool(&d, "base").await.is_none());
}

#[tokio::test]
async fn sandbox_pool_settings_survive_a_restart_and_its_sandboxes_are_replaced() {
    let mut d = Daemon::with_base().await;
    set_pool(&d, "base", json!({"min": 1, "max": 1})).await;
    wait_ready(&d, "base", 1).await;
    let before = containers(&d);
    assert_eq!(before.len(), 1, "{before:?}");
    // A crash: the pooled sandbox outlives the daemon.
    d.stop_with(nix::sys::signal::Signal::SIGKILL).unwrap();
    d.restart().await.unwrap();
    let p = pool(&d, "base").await.expect("the pool is still set");
    assert_eq!((p.min, p.max), (1, 1));
    wait_ready(&d, "base", 1).await;
    let mut after = containers(&d);
    for _ in 0..600 {
        if after.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = containers(&d);
    }
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after, before, "the old pooled sandbox was torn down");
    // The new one serves a create.
    let sb = d.create_sandbox(json!({})).await;
    assert_eq!(sh(&d, &sb.id, "echo ok").await, "ok");
    assert_eq!(pool(&d, "base").await.unwrap().hits, 1);
    drop_pool(&d, "base").await;
}

#[tokio::test]
async fn sandbox_pooled_sandbox_enforces_its_claimants_network_policy() {
    let net = warren_e2e::internet::Internet::start(&[
        ("good.example.test", 2),
        ("other.example.test", 3),
    ])
    .await
    .expect("test internet");
    net.wait_ready().await.expect("test servers");
    let upstream = net.dns.to_string();
    let d = Daemon::with_base_and(&["--dns-upstream", &upstream]).await;
    set_pool(&d, "base", json!({"min": 1, "max": 1})).await;
    wait_ready(&d, "base", 1).await;
    let sb = d
        .create_sandbox(json!({"network": {"allow": ["good.example.test"]}}))
        .await;
    assert_eq!(pool(&d, "base").await.unwrap().hits, 1);
    let curl = |url: &'static str| {
        let (d, id) = (&d, sb.id.clone());
        async move {
            sh(
                d,
                &id,
                &format!("curl -sS -m 5 {url} 2>/dev/null || echo \"failed (rc $?)\""),
            )
            .await
        }
    };
    let body = curl("http://good.example.test/").await;
    assert!(body.contains("good.example.test"), "allowed: {body}");
    let body = curl("http://other.example.test/").await;
    assert!(body.starts_with("failed"), "not allowed: {body}");
    drop_pool(&d, "base").await;
}

/// Ids of the sandboxes whose cgroup the freezer holds frozen now (v1 or v2).
fn frozen_sandboxes() -> std::collections::HashSet<String> {
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let root = if v2 {
        std::path::PathBuf::from("/sys/fs/cgroup")
    } else {
        std::path::PathBuf::from("/sys/fs/cgroup/freezer")
    };
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Default::default();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_prefix("warren-")?.to_owned();
            let frozen = if v2 {
                std::fs::read_to_string(e.path().join("cgroup.freeze")).ok()? == "1\n"
            } else {
                std::fs::read_to_string(e.path().join("freezer.state")).ok()? == "FROZEN\n"
            };
            frozen.then_some(id)
        })
        .collect()
}

#[tokio::test]
async fn sandbox_a_frozen_pool_keeps_its_sandboxes_frozen_until_a_claim_thaws_one() {
    let d = Daemon::with_base().await;
    let before = frozen_sandboxes();
    let p = set_pool(&d, "base", json!({"min": 1, "max": 1, "frozen": true})).await;
    assert!(p.frozen);
    wait_ready(&d, "base", 1).await;
    let frozen_now: Vec<String> = frozen_sandboxes().difference(&before).cloned().collect();

    let sb = d.create_sandbox(json!({"env": {"WHO": "claimant"}})).await;
    assert!(
        frozen_now.contains(&sb.id),
        "the claimed sandbox {} was one the pool kept frozen: {frozen_now:?}",
        sb.id
    );
    assert!(!frozen_sandboxes().contains(&sb.id), "the claim thawed it");
    assert_eq!(sh(&d, &sb.id, "echo $WHO").await, "claimant");
    let hits = pool(&d, "base").await.unwrap().hits;
    assert_eq!(hits, 1);
    // Unfreezing the pool's settings replaces its frozen sandboxes.
    set_pool(&d, "base", json!({"min": 1, "max": 1})).await;
    wait_ready(&d, "base", 1).await;
    let again = d.create_sandbox(json!({})).await;
    assert!(!frozen_now.contains(&again.id));
    assert_eq!(sh(&d, &again.id, "echo up").await, "up");
}
