//! Volumes in process over the fake runtime: the team's own (another
//! team's is 404), names and mount paths validated (400), a volume in use
//! by a live sandbox cannot be deleted (409) and such a sandbox is not
//! paused, snapshotted or forked (409), deleting one removes its files
//! without following symlinks, and its files count against `max_disk_mb`.

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

use crate::fixtures::e2b;

async fn other_team(w: &InProcess, admin: &str) -> String {
    let (status, team) = w
        .call(
            Some(admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": "other", "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    team["key"]["secret"].as_str().unwrap().to_owned()
}

async fn create(w: &InProcess, key: &str, body: Value) -> (StatusCode, Value) {
    w.call(Some(key), "POST", "/v1/sandboxes", Some(body)).await
}

fn volume_dir(dir: &std::path::Path, team: &str, id: &str) -> std::path::PathBuf {
    dir.join("volumes").join(team).join(id)
}

#[tokio::test]
async fn volumes_are_the_teams_own_and_in_use_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let other = other_team(&w, &admin).await;

    let (status, vol) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/volumes",
            Some(json!({"name": "data"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vol}");
    assert_eq!(vol["name"], "data");
    let (status, _) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/volumes",
            Some(json!({"name": "data"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    for bad in ["", "a b", "../x", "a/b", "-a"] {
        let (status, body) = w
            .call(
                Some(&admin),
                "POST",
                "/v1/volumes",
                Some(json!({"name": bad})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (_, me) = w.call(Some(&admin), "GET", "/v1/whoami", None).await;
    let team = me["team"].as_str().unwrap().to_owned();
    let host = volume_dir(dir.path(), &team, vol["id"].as_str().unwrap());
    let meta = std::fs::metadata(&host).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o7777, 0o755);
    if std::fs::metadata("/proc/self").unwrap().uid() == 0 {
        assert_eq!(meta.uid(), 1000);
    }
    let (status, list) = w.call(Some(&admin), "GET", "/v1/volumes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["volumes"].as_array().unwrap().len(), 1);

    // Another team sees nothing of it and cannot mount it.
    for (method, path) in [("GET", "/v1/volumes/data"), ("DELETE", "/v1/volumes/data")] {
        let (status, _) = w.call(Some(&other), method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    let (_, list) = w.call(Some(&other), "GET", "/v1/volumes", None).await;
    assert!(list["volumes"].as_array().unwrap().is_empty());
    let (status, body) = create(
        &w,
        &other,
        json!({"volumes": [{"name": "data", "path": "/data"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Hostile or malformed mounts.
    let nine: Vec<Value> = (0..9)
        .map(|i| json!({"name": "data", "path": format!("/d{i}")}))
        .collect();
    for mounts in [
        json!([{"name": "data", "path": "/"}]),
        json!([{"name": "data", "path": "data"}]),
        json!([{"name": "data", "path": "/proc/x"}]),
        json!([{"name": "data", "path": "/sys"}]),
        json!([{"name": "data", "path": "/dev/shm"}]),
        json!([{"name": "data", "path": "/.warren/agent"}]),
        json!([{"name": "data", "path": "/run/warren"}]),
        json!([{"name": "data", "path": "/a/../proc"}]),
        json!([{"name": "b/ad", "path": "/data"}]),
        json!([{"name": "data", "path": "/data"}, {"name": "data", "path": "/data/sub"}]),
        Value::Array(nine),
    ] {
        let (status, body) = create(&w, &admin, json!({ "volumes": mounts })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{mounts}: {body}");
    }
    let (status, body) = create(
        &w,
        &admin,
        json!({"persistent": true, "volumes": [{"name": "data", "path": "/data"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = create(
        &w,
        &admin,
        json!({"volumes": [{"name": "nope", "path": "/data"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // In use: no delete, no checkpoint of the sandbox.
    let (status, sb) = create(
        &w,
        &admin,
        json!({"volumes": [{"name": "data", "path": "//data/./"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sb}");
    assert_eq!(sb["volumes"], json!([{"name": "data", "path": "/data"}]));
    let id = sb["id"].as_str().unwrap().to_owned();
    let (_, detail) = w
        .call(Some(&admin), "GET", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert_eq!(
        detail["volumes"],
        json!([{"name": "data", "path": "/data"}])
    );
    let (status, body) = w
        .call(Some(&admin), "DELETE", "/v1/volumes/data", None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
    for (path, body) in [
        (format!("/v1/sandboxes/{id}/pause"), None),
        (
            format!("/v1/sandboxes/{id}/snapshots"),
            Some(json!({"name": "s"})),
        ),
        (
            format!("/v1/sandboxes/{id}/fork"),
            Some(json!({"count": 1})),
        ),
    ] {
        let (status, answer) = w.call(Some(&admin), "POST", &path, body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("volumes"),
            "{answer}"
        );
    }

    // Killed: the volume goes, and a symlink in it takes nothing along.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), b"host file").unwrap();
    std::os::unix::fs::symlink(outside.path(), host.join("escape")).unwrap();
    std::fs::create_dir(host.join("sub")).unwrap();
    std::fs::write(host.join("sub/f"), b"x").unwrap();
    let (status, _) = w
        .call(Some(&admin), "DELETE", &format!("/v1/sandboxes/{id}"), None)
        .await;
    assert!(status.is_success());
    let (status, body) = w
        .call(Some(&admin), "DELETE", "/v1/volumes/data", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!host.exists());
    assert!(outside.path().join("keep").exists());
    let (status, _) = w.call(Some(&admin), "GET", "/v1/volumes/data", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.stop().await;
}

#[tokio::test]
async fn volume_files_count_against_the_disk_quota() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let other = other_team(&w, &admin).await;
    let (status, body) = w
        .call(
            Some(&admin),
            "PUT",
            "/v1/teams/other/quota",
            Some(json!({"max_disk_mb": 300})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, vol) = w
        .call(
            Some(&other),
            "POST",
            "/v1/volumes",
            Some(json!({"name": "v"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vol}");
    let mount = json!({"disk_mb": 256, "volumes": [{"name": "v", "path": "/v"}]});
    let (status, sb) = create(&w, &other, mount.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{sb}");
    let (status, _) = w
        .call(
            Some(&other),
            "DELETE",
            &format!("/v1/sandboxes/{}", sb["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(status.is_success());

    // 64 MiB in the volume: 256 + 64 > 300.
    let (_, me) = w.call(Some(&other), "GET", "/v1/whoami", None).await;
    let team = me["team"].as_str().unwrap().to_owned();
    let host = volume_dir(dir.path(), &team, vol["id"].as_str().unwrap());
    std::fs::write(host.join("big"), vec![7u8; 64 << 20]).unwrap();
    let (_, got) = w.call(Some(&other), "GET", "/v1/volumes/v", None).await;
    assert!(got["size_bytes"].as_u64().unwrap() >= 64 << 20, "{got}");
    let (status, body) = create(&w, &other, mount).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("volumes"),
        "{body}"
    );
    // A team at its limit gets no new volume.
    let (status, body) = w
        .call(
            Some(&admin),
            "PUT",
            "/v1/teams/other/quota",
            Some(json!({"max_disk_mb": 64})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = w
        .call(
            Some(&other),
            "POST",
            "/v1/volumes",
            Some(json!({"name": "w"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    w.stop().await;
}

#[tokio::test]
async fn e2b_volumes_are_warrens_and_mount_at_create() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let other = other_team(&w, &admin).await;
    let (status, vol) = e2b(
        &w,
        &admin,
        "POST",
        "/volumes",
        Some(json!({"name": "My_vol-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{vol}");
    let id = vol["volumeID"].as_str().unwrap().to_owned();
    assert_eq!(vol["name"], "My_vol-1");
    assert_eq!(vol["token"], "");
    let (status, _) = e2b(
        &w,
        &admin,
        "POST",
        "/volumes",
        Some(json!({"name": "My_vol-1"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = e2b(&w, &admin, "POST", "/volumes", Some(json!({"name": "a/b"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 400);
    let (status, list) = e2b(&w, &admin, "GET", "/volumes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([{"volumeID": id, "name": "My_vol-1"}]));
    let (_, native) = w
        .call(Some(&admin), "GET", "/v1/volumes/My_vol-1", None)
        .await;
    assert_eq!(native["id"], id.as_str());
    let (status, got) = e2b(&w, &admin, "GET", &format!("/volumes/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    for (method, path) in [
        ("GET", format!("/volumes/{id}")),
        ("DELETE", format!("/volumes/{id}")),
    ] {
        let (status, body) = e2b(&w, &other, method, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }

    let (status, body) = e2b(
        &w,
        &admin,
        "POST",
        "/sandboxes",
        Some(json!({"templateID": "base", "volumeMounts": [{"name": "My_vol-1", "path": "/proc/x"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, sb) = e2b(
        &w,
        &admin,
        "POST",
        "/sandboxes",
        Some(
            json!({"templateID": "base", "volumeMounts": [{"name": "My_vol-1", "path": "/data"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sb}");
    let sandbox = sb["sandboxID"].as_str().unwrap().to_owned();
    let (_, detail) = e2b(&w, &admin, "GET", &format!("/sandboxes/{sandbox}"), None).await;
    assert_eq!(
        detail["volumeMounts"],
        json!([{"name": "My_vol-1", "path": "/data"}])
    );
    let (status, body) = e2b(&w, &admin, "DELETE", &format!("/volumes/{id}"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = e2b(
        &w,
        &admin,
        "POST",
        &format!("/sandboxes/{sandbox}/pause"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = e2b(&w, &admin, "DELETE", &format!("/sandboxes/{sandbox}"), None).await;
    assert!(status.is_success());
    let (status, body) = e2b(&w, &admin, "DELETE", &format!("/volumes/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = e2b(&w, &admin, "GET", &format!("/volumes/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    w.stop().await;
}
