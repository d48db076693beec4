//! Lifetimes and team quotas end to end: a sandbox forking itself with its
//! own token gets no more time than it has; a team past its quota gets
//! 429 `quota_exceeded` on create (native and E2B), fork and resume; only
//! operators read and set quotas, through the API and the CLI.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warren_api_types::{SandboxList, TeamCreated, TeamQuota};
use warren_e2e::Daemon;

fn at(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("a time"), &Rfc3339).expect("RFC 3339")
}

/// Waits until `key`'s team lists `n` live sandboxes; returns them.
async fn wait_for_sandboxes(d: &Daemon, key: &str, n: usize) -> SandboxList {
    for _ in 0..600 {
        let (status, list) = d.call(key, "GET", "/v1/sandboxes", None).await;
        assert_eq!(status, 200, "{list}");
        let list: SandboxList = serde_json::from_value(list).unwrap();
        let up = list
            .sandboxes
            .iter()
            .filter(|s| s.state == "running")
            .count();
        if up >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} sandboxes never came up\n{}", d.log());
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

/// Kills `key`'s team's sandboxes (the daemon's own clean-up sees only
/// the operator team's).
async fn kill_all(d: &Daemon, key: &str) {
    let (_, list) = d.call(key, "GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_value(list).unwrap();
    for sb in list.sandboxes {
        d.call(key, "DELETE", &format!("/v1/sandboxes/{}", sb.id), None)
            .await;
    }
}

#[tokio::test]
async fn sandbox_forking_itself_gives_branches_no_later_expiry() {
    let d = Daemon::with_base().await;
    // A long lifetime, then cut short by its user: the sandbox has two
    // minutes left, though its timeout setting is an hour.
    let parent = d.create_sandbox(json!({"timeout_s": 3600})).await;
    let (status, cut) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/timeout", parent.id),
            Some(json!({"timeout_s": 120})),
        )
        .await;
    assert_eq!(status, 200, "{cut}");
    let parent_expiry = at(&cut["expires_at"]);

    // It forks itself with its own token, from a background process (the
    // checkpoint resets its connections).
    d.sh(
        &parent.id,
        "(sleep 0.3; curl -s -m 30 -X POST \
           -H \"Authorization: Bearer $(cat \"$WARREN_SANDBOX_TOKEN_FILE\")\" \
           -H 'Content-Type: application/json' -d '{\"count\": 2}' \
           \"$WARREN_API_URL/v1/sandboxes/$WARREN_SANDBOX_ID/fork\") >/dev/null 2>&1 &",
    )
    .await;
    let list = wait_for_sandboxes(&d, &d.key, 3).await;
    let branches: Vec<_> = list
        .sandboxes
        .iter()
        .filter(|s| s.id != parent.id)
        .collect();
    assert_eq!(branches.len(), 2, "{list:?}");
    for b in branches {
        let expiry = OffsetDateTime::parse(&b.expires_at, &Rfc3339).unwrap();
        assert!(
            expiry <= parent_expiry,
            "branch {} expires at {expiry}, after its parent ({parent_expiry})",
            b.id
        );
    }
}

#[tokio::test]
async fn sandbox_team_past_its_quota_gets_429_on_create_fork_and_resume() {
    let d = Daemon::with_base().await;
    let acme = new_team(&d, "acme").await;

    // Only operators set quotas: acme's own admin cannot, not even its own.
    for (method, body) in [("GET", None), ("PUT", Some(json!({"max_sandboxes": 99})))] {
        let (status, err) = d.call(&acme, method, "/v1/teams/acme/quota", body).await;
        assert_eq!(status, 403, "{method}: {err}");
    }
    let (status, q) = d
        .call(
            &d.key,
            "PUT",
            "/v1/teams/acme/quota",
            Some(json!({"max_sandboxes": 2})),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    let q: TeamQuota = serde_json::from_value(q).unwrap();
    assert_eq!(q.quota.max_sandboxes, 2);
    assert!(!q.default);

    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, sb) = d
            .call(&acme, "POST", "/v1/sandboxes", Some(json!({})))
            .await;
        assert_eq!(status, 201, "{sb}");
        ids.push(sb["id"].as_str().unwrap().to_owned());
    }
    // The third create, natively and through E2B's surface.
    let (status, err) = d
        .call(&acme, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "quota_exceeded");
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("team acme is at 2 of 2 running sandboxes"),
        "{message}"
    );
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &acme)
        .json(&json!({"templateID": "base", "timeout": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 429, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 of 2 running sandboxes"),
        "{body}"
    );
    // A fork would pass the limit too.
    let (status, err) = d
        .call(
            &acme,
            "POST",
            &format!("/v1/sandboxes/{}/fork", ids[0]),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "quota_exceeded");

    // A paused sandbox holds no slot, so another may start; then the
    // paused one cannot resume.
    let (status, paused) = d
        .call(
            &acme,
            "POST",
            &format!("/v1/sandboxes/{}/pause", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    let (status, sb) = d
        .call(&acme, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 201, "{sb}");
    let (status, err) = d
        .call(
            &acme,
            "POST",
            &format!("/v1/sandboxes/{}/resume", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 429, "{err}");
    assert_eq!(err["code"], "quota_exceeded");
    let (_, info) = d
        .call(&acme, "GET", &format!("/v1/sandboxes/{}", ids[1]), None)
        .await;
    assert_eq!(info["state"], "paused", "{info}");

    // The operator sees the usage; raising the quota lets it resume.
    let (_, q) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    let q: TeamQuota = serde_json::from_value(q).unwrap();
    assert_eq!(q.usage.sandboxes, 2);
    assert!(q.usage.snapshot_bytes > 0, "{q:?}");
    let (status, _) = d
        .call(
            &d.key,
            "PUT",
            "/v1/teams/acme/quota",
            Some(json!({"max_sandboxes": 3})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, resumed) = d
        .call(
            &acme,
            "POST",
            &format!("/v1/sandboxes/{}/resume", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, 200, "{resumed}");
    // Other teams keep the defaults.
    let (_, q) = d.call(&d.key, "GET", "/v1/teams/default/quota", None).await;
    let q: TeamQuota = serde_json::from_value(q).unwrap();
    assert!(q.default, "{q:?}");
    assert_eq!(q.quota.max_sandboxes, 50);
    kill_all(&d, &acme).await;
}

#[tokio::test]
async fn sandbox_cli_sets_a_team_quota_for_operators_only() {
    let d = Daemon::start().await.expect("daemon starts");
    let acme = new_team(&d, "acme").await;
    let out = d.run_cli(&[
        "team",
        "quota",
        "acme",
        "--max-sandboxes",
        "2",
        "--max-memory",
        "4GiB",
        "--max-snapshot-bytes",
        "10GiB",
        "--max-branches",
        "4",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let q: TeamQuota = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q.team_name, "acme");
    assert_eq!(q.quota.max_sandboxes, 2);
    assert_eq!(q.quota.max_memory_mb, 4096);
    assert_eq!(q.quota.max_snapshot_bytes, 10 << 30);
    assert_eq!(q.quota.max_branches, 4);
    // Flags left out keep their value; the table shows limits and usage.
    let out = d.run_cli(&["team", "quota", "acme", "--max-vcpus", "8"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for line in ["sandboxes", "vcpus", "memory", "snapshots"] {
        assert!(table.contains(line), "{table}");
    }
    assert!(table.contains("4GiB"), "{table}");
    let (_, q) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    assert_eq!(q["quota"]["max_vcpus"], 8);
    assert_eq!(q["quota"]["max_sandboxes"], 2);
    // A bad value is refused before anything changes.
    let out = d.run_cli(&["team", "quota", "acme", "--max-branches", "17"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("max_branches"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // acme's admin is not an operator.
    let out = d
        .cli()
        .env("WARREN_API_KEY", &acme)
        .args(["team", "quota", "acme", "--max-sandboxes", "50"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("teams:manage"), "{err}");
    let (_, q) = d.call(&d.key, "GET", "/v1/teams/acme/quota", None).await;
    assert_eq!(q["quota"]["max_sandboxes"], 2);
}
