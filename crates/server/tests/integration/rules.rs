//! Anomaly rules through the real services over the fake runtime (memory
//! is a fixed 8 MiB plus the files written) and the manual clock: a rule
//! fires once its condition has held long enough, acts, and shows in the
//! sandbox's timeline; team rules replace the operator's and the defaults;
//! who may set which.

use http::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use warren_server::testing::InProcess;

use crate::fixtures::{rival_team, start};

async fn state(w: &InProcess, key: &str, id: &str) -> String {
    let (_, info) = w
        .call(Some(key), "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    info["state"].as_str().unwrap().to_owned()
}

/// Sandbox `id`'s timeline.
async fn timeline(w: &InProcess, key: &str, id: &str) -> Value {
    let (_, timeline) = w
        .call(
            Some(key),
            "GET",
            &format!("/v1/sandboxes/{id}/timeline"),
            None,
        )
        .await;
    timeline
}

/// Replaces the team's rules with `rules`; the answer.
async fn set_rules(w: &InProcess, key: &str, rules: Value) -> Value {
    let (status, set) = w
        .call(
            Some(key),
            "PUT",
            "/v1/rules",
            Some(json!({ "rules": rules })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    set
}

#[tokio::test]
async fn a_rule_fires_after_its_condition_held_and_pauses_the_sandbox() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let set = set_rules(
        &w,
        &admin,
        json!([{"kind": "memory", "threshold": 0.01, "for_s": 120, "action": "pause"}]),
    )
    .await;
    let effective = set["effective"].as_array().unwrap();
    let memory = effective.iter().find(|r| r["kind"] == "memory").unwrap();
    assert_eq!(memory["threshold"], 0.01, "{set}");
    assert!(
        effective
            .iter()
            .any(|r| r["kind"] == "cpu" && r["action"] == "notify"),
        "{set}"
    );

    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/sandboxes",
            Some(json!({"memory_mb": 512})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    // 8 MiB of 512 is past 1 %, but not yet for two minutes.
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(60));
    w.sample_meter().await;
    assert_eq!(state(&w, &admin, &id).await, "running");
    w.clock.advance(Duration::seconds(61));
    w.sample_meter().await;
    assert_eq!(state(&w, &admin, &id).await, "paused");

    let timeline = timeline(&w, &admin, &id).await;
    let events = timeline["events"].as_array().unwrap();
    let fired: Vec<&Value> = events.iter().filter(|e| e["kind"] == "rule").collect();
    assert_eq!(fired.len(), 1, "{timeline}");
    let summary = fired[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("rule memory fired") && summary.contains("pause"),
        "{summary}"
    );
    assert_eq!(fired[0]["actor"], json!(["system:rules"]), "{timeline}");
    assert!(events.iter().any(|e| e["kind"] == "paused"), "{timeline}");
}

#[tokio::test]
async fn rules_are_set_by_team_admins_and_operators_and_checked() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let member = w.key("member").await;
    let body = json!({"rules": [{"kind": "cpu", "threshold": 0.5, "for_s": 60, "action": "kill"}]});
    let (status, _) = w
        .call(Some(&member), "PUT", "/v1/rules", Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, read) = w.call(Some(&member), "GET", "/v1/rules", None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(
        read["effective"].as_array().unwrap().len(),
        5,
        "defaults: {read}"
    );

    // The operator's rule applies to every team; a team's own replaces it.
    let mut operator = body.clone();
    operator["scope"] = json!("operator");
    let (status, set) = w
        .call(Some(&admin), "PUT", "/v1/rules", Some(operator.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let (rival, _) = rival_team(&w, &admin).await;
    let (_, theirs) = w.call(Some(&rival), "GET", "/v1/rules", None).await;
    let cpu = |set: &Value| {
        set["effective"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "cpu")
            .cloned()
            .unwrap()
    };
    assert_eq!(cpu(&theirs)["action"], "kill", "{theirs}");
    let (status, _) = w
        .call(Some(&rival), "PUT", "/v1/rules", Some(operator))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a team admin is not an operator"
    );
    let (status, own) = w
        .call(
            Some(&rival),
            "PUT",
            "/v1/rules",
            Some(json!({"rules": [{"kind": "cpu", "threshold": 0.9, "for_s": 0, "action": "notify"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    assert_eq!(cpu(&own)["action"], "notify", "{own}");
    let (_, mine) = w.call(Some(&admin), "GET", "/v1/rules", None).await;
    assert_eq!(
        cpu(&mine)["action"],
        "kill",
        "another team's rule stays theirs: {mine}"
    );

    for bad in [
        json!({"rules": [{"kind": "disk", "threshold": 0.5, "action": "pause"}]}),
        json!({"rules": [{"kind": "cpu", "threshold": 2.0, "action": "pause"}]}),
        json!({"rules": [{"kind": "cpu", "threshold": 0.5, "action": "explode"}]}),
        json!({"rules": [{"kind": "cpu", "threshold": 0.5, "for_s": 999999999, "action": "pause"}]}),
        json!({"rules": [
            {"kind": "cpu", "threshold": 0.5, "action": "pause"},
            {"kind": "cpu", "threshold": 0.6, "action": "kill"}
        ]}),
        json!({"scope": "planet", "rules": []}),
        json!({"rules": [], "extra": 1}),
    ] {
        let (status, body) = w
            .call(Some(&admin), "PUT", "/v1/rules", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_burst_of_forks_fires_the_forks_rule_on_the_forked_sandbox() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    set_rules(
        &w,
        &admin,
        json!([{"kind": "forks", "threshold": 4, "for_s": 0, "action": "pause"}]),
    )
    .await;
    let (_, body) = w
        .call(Some(&admin), "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let fork = format!("/v1/sandboxes/{id}/fork");

    // Two branches in a minute: under four a minute.
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(60));
    let (status, forked) = w
        .call(Some(&admin), "POST", &fork, Some(json!({"count": 2})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{forked}");
    w.sample_meter().await;
    assert_eq!(state(&w, &admin, &id).await, "running");

    // Five more within the next minute: the rule pauses the forking one.
    w.clock.advance(Duration::seconds(60));
    let (status, forked) = w
        .call(Some(&admin), "POST", &fork, Some(json!({"count": 5})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{forked}");
    w.sample_meter().await;
    assert_eq!(state(&w, &admin, &id).await, "paused");
    let branch = forked["sandboxes"][0]["id"].as_str().unwrap();
    assert_eq!(
        state(&w, &admin, branch).await,
        "running",
        "branches are left"
    );
    let timeline = timeline(&w, &admin, &id).await;
    let summaries: Vec<&str> = timeline["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "rule")
        .filter_map(|e| e["summary"].as_str())
        .collect();
    assert_eq!(summaries.len(), 1, "{timeline}");
    assert!(
        summaries[0].starts_with("rule forks fired: 5.0000 at or above 4"),
        "{summaries:?}"
    );
}
