//! Template aliases in process over the fake runtime: the built-in
//! `code-interpreter-v1` is listed, an operator's alias starts sandboxes of
//! its target, other teams and members cannot set one (403), bad names and
//! chains are 400, and an unknown template's 404 names the templates there.

use std::sync::Arc;

use http::StatusCode;
use serde_json::json;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

#[tokio::test]
async fn an_alias_starts_sandboxes_of_its_target_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let member = w.key("member").await;

    let (status, list) = w
        .call(Some(&member), "GET", "/v1/template-aliases", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        list["aliases"],
        json!([{"alias": "code-interpreter-v1", "target": "code-interpreter", "builtin": true}])
    );

    let (status, missing) = w
        .call(
            Some(&member),
            "POST",
            "/v1/sandboxes",
            Some(json!({"template": "py"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let message = missing["message"].as_str().unwrap_or_default();
    assert!(message.contains("templates here: base"), "{missing}");
    assert!(
        message.contains("warren template alias set py"),
        "{missing}"
    );

    let set = json!({"target": "base"});
    let (status, _) = w
        .call(
            Some(&member),
            "PUT",
            "/v1/template-aliases/py",
            Some(set.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members do not set aliases");
    let (status, alias) = w
        .call(Some(&admin), "PUT", "/v1/template-aliases/py", Some(set))
        .await;
    assert_eq!(status, StatusCode::OK, "{alias}");
    assert_eq!(
        alias,
        json!({"alias": "py", "target": "base", "builtin": false})
    );

    let (status, sandbox) = w
        .call(
            Some(&member),
            "POST",
            "/v1/sandboxes",
            Some(json!({"template": "py"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sandbox}");
    assert_eq!(
        sandbox["template"], "base",
        "the sandbox records the template itself"
    );

    let (status, _) = w
        .call(Some(&admin), "DELETE", "/v1/template-aliases/py", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w
        .call(Some(&admin), "DELETE", "/v1/template-aliases/py", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "removed already");
    let (status, _) = w
        .call(
            Some(&member),
            "POST",
            "/v1/sandboxes",
            Some(json!({"template": "py"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn aliases_refuse_bad_names_chains_shadowing_and_other_teams() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let (status, team) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "other", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    let other_admin = team["key"]["secret"].as_str().unwrap().to_owned();

    let put = |alias: &str, target: &str| {
        (
            format!("/v1/template-aliases/{alias}"),
            json!({ "target": target }),
        )
    };
    let (path, body) = put("py", "base");
    let (status, _) = w.call(Some(&other_admin), "PUT", &path, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "templates are every team's");

    for (alias, target) in [
        ("py", "py"),
        ("base", "tiny"),
        ("py", "../etc"),
        ("py", "code-interpreter-v1"),
    ] {
        let (path, body) = put(alias, target);
        let (status, answer) = w.call(Some(&admin), "PUT", &path, Some(body)).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{alias} -> {target}: {answer}"
        );
    }
    let (status, answer) = w
        .call(
            Some(&admin),
            "PUT",
            "/v1/template-aliases/py",
            Some(json!({"target": "base", "extra": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, list) = w
        .call(Some(&admin), "GET", "/v1/template-aliases", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["aliases"].as_array().unwrap().len(),
        1,
        "nothing was stored: {list}"
    );
}
