//! Metering through the real services over the fake runtime, whose CPU
//! counter moves 1 ms per command and whose memory is a fixed base plus
//! the files written, sampled at the manual clock's time: exact sums,
//! wall time by state, costs under the default prices, a sandbox's own
//! usage, and who may read which team's usage.

use http::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use warren_server::testing::InProcess;

use crate::fixtures::{rival_team, start};

async fn create(w: &InProcess, key: &str, task: &str) -> String {
    let (status, body) = w
        .call(
            Some(key),
            "POST",
            "/v1/sandboxes",
            Some(json!({"metadata": {"task": task}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn exec_true(w: &InProcess, key: &str, id: &str) {
    let (status, body) = w
        .call(
            Some(key),
            "POST",
            &format!("/v1/sandboxes/{id}/exec"),
            Some(json!({"cmd": ["true"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn usage(w: &InProcess, key: &str, query: &str) -> (StatusCode, Value) {
    w.call(Some(key), "GET", &format!("/v1/usage?{query}"), None)
        .await
}

fn group<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key} in {report}"))
}

#[tokio::test]
async fn cpu_wall_time_by_state_and_cost_are_metered_per_task() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let a = create(&w, &admin, "build").await;
    let b = create(&w, &admin, "build").await;
    let c = create(&w, &admin, "review").await;
    for _ in 0..3 {
        exec_true(&w, &admin, &a).await;
    }
    exec_true(&w, &admin, &b).await;
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(60));
    w.sample_meter().await;

    // `c` is paused: from now on it accrues paused time and no CPU.
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            &format!("/v1/sandboxes/{c}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(30));
    exec_true(&w, &admin, &a).await;
    w.sample_meter().await;

    let (status, by_task) = usage(&w, &admin, "group_by=metadata.task").await;
    assert_eq!(status, StatusCode::OK, "{by_task}");
    let build = group(&by_task, "build");
    assert_eq!(build["sandboxes"], 2);
    // 3 + 1 commands in `a` (1 ms each) and 1 in `b`.
    assert_eq!(build["usage"]["cpu_seconds"], 0.005, "{build}");
    let review = group(&by_task, "review");
    assert_eq!(review["usage"]["cpu_seconds"], 0.0, "{review}");
    let running = review["usage"]["running_seconds"].as_f64().unwrap();
    let paused = review["usage"]["paused_seconds"].as_f64().unwrap();
    // The store stamps creation with the system's time, the meter with the
    // test's clock: within a second of each other.
    assert!((59.0..61.0).contains(&running), "{review}");
    assert!((30.0..31.0).contains(&paused), "{review}");
    assert!(
        review["usage"]["snapshot_gib_hours"].as_f64().unwrap() > 0.0,
        "{review}"
    );

    // Memory held for 90 s by each running sandbox, priced by the table.
    let a_only = group(&usage(&w, &admin, "group_by=sandbox").await.1, &a).clone();
    let gib_s = a_only["usage"]["memory_gib_seconds"].as_f64().unwrap();
    assert!(gib_s > 0.0, "{a_only}");
    let cost = &a_only["usage"]["cost"];
    assert_eq!(cost["currency"], "USD");
    let expected = 0.004 * 0.000_014 + gib_s * 0.000_004_5;
    assert!(
        (cost["total"].as_f64().unwrap() - expected).abs() < 1e-12,
        "{cost}"
    );

    // The sandbox's own detail shows the same sums.
    let (_, detail) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{a}"), None)
        .await;
    assert_eq!(detail["usage"]["cpu_seconds"], 0.004, "{detail}");
    assert_eq!(detail["usage"]["cost"], *cost);

    let total = by_task["total"]["cpu_seconds"].as_f64().unwrap();
    assert!((total - 0.005).abs() < 1e-9, "{by_task}");
}

#[tokio::test]
async fn teams_read_their_own_usage_and_bad_queries_are_refused() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let mine = create(&w, &admin, "x").await;
    exec_true(&w, &admin, &mine).await;
    let (rival, rival_team) = rival_team(&w, &admin).await;
    let theirs = create(&w, &rival, "y").await;
    w.clock.advance(Duration::seconds(5));
    w.sample_meter().await;

    // A member team sees its own sandboxes only, and may not ask for others.
    let (status, report) = usage(&w, &rival, "group_by=sandbox").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let keys: Vec<&Value> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["key"])
        .collect();
    assert_eq!(keys, vec![&json!(theirs)]);
    let (status, body) = usage(&w, &rival, "team=tother000000").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "permission_denied");

    // The operator sees both teams, or one.
    let (_, all) = usage(&w, &admin, "group_by=team").await;
    assert_eq!(all["groups"].as_array().unwrap().len(), 2, "{all}");
    let (_, one) = usage(&w, &admin, &format!("group_by=sandbox&team={rival_team}")).await;
    assert_eq!(one["groups"].as_array().unwrap().len(), 1, "{one}");

    for bad in [
        "group_by=owner",
        "group_by=metadata.",
        "since=yesterday",
        "since=1h&until=2h",
        "since=500d",
        "format=xml",
        "limit=3",
    ] {
        let (status, body) = usage(&w, &admin, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {body}"
        );
    }

    // CSV: a header and a line per group.
    let req = http::Request::builder()
        .uri("/v1/usage?group_by=sandbox&format=csv")
        .header("authorization", format!("Bearer {admin}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, csv) = w.send(req).await;
    assert_eq!(status, StatusCode::OK);
    let csv = csv.as_str().unwrap();
    assert!(csv.starts_with("key,sandboxes,cpu_seconds,"), "{csv}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(&format!("\"{mine}\",1,0.001,")), "{csv}");
}

#[tokio::test]
async fn metrics_show_each_teams_usage_since_the_start() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let id = create(&w, &admin, "m").await;
    for _ in 0..5 {
        exec_true(&w, &admin, &id).await;
    }
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(30));
    w.sample_meter().await;
    let (status, text) = w.call(Some(&admin), "GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    let (_, me) = w.call(Some(&admin), "GET", "/v1/whoami", None).await;
    let team = me["team"].as_str().unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("warren_team_cpu_seconds{{team=\"{team}\"}}")))
        .unwrap_or_else(|| panic!("no team CPU series in:\n{text}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((value - 0.005).abs() < 1e-9, "{line}");
    assert!(
        text.lines().any(|l| l.starts_with("warren_team_cost{")
            && l.contains(&format!("team=\"{team}\""))
            && l.contains("currency=\"USD\"")),
        "{text}"
    );
}

/// `GET /v1/sandboxes/{id}/metrics`: the sandbox's metered minutes, the CPU
/// its commands took and its memory while it ran; bad windows are 400,
/// another team's sandbox 404.
#[tokio::test]
async fn a_sandboxs_minutes_are_charted_from_the_meter() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let id = create(&w, &admin, "chart").await;
    w.sample_meter().await;
    for _ in 0..3 {
        exec_true(&w, &admin, &id).await;
    }
    w.clock.advance(Duration::seconds(61));
    w.sample_meter().await;
    let path = format!("/v1/sandboxes/{id}/metrics");
    let (status, body) = w.call(Some(&admin), "GET", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let minutes = body["minutes"].as_array().unwrap();
    assert!(!minutes.is_empty(), "{body}");
    let cpu: f64 = minutes
        .iter()
        .map(|m| m["cpu_cores"].as_f64().unwrap())
        .sum();
    // 3 commands of 1 ms each, over minutes of 60 s.
    assert!((cpu - 0.003 / 60.0).abs() < 1e-9, "{body}");
    assert!(
        minutes
            .iter()
            .any(|m| m["memory_mib"].as_f64().unwrap() > 0.0),
        "{body}"
    );
    let times: Vec<&str> = minutes
        .iter()
        .map(|m| m["minute"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    for bad in ["minutes=0", "minutes=1441", "minutes=x", "since=1h"] {
        let (status, body) = w
            .call(Some(&admin), "GET", &format!("{path}?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (rival, _) = rival_team(&w, &admin).await;
    let (status, _) = w.call(Some(&rival), "GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
