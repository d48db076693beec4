//! Tenancy end to end: teams see only their own sandboxes, roles and scopes
//! limit what keys do, expired and revoked keys stop at once, and sandbox
//! tokens act for their dispatcher on their own sandbox only.

use serde_json::json;
use warren_api_types::{SandboxList, TeamCreated, WhoAmI};
use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_teams_roles_and_key_lifetimes_are_enforced() {
    let d = Daemon::with_base().await;
    let a = d.key.clone();
    let sb = d.create_sandbox(json!({})).await;

    // The operator creates team B; B's admin mints a member key.
    let (status, created) = d
        .call(
            &a,
            "POST",
            "/v1/teams",
            Some(json!({"name": "team-b", "admin": "bea"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let created: TeamCreated = serde_json::from_value(created).unwrap();
    let b_admin = created.key.secret;
    let b = d.mint(&b_admin, json!({"name": "b-member"})).await;

    // B sees nothing of A: every path answers 404, as if the sandbox did
    // not exist, and B's listing is empty.
    let id = &sb.id;
    for (method, path) in [
        ("GET", format!("/v1/sandboxes/{id}")),
        ("DELETE", format!("/v1/sandboxes/{id}")),
        ("POST", format!("/v1/sandboxes/{id}/timeout")),
        (
            "GET",
            format!("/v1/sandboxes/{id}/files?path=/etc/hostname"),
        ),
    ] {
        let body = (method == "POST").then(|| json!({"timeout_s": 60}));
        let (status, err) = d.call(&b, method, &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {err}");
        assert_eq!(err["code"], "not_found");
    }
    let (status, err) = d
        .call(
            &b,
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"cmd": ["true"]})),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    let (_, list) = d.call(&b, "GET", "/v1/sandboxes", None).await;
    let list: SandboxList = serde_json::from_value(list).unwrap();
    assert!(list.sandboxes.is_empty(), "B lists A's sandboxes: {list:?}");
    // B's admin cannot see or revoke A's keys, nor create teams.
    let a_key_id = a.split('_').nth(1).unwrap();
    let (status, _) = d
        .call(&b_admin, "DELETE", &format!("/v1/keys/{a_key_id}"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = d
        .call(
            &b_admin,
            "POST",
            "/v1/teams",
            Some(json!({"name": "c", "admin": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    // The sandbox is untouched.
    let out = d.sh(id, "echo still here").await;
    assert_eq!(out.stdout_str(), "still here\n");

    // B's audit trail holds B's entries only (its team, its key), and an
    // entry of A's is not found for B; the operator reads both teams'.
    let (status, list) = d
        .call(&b_admin, "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    assert_eq!(status, 200, "{list}");
    let entries = list["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    let b_team = created.team.id.as_str();
    assert!(
        entries.iter().all(|e| e["entry"]["team"] == b_team),
        "{list}"
    );
    assert!(
        entries.iter().any(|e| e["entry"]["action"] == "key.create"),
        "B's key minting is in B's trail: {list}"
    );
    let (_, all) = d
        .call(&a, "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    let all = all["entries"].as_array().unwrap().clone();
    let a_entry = all
        .iter()
        .find(|e| e["entry"]["team"] != b_team)
        .expect("an entry of A's");
    assert!(all.iter().any(|e| e["entry"]["team"] == b_team));
    let index = a_entry["entry"]["index"].as_u64().unwrap();
    let (status, _) = d
        .call(
            &b_admin,
            "GET",
            &format!("/v1/audit/entries/{index}/proof"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // A viewer of team A reads but cannot create or exec.
    let viewer = d
        .mint(&a, json!({"name": "viewer", "role": "viewer"}))
        .await;
    let (status, _) = d
        .call(&viewer, "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, err) = d
        .call(
            &viewer,
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"cmd": ["true"]})),
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["code"], "permission_denied");
    let (status, _) = d
        .call(&viewer, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 403);
    // ... and cannot mint itself a stronger key.
    let (status, _) = d
        .call(&viewer, "POST", "/v1/keys", Some(json!({"name": "x"})))
        .await;
    assert_eq!(status, 403);
    // A member cannot mint an admin key.
    let member = d
        .mint(&a, json!({"name": "member", "scopes": ["sandboxes:read"]}))
        .await;
    let (status, who) = d.call(&member, "GET", "/v1/whoami", None).await;
    assert_eq!(status, 200);
    let who: WhoAmI = serde_json::from_value(who).unwrap();
    assert_eq!(who.scopes, ["sandboxes:read"]);
    let (status, _) = d
        .call(&member, "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(status, 403, "scopes narrow the member role");

    // An expired key and a revoked key get 401.
    let short = d
        .mint(&a, json!({"name": "short", "expires_in_s": 1}))
        .await;
    let (status, _) = d.call(&short, "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, err) = d.call(&short, "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, 401, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("expired"),
        "{err}"
    );
    let viewer_id = viewer.split('_').nth(1).unwrap();
    let (status, _) = d
        .call(&a, "DELETE", &format!("/v1/keys/{viewer_id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = d.call(&viewer, "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, 401);
}

/// What `curl` inside the sandbox gets from its API with its own token.
async fn from_inside(d: &Daemon, id: &str, method: &str, path: &str) -> (u16, String) {
    let script = format!(
        "curl -s -m 5 -o /tmp/body -w '%{{http_code}}' -X {method} \
           -H \"Authorization: Bearer $(cat \"$WARREN_SANDBOX_TOKEN_FILE\")\" \
           -H 'Content-Type: application/json' --data-binary @/dev/null \
           \"$WARREN_API_URL{path}\"; echo; cat /tmp/body"
    );
    let script = if method == "GET" {
        script.replace("--data-binary @/dev/null", "")
    } else {
        script
    };
    let out = d.sh(id, &script).await;
    let text = out.stdout_str();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn sandbox_tokens_act_for_the_dispatcher_on_their_own_sandbox() {
    let d = Daemon::with_base().await;
    let member = d.mint(&d.key, json!({"name": "dispatcher"})).await;
    let create = |key: String| {
        let d = &d;
        async move {
            let (status, sb) = d.call(&key, "POST", "/v1/sandboxes", Some(json!({}))).await;
            assert_eq!(status, 201, "{sb}\n{}", d.log());
            sb["id"].as_str().unwrap().to_owned()
        }
    };
    let sb = create(member.clone()).await;
    let other = create(member.clone()).await;

    // The token file is there; the token is not in the environment.
    let out = d
        .sh(
            &sb,
            "test -s \"$WARREN_SANDBOX_TOKEN_FILE\" && env | grep -c wst_ || true",
        )
        .await;
    assert_eq!(out.stdout_str().trim(), "0", "{}", out.stderr_str());

    let (status, body) = from_inside(&d, &sb, "GET", &format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(status, 200, "{body}\n{}", d.log());
    assert!(body.contains(&sb));
    let (status, body) = from_inside(&d, &sb, "GET", "/v1/whoami").await;
    assert_eq!(status, 200, "{body}");
    let who: WhoAmI = serde_json::from_str(&body).unwrap();
    assert_eq!(who.sandbox.as_deref(), Some(sb.as_str()));
    assert_eq!(who.role, "member");
    assert!(
        !who.scopes.contains(&"sandboxes:exec".to_owned()),
        "{who:?}"
    );

    // Nothing beyond its own reads.
    let (status, _) = from_inside(&d, &sb, "GET", &format!("/v1/sandboxes/{other}")).await;
    assert_eq!(status, 404, "another sandbox of the same team");
    let (status, _) = from_inside(&d, &sb, "POST", "/v1/sandboxes").await;
    assert_eq!(status, 403);
    let (status, _) = from_inside(&d, &sb, "GET", "/v1/sandboxes").await;
    assert_eq!(status, 403);
    let (status, _) = from_inside(&d, &sb, "DELETE", &format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(status, 403);

    // The token is useless outside its sandbox: the main API refuses it,
    // and so does the sandbox listener for any other address.
    let token = d.sh_root(&sb, "cat /run/warren/token").await.stdout_str();
    assert!(token.starts_with("wst_"), "{token}");
    let (status, _) = d
        .call(&token, "GET", &format!("/v1/sandboxes/{sb}"), None)
        .await;
    assert_eq!(status, 401);
    // The issue is in the sandbox's timeline, the token itself nowhere in
    // the audit log.
    let (status, timeline) = d
        .call(&d.key, "GET", &format!("/v1/sandboxes/{sb}/timeline"), None)
        .await;
    assert_eq!(status, 200, "{timeline}");
    assert!(
        timeline["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "token" && e["details"]["reason"] == "start"),
        "{timeline}"
    );
    // (Before the next exec, whose command line carries the token and is
    // recorded verbatim, as every command is.)
    let export = d.get_text("/v1/audit/entries?format=jsonl").await;
    assert!(
        !export.contains(token.trim()),
        "the token leaked into the audit log"
    );

    let script = format!(
        "curl -s -m 5 -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {token}' \
           \"$WARREN_API_URL/v1/sandboxes/{sb}\""
    );
    let out = d.sh(&other, &script).await;
    assert_eq!(out.stdout_str(), "401", "the other sandbox used sb's token");

    // Revoking the dispatcher's key ends the token at once.
    let member_id = member.split('_').nth(1).unwrap();
    let (status, _) = d
        .call(&d.key, "DELETE", &format!("/v1/keys/{member_id}"), None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = from_inside(&d, &sb, "GET", &format!("/v1/sandboxes/{sb}")).await;
    assert_eq!(status, 401, "{body}");
}

/// Waits until team `key` lists a sandbox that `known` does not contain.
async fn new_sandbox_of(d: &Daemon, key: &str, known: &[String]) -> String {
    for _ in 0..400 {
        let (_, list) = d.call(key, "GET", "/v1/sandboxes", None).await;
        let list: SandboxList = serde_json::from_value(list).unwrap();
        if let Some(s) = list
            .sandboxes
            .iter()
            .find(|s| s.state == "running" && !known.contains(&s.id))
        {
            return s.id.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no new sandbox appeared\n{}", d.log());
}

#[tokio::test]
async fn sandbox_forks_get_their_own_tokens_and_snapshots_stay_in_their_team() {
    let d = Daemon::with_base().await;
    let member = d.mint(&d.key, json!({"name": "dispatcher"})).await;
    let (status, sb) = d
        .call(&member, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(status, 201, "{sb}");
    let parent = sb["id"].as_str().unwrap().to_owned();
    let parent_token = d
        .sh_root(&parent, "cat /run/warren/token")
        .await
        .stdout_str();

    // The sandbox forks itself with its own token, from a background
    // process (no exec stream is open across the checkpoint); its own
    // connection is reset by the checkpoint, the fork goes on.
    d.sh(
        &parent,
        "(sleep 0.3; curl -s -m 20 -X POST \
           -H \"Authorization: Bearer $(cat \"$WARREN_SANDBOX_TOKEN_FILE\")\" \
           -H 'Content-Type: application/json' -d '{\"count\": 1}' \
           \"$WARREN_API_URL/v1/sandboxes/$WARREN_SANDBOX_ID/fork\") >/dev/null 2>&1 &",
    )
    .await;
    let branch = new_sandbox_of(&d, &member, std::slice::from_ref(&parent)).await;
    let (_, info) = d
        .call(&member, "GET", &format!("/v1/sandboxes/{branch}"), None)
        .await;
    assert_eq!(
        info["owner"], sb["owner"],
        "the branch acts for the dispatcher"
    );

    // The branch has a token of its own, naming itself; the parent's token,
    // which the branch's memory came from, is no use there.
    let branch_token = d
        .sh_root(&branch, "cat /run/warren/token")
        .await
        .stdout_str();
    assert!(branch_token.starts_with("wst_"), "{branch_token}");
    assert_ne!(branch_token, parent_token);
    let (status, body) = from_inside(&d, &branch, "GET", "/v1/whoami").await;
    assert_eq!(status, 200, "{body}");
    let who: WhoAmI = serde_json::from_str(&body).unwrap();
    assert_eq!(who.sandbox.as_deref(), Some(branch.as_str()));
    let script = format!(
        "curl -s -m 5 -o /dev/null -w '%{{http_code}}' -H 'Authorization: Bearer {}' \
           \"$WARREN_API_URL/v1/sandboxes/{parent}\"",
        parent_token.trim()
    );
    let out = d.sh(&branch, &script).await;
    assert_eq!(
        out.stdout_str(),
        "401",
        "the branch used its parent's token"
    );

    // Snapshots are the team's: another team cannot list them or start a
    // sandbox from one.
    let (status, snap) = d
        .call(
            &member,
            "POST",
            &format!("/v1/sandboxes/{parent}/snapshots"),
            Some(json!({"name": "before"})),
        )
        .await;
    assert_eq!(status, 201, "{snap}");
    let (status, created) = d
        .call(
            &d.key,
            "POST",
            "/v1/teams",
            Some(json!({"name": "other", "admin": "olga"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let other = created["key"]["secret"].as_str().unwrap();
    let (status, _) = d
        .call(
            other,
            "GET",
            &format!("/v1/sandboxes/{parent}/snapshots"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, err) = d
        .call(
            other,
            "POST",
            "/v1/sandboxes",
            Some(json!({"snapshot": snap["id"]})),
        )
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, _) = d
        .call(
            other,
            "POST",
            &format!("/v1/sandboxes/{parent}/fork"),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 404);
}
