//! Budgets through the real services over the fake runtime and the manual
//! clock: the warning goes out once at 80 %, at 100 % creates and resumes
//! are refused with 402 and running sandboxes are paused, an operator's
//! lift lets work go on, and who may read and set which budgets.

use http::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use warren_server::testing::InProcess;

use crate::fixtures::{rival_team, start};

async fn create(w: &InProcess, key: &str) -> (StatusCode, Value) {
    w.call(Some(key), "POST", "/v1/sandboxes", Some(json!({})))
        .await
}

async fn budget(w: &InProcess, key: &str, id: &str) -> Value {
    let (status, list) = w.call(Some(key), "GET", "/v1/budgets", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no budget {id} in {list}"))
}

async fn audited(w: &InProcess, key: &str, action: &str) -> usize {
    let (status, audit) = w
        .call(
            Some(key),
            "GET",
            &format!("/v1/audit/entries?action={action}&limit=1000"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    audit["entries"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_spent_budget_warns_once_refuses_new_work_and_pauses_its_sandboxes() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (_, first) = create(&w, &admin).await;
    let a = first["id"].as_str().unwrap().to_owned();

    // What one fake sandbox costs a minute (its memory, by the price table).
    w.sample_meter().await;
    w.clock.advance(Duration::seconds(60));
    w.sample_meter().await;
    let (_, usage) = w
        .call(Some(&admin), "GET", "/v1/usage?group_by=team", None)
        .await;
    let per_minute = usage["total"]["cost"]["total"].as_f64().unwrap();
    assert!(per_minute > 0.0, "{usage}");

    // A day's budget worth ten such minutes from now on.
    let amount = per_minute * 11.0;
    let (status, created) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/budgets",
            Some(json!({"period": "day", "amount": amount, "action": "pause"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["currency"], "USD");
    assert!(!created["warned"].as_bool().unwrap() && !created["exceeded"].as_bool().unwrap());

    // Minute by minute: the warning once past 80 %, nothing else before 100 %.
    let mut warned_at = None;
    for minute in 2..=12 {
        w.clock.advance(Duration::seconds(60));
        w.sample_meter().await;
        let b = budget(&w, &admin, &id).await;
        if b["exceeded"].as_bool().unwrap() {
            break;
        }
        if warned_at.is_none() && b["warned"].as_bool().unwrap() {
            warned_at = Some(minute);
            assert!(b["spend"].as_f64().unwrap() >= 0.8 * amount, "{b}");
        }
        let (status, body) = create(&w, &admin).await;
        assert_eq!(status, StatusCode::CREATED, "minute {minute}: {body}");
        let extra = body["id"].as_str().unwrap().to_owned();
        w.call(
            Some(&admin),
            "DELETE",
            &format!("/v1/sandboxes/{extra}"),
            None,
        )
        .await;
    }
    assert!(
        warned_at.is_some(),
        "no warning before the budget was spent"
    );
    let b = budget(&w, &admin, &id).await;
    assert!(b["exceeded"].as_bool().unwrap(), "{b}");
    w.sample_meter().await;
    assert_eq!(audited(&w, &admin, "budget.warning").await, 1);
    assert_eq!(audited(&w, &admin, "budget.exceeded").await, 1);

    // Spent: new work is refused with 402, the running sandbox is paused.
    let (status, body) = create(&w, &admin).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    assert_eq!(body["code"], "budget_exceeded");
    assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
    let (_, info) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{a}"), None)
        .await;
    assert_eq!(info["state"], "paused", "{info}");
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            &format!("/v1/sandboxes/{a}/resume"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");

    // An operator lifts it for the day: work goes on, nothing is paused.
    let (status, lifted) = w
        .call(
            Some(&admin),
            "PUT",
            &format!("/v1/budgets/{id}/override"),
            Some(json!({"lifted": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{lifted}");
    assert_eq!(lifted["lifted"], true);
    let (status, body) = w
        .call(
            Some(&admin),
            "POST",
            &format!("/v1/sandboxes/{a}/resume"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    w.clock.advance(Duration::seconds(60));
    w.sample_meter().await;
    let (_, info) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{a}"), None)
        .await;
    assert_eq!(info["state"], "running", "{info}");

    // Raising the amount works too, and the warning may come again.
    let (status, raised) = w
        .call(
            Some(&admin),
            "PUT",
            &format!("/v1/budgets/{id}"),
            Some(json!({"amount": amount * 100.0})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raised}");
    assert_eq!(raised["warned"], false, "{raised}");
}

#[tokio::test]
async fn budgets_belong_to_their_team_and_bad_ones_are_refused() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let member = w.key("member").await;
    let (status, body) = w
        .call(
            Some(&member),
            "POST",
            "/v1/budgets",
            Some(json!({"period": "month", "amount": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, created) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/budgets",
            Some(json!({"period": "month", "amount": 5})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["action"], "pause");
    // Members read their team's budgets.
    let (status, list) = w.call(Some(&member), "GET", "/v1/budgets", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["budgets"].as_array().unwrap().len(), 1);

    let (rival, _) = rival_team(&w, &admin).await;
    let (_, theirs) = w.call(Some(&rival), "GET", "/v1/budgets", None).await;
    assert_eq!(theirs["budgets"], json!([]), "{theirs}");
    for (method, path, body) in [
        (
            "PUT",
            format!("/v1/budgets/{id}"),
            Some(json!({"amount": 1e9})),
        ),
        ("DELETE", format!("/v1/budgets/{id}"), None),
    ] {
        let (status, answer) = w.call(Some(&rival), method, &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    let (status, _) = w
        .call(
            Some(&rival),
            "PUT",
            &format!("/v1/budgets/{id}/override"),
            Some(json!({"lifted": true})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only operators lift budgets");

    for bad in [
        json!({"period": "week", "amount": 5}),
        json!({"period": "day", "amount": -1}),
        json!({"period": "day", "amount": 5, "action": "explode"}),
        json!({"period": "day", "amount": 5, "user": "unobody00000"}),
        json!({"period": "day", "amount": 5, "key": "not a key"}),
        json!({"period": "day", "amount": 5, "extra": true}),
        json!({"period": "day"}),
    ] {
        let (status, body) = w
            .call(Some(&admin), "POST", "/v1/budgets", Some(bad.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{bad}: {body}"
        );
    }

    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("/v1/budgets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("/v1/budgets/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
