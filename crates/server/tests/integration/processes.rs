//! `GET /v1/sandboxes/{id}/processes` and `DELETE …/processes/{pid}` over
//! the fake runtime: who may call them and what bad input gets. (That a
//! listed command is really ended is the real runtime's, in the e2e suite.)

use http::StatusCode;
use serde_json::json;

use crate::fixtures::{rival_team, sandbox, start};

#[tokio::test]
async fn processes_are_listed_and_ended_only_by_who_may_exec_and_bad_pids_are_refused() {
    let (w, _dir) = start().await;
    let key = w.admin_key.clone().unwrap();
    let id = sandbox(&w, &key).await;
    let list = format!("/v1/sandboxes/{id}/processes");

    let (status, body) = w.call(Some(&key), "GET", &list, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["processes"].is_array(), "{body}");

    for bad in ["abc", "0", "-1", "4294967296", "1.5"] {
        let (status, body) = w
            .call(Some(&key), "DELETE", &format!("{list}/{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, body) = w
        .call(Some(&key), "DELETE", &format!("{list}/999999"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // A viewer may not see what runs; another team does not see the sandbox.
    let (status, viewer) = w
        .call(
            Some(&key),
            "POST",
            "/v1/keys",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    let viewer = viewer["secret"].as_str().unwrap();
    let (status, _) = w.call(Some(viewer), "GET", &list, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w
        .call(Some(viewer), "DELETE", &format!("{list}/1"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (rival, _) = rival_team(&w, &key).await;
    let (status, _) = w.call(Some(&rival), "GET", &list, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .call(Some(&rival), "DELETE", &format!("{list}/1"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A paused sandbox (not resumed by calls) runs nothing to list.
    let (status, body) = w
        .call(
            Some(&key),
            "POST",
            &format!("/v1/sandboxes/{id}/pause"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = w.call(Some(&key), "GET", &list, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
