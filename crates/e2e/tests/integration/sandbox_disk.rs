//! The host's disk: below the operator's reserve, new sandboxes are
//! refused with 507 before anything is written, through every API.

use serde_json::{Value, json};
use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_creates_are_refused_when_the_disk_is_under_its_reserve() {
    // A reserve no disk can meet stands for a full disk.
    let d = Daemon::start_with(&["--disk-reserve-mb", "1000000000000"])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    for (path, body) in [
        ("/v1/sandboxes", json!({})),
        ("/sandboxes", json!({"templateID": "base"})),
        ("/v2/sandboxes", json!({"templateID": "base"})),
    ] {
        let (status, err) = d.call(&d.key, "POST", path, Some(body)).await;
        assert_eq!(status, 507, "{path}: {err}");
        assert!(err.to_string().contains("MiB free"), "{path}: {err}");
    }
    let (_, err) = d
        .call(&d.key, "POST", "/v1/sandboxes", Some(json!({})))
        .await;
    assert_eq!(err["code"], "insufficient_storage", "{err}");
    let (status, list): (u16, Value) = d.call(&d.key, "GET", "/v1/sandboxes", None).await;
    assert_eq!(status, 200);
    assert!(list["sandboxes"].as_array().unwrap().is_empty(), "{list}");
}
