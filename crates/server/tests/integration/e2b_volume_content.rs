//! E2B's volume content API in process: a volume token opens its own
//! volume only (another volume's or team's is 403, a missing, forged,
//! deleted volume's or revoked key's token 401, an API key is no token);
//! files written and read back with the shapes the SDK reads; hostile
//! paths and symlinks planted in the volume by a sandbox are refused with
//! nothing outside touched; an upload over the team's disk headroom is 507
//! and leaves nothing behind; writes are audited.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_runtime::fake::FakeRuntime;
use warren_server::testing::InProcess;

/// `method path` of E2B's control plane with an API key.
async fn control(
    w: &InProcess,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("x-api-key", key);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    };
    w.send(req.unwrap()).await
}

/// `method uri` of the content API with `token` as a Bearer (none: no
/// header): the status and the raw answer.
async fn content(
    w: &InProcess,
    token: Option<&str>,
    method: &str,
    uri: &str,
    body: Body,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if method == "PATCH" {
        req = req.header("content-type", "application/json");
    }
    let resp = w
        .api
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, bytes)
}

/// As [`content`], the answer read as JSON.
async fn call(
    w: &InProcess,
    token: &str,
    method: &str,
    uri: &str,
    body: Body,
) -> (StatusCode, Value) {
    let (status, bytes) = content(w, Some(token), method, uri, body).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A new volume of the key's team: its id and token.
async fn volume(w: &InProcess, key: &str, name: &str) -> (String, String) {
    let (status, v) = control(w, key, "POST", "/volumes", Some(json!({"name": name}))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wvt_"), "{v}");
    (v["volumeID"].as_str().unwrap().to_owned(), token)
}

async fn team_of(w: &InProcess, key: &str) -> String {
    let (_, me) = w.call(Some(key), "GET", "/v1/whoami", None).await;
    me["team"].as_str().unwrap().to_owned()
}

fn host_dir(dir: &Path, team: &str, id: &str) -> PathBuf {
    dir.join("volumes").join(team).join(id)
}

async fn other_team(w: &InProcess, admin: &str, name: &str) -> String {
    let (status, team) = w
        .call(
            Some(admin),
            "POST",
            "/v1/teams",
            Some(json!({"name": name, "admin": "eve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{team}");
    team["key"]["secret"].as_str().unwrap().to_owned()
}

/// Names in `dir` that an upload would have left.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".warren-upload-") {
            found.push(entry.display().to_string());
        }
    }
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn files_round_trip_with_the_sdks_shapes_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let (id, token) = volume(&w, &admin, "data").await;
    let host = host_dir(dir.path(), &team_of(&w, &admin).await, &id);
    let base = format!("/volumecontent/{id}");

    // Write, then read back; the entry is E2B's VolumeEntryStat.
    let (status, entry) = call(
        &w,
        &token,
        "PUT",
        &format!("{base}/file?path=/a.txt"),
        Body::from("hello"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["name"], "a.txt");
    assert_eq!(entry["type"], "file");
    assert_eq!(entry["path"], "/a.txt");
    assert_eq!(entry["size"], 5);
    assert_eq!(entry["mode"], 0o644);
    for t in ["atime", "mtime", "ctime"] {
        assert!(entry[t].as_str().unwrap().contains('T'), "{entry}");
    }
    if is_root() {
        assert_eq!(
            (entry["uid"].as_u64(), entry["gid"].as_u64()),
            (Some(1000), Some(1000))
        );
        assert_eq!(std::fs::metadata(host.join("a.txt")).unwrap().uid(), 1000);
    }
    let (status, body) = content(
        &w,
        Some(&token),
        "GET",
        &format!("{base}/file?path=a.txt"),
        Body::empty(),
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"hello"[..]));
    assert_eq!(std::fs::read(host.join("a.txt")).unwrap(), b"hello");

    // Replacing: by default and with force; force=false refuses.
    let (status, _) = call(
        &w,
        &token,
        "PUT",
        &format!("{base}/file?path=/a.txt&force=false"),
        Body::from("no"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &w,
        &token,
        "PUT",
        &format!("{base}/file?path=/a.txt&force=true"),
        Body::from("again"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(std::fs::read(host.join("a.txt")).unwrap(), b"again");

    // Directories: parents need force; an existing one is 409 without it.
    let (status, _) = call(
        &w,
        &token,
        "POST",
        &format!("{base}/dir?path=/d/e/f"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, made) = call(
        &w,
        &token,
        "POST",
        &format!("{base}/dir?path=/d/e/f&force=true"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(
        (
            made["type"].as_str(),
            made["path"].as_str(),
            made["mode"].as_u64()
        ),
        (Some("directory"), Some("/d/e/f"), Some(0o755))
    );
    let (status, _) = call(
        &w,
        &token,
        "POST",
        &format!("{base}/dir?path=/d"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &w,
        &token,
        "POST",
        &format!("{base}/dir?path=/d&force=true"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Owner and mode asked for.
    let (status, g) = call(
        &w,
        &token,
        "PUT",
        &format!("{base}/file?path=/d/e/f/g.bin&mode=384&uid=1001&gid=1002"),
        Body::from(vec![7u8; 4096]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{g}");
    assert_eq!(g["mode"], 0o600);
    if is_root() {
        assert_eq!(
            (g["uid"].as_u64(), g["gid"].as_u64()),
            (Some(1001), Some(1002))
        );
    }

    // Listing, one level and deeper; stat.
    let (status, list) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/dir?path=/"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(names(&list), ["/a.txt", "/d"]);
    let (_, deep) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/dir?path=/&depth=4"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        names(&deep),
        ["/a.txt", "/d", "/d/e", "/d/e/f", "/d/e/f/g.bin"]
    );
    let (status, _) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/dir?path=/&depth=17"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/dir?path=/a.txt"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a file is no directory to list"
    );
    let (status, st) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/path?path=/d/e/f/g.bin"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        (status, st["size"].as_u64(), st["name"].as_str()),
        (StatusCode::OK, Some(4096), Some("g.bin"))
    );
    let (status, _) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/path?path=/nope"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, root) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/path?path=/"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        (status, root["type"].as_str()),
        (StatusCode::OK, Some("directory"))
    );

    // Metadata: permission bits and ids in range only.
    let patch = |b: Value| Body::from(b.to_string());
    let (status, up) = call(
        &w,
        &token,
        "PATCH",
        &format!("{base}/path?path=/a.txt"),
        patch(json!({"mode": 0o700})),
    )
    .await;
    assert_eq!(
        (status, up["mode"].as_u64()),
        (StatusCode::OK, Some(0o700)),
        "{up}"
    );
    for bad in [
        json!({"mode": 0o4755}),
        json!({"uid": 70000}),
        json!({"gid": -1}),
        json!({"owner": 1}),
    ] {
        let (status, body) = call(
            &w,
            &token,
            "PATCH",
            &format!("{base}/path?path=/a.txt"),
            patch(bad.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, _) = call(
        &w,
        &token,
        "PATCH",
        &format!("{base}/path?path=/none"),
        patch(json!({"mode": 0o600})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for q in [
        "uid=4294967295",
        "mode=2048",
        "uid=-1",
        "force=maybe",
        "colour=red",
    ] {
        let (status, body) = call(
            &w,
            &token,
            "PUT",
            &format!("{base}/file?path=/b.txt&{q}"),
            Body::from("x"),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
    }
    assert!(!host.join("b.txt").exists());

    // Remove: a directory with all below it; the root is not removed.
    let (status, _) = content(
        &w,
        Some(&token),
        "DELETE",
        &format!("{base}/path?path=/d"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!host.join("d").exists());
    let (status, _) = content(
        &w,
        Some(&token),
        "DELETE",
        &format!("{base}/path?path=/d"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = content(
        &w,
        Some(&token),
        "DELETE",
        &format!("{base}/path?path=/"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(host.is_dir());
    assert!(leftovers(&host).is_empty(), "{:?}", leftovers(&host));

    // Every write is in the audit log, as the token's holder.
    let (_, audit) = w
        .call(Some(&admin), "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    let me = w.call(Some(&admin), "GET", "/v1/whoami", None).await.1;
    let entries: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["entry"])
        .filter(|e| e["target"] == id.as_str())
        .collect();
    for action in [
        "volume.write",
        "volume.mkdir",
        "volume.update",
        "volume.remove",
    ] {
        let e = entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:?}"));
        assert_eq!(
            e["actor"][0],
            format!("user:{}", me["user"].as_str().unwrap()),
            "{e}"
        );
    }
    w.stop().await;
}

#[tokio::test]
async fn a_token_opens_its_own_volume_while_it_and_its_key_live() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let other = other_team(&w, &admin, "other").await;
    let (a, token_a) = volume(&w, &admin, "a").await;
    let (b, _) = volume(&w, &admin, "b").await;
    let (_, token_c) = volume(&w, &other, "c").await;
    let stat = |vol: &str| format!("/volumecontent/{vol}/path?path=/");

    assert_eq!(
        content(&w, Some(&token_a), "GET", &stat(&a), Body::empty())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        content(&w, Some(&token_a), "GET", &stat("a"), Body::empty())
            .await
            .0,
        StatusCode::OK,
        "by name"
    );
    // GET /volumes/{id} hands out a token too.
    let (_, again) = control(&w, &admin, "GET", &format!("/volumes/{a}"), None).await;
    let token_again = again["token"].as_str().unwrap().to_owned();
    assert_eq!(
        content(&w, Some(&token_again), "GET", &stat(&a), Body::empty())
            .await
            .0,
        StatusCode::OK
    );

    let mut forged = token_a.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let retargeted = token_a.replacen(&a, &b, 1);
    for (token, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(""), StatusCode::UNAUTHORIZED),
        (Some("garbage"), StatusCode::UNAUTHORIZED),
        (Some(admin.as_str()), StatusCode::UNAUTHORIZED),
        (Some(forged.as_str()), StatusCode::UNAUTHORIZED),
        (Some(retargeted.as_str()), StatusCode::UNAUTHORIZED),
        (Some(token_c.as_str()), StatusCode::FORBIDDEN),
    ] {
        let (status, body) = content(&w, token, "GET", &stat(&a), Body::empty()).await;
        assert_eq!(
            status,
            want,
            "{token:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let err: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(err["code"], want.as_u16(), "E2B's error body: {err}");
    }
    assert_eq!(
        content(&w, Some(&token_a), "GET", &stat(&b), Body::empty())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    // An API key is refused however it is sent.
    let req = Request::builder()
        .uri(stat(&a))
        .header("x-api-key", &admin)
        .body(Body::empty())
        .unwrap();
    assert_eq!(w.send(req).await.0, StatusCode::UNAUTHORIZED);

    // A viewer's token reads and does not write; revoking the key kills it.
    let (status, viewer) = w
        .call(
            Some(&admin),
            "POST",
            "/v1/keys",
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    let (_, got) = control(
        &w,
        viewer["secret"].as_str().unwrap(),
        "GET",
        &format!("/volumes/{a}"),
        None,
    )
    .await;
    let token_v = got["token"].as_str().unwrap().to_owned();
    assert_eq!(
        content(&w, Some(&token_v), "GET", &stat(&a), Body::empty())
            .await
            .0,
        StatusCode::OK
    );
    let put = format!("/volumecontent/{a}/file?path=/v.txt");
    assert_eq!(
        content(&w, Some(&token_v), "PUT", &put, Body::from("x"))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, _) = w
        .call(
            Some(&admin),
            "DELETE",
            &format!("/v1/keys/{}", viewer["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(status.is_success());
    assert_eq!(
        content(&w, Some(&token_v), "GET", &stat(&a), Body::empty())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // A deleted volume's token is dead, even for a new volume of its name.
    let (status, _) = control(&w, &admin, "DELETE", &format!("/volumes/{a}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (new_a, _) = volume(&w, &admin, "a").await;
    for target in [a.as_str(), "a", new_a.as_str()] {
        assert_eq!(
            content(&w, Some(&token_a), "GET", &stat(target), Body::empty())
                .await
                .0,
            StatusCode::UNAUTHORIZED,
            "{target}"
        );
    }
    w.stop().await;
}

#[tokio::test]
async fn hostile_paths_and_planted_symlinks_are_refused_and_nothing_outside_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let (id, token) = volume(&w, &admin, "data").await;
    let host = host_dir(dir.path(), &team_of(&w, &admin).await, &id);
    let base = format!("/volumecontent/{id}");

    // What a sandbox mounting the volume might plant.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(host.join("sub")).unwrap();
    std::os::unix::fs::symlink(outside.path(), host.join("link")).unwrap();
    std::os::unix::fs::symlink(&secret, host.join("flink")).unwrap();
    std::os::unix::fs::symlink("../../..", host.join("sub/up")).unwrap();
    std::os::unix::fs::symlink("/proc/self/root", host.join("magic")).unwrap();

    let q = |p: &str| url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>();
    for path in [
        "link/secret",
        "flink",
        "sub/up/etc/passwd",
        "magic/etc/passwd",
        "link/",
    ] {
        let p = q(path);
        let tries = [
            ("GET", format!("{base}/file?path={p}"), Body::empty()),
            ("GET", format!("{base}/path?path={p}/x"), Body::empty()),
            ("GET", format!("{base}/dir?path={p}"), Body::empty()),
            (
                "PUT",
                format!("{base}/file?path={p}/new"),
                Body::from("planted"),
            ),
            (
                "PUT",
                format!("{base}/file?path={p}"),
                Body::from("planted"),
            ),
            (
                "POST",
                format!("{base}/dir?path={p}/made&force=true"),
                Body::empty(),
            ),
            (
                "PATCH",
                format!("{base}/path?path={p}"),
                Body::from(r#"{"mode":511}"#),
            ),
            ("DELETE", format!("{base}/path?path={p}/x"), Body::empty()),
        ];
        for (method, uri, body) in tries {
            let (status, body) = content(&w, Some(&token), method, &uri, body).await;
            // A PUT to a link's own name replaces the link (a new file in
            // the volume); everything else through a link is refused.
            let own_name = ["flink", "link/"].contains(&path);
            if method == "PUT" && own_name && !uri.contains("%2Fnew") && !uri.contains("/new") {
                assert_eq!(status, StatusCode::CREATED, "{method} {uri}");
                let name = path.trim_end_matches('/');
                std::fs::remove_file(host.join(name)).unwrap();
                let target = if name == "flink" {
                    secret.clone()
                } else {
                    outside.path().to_owned()
                };
                std::os::unix::fs::symlink(target, host.join(name)).unwrap();
                continue;
            }
            assert!(
                status == StatusCode::BAD_REQUEST
                    || (status == StatusCode::CONFLICT && method == "PUT"),
                "{method} {uri}: {status} {}",
                String::from_utf8_lossy(&body)
            );
            let text = String::from_utf8_lossy(&body);
            assert!(
                !text.contains("host secret") && !text.contains("root:"),
                "{text}"
            );
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret");
    assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
    let outside_names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside_names, ["secret"]);

    // A link is described and removed as itself, never followed.
    let (status, st) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/path?path=/link"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        (status, st["type"].as_str()),
        (StatusCode::OK, Some("symlink")),
        "{st}"
    );
    assert_eq!(st["target"], outside.path().display().to_string());
    let (_, list) = call(
        &w,
        &token,
        "GET",
        &format!("{base}/dir?path=/&depth=5"),
        Body::empty(),
    )
    .await;
    assert_eq!(
        names(&list),
        ["/flink", "/link", "/magic", "/sub", "/sub/up"]
    );
    let (status, _) = content(
        &w,
        Some(&token),
        "DELETE",
        &format!("{base}/path?path=/link"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(secret.exists() && !host.join("link").exists());
    let (status, _) = content(
        &w,
        Some(&token),
        "DELETE",
        &format!("{base}/path?path=/sub"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(outside.path().exists() && secret.exists());

    // `..`, NUL and overlong paths are 400; absolute ones stay inside.
    let long = format!("/{}", "d/".repeat(2100));
    let long_name = format!("/{}", "n".repeat(256));
    for path in [
        "../x",
        "/../etc/passwd",
        "a/../../b",
        "a\0b",
        &long,
        &long_name,
        "",
    ] {
        let uri = format!("{base}/file?path={}", q(path));
        let (status, body) = content(&w, Some(&token), "GET", &uri, Body::empty()).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{path:?}: {}",
            String::from_utf8_lossy(&body)
        );
        let (status, _) = content(&w, Some(&token), "PUT", &uri, Body::from("x")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "PUT {path:?}");
    }
    let (status, _) = content(
        &w,
        Some(&token),
        "GET",
        &format!("{base}/file"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "path is required");
    let (status, _) = content(
        &w,
        Some(&token),
        "GET",
        &format!("{base}/file?path=/etc/passwd"),
        Body::empty(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "/ is the volume's");
    let (status, _) = content(
        &w,
        Some(&token),
        "PUT",
        &format!("{base}/file?path=/etc/passwd"),
        Body::from("x"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(leftovers(&host).is_empty(), "{:?}", leftovers(&host));
    w.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_disk_headroom_is_507_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let w = InProcess::start(dir.path(), Arc::new(FakeRuntime::new()))
        .await
        .unwrap();
    let admin = w.admin_key.clone().unwrap();
    let other = other_team(&w, &admin, "small").await;
    let (status, body) = w
        .call(
            Some(&admin),
            "PUT",
            "/v1/teams/small/quota",
            Some(json!({"max_disk_mb": 2})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (id, token) = volume(&w, &other, "v").await;
    let host = host_dir(dir.path(), &team_of(&w, &other).await, &id);
    let uri = format!("/volumecontent/{id}/file?path=/big");

    // Streamed without a length: refused once past the headroom.
    let chunks = (0..12).map(|_| Ok::<_, std::io::Error>(vec![1u8; 256 * 1024]));
    let (status, body) = content(
        &w,
        Some(&token),
        "PUT",
        &uri,
        Body::from_stream(futures::stream::iter(chunks)),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::INSUFFICIENT_STORAGE,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(String::from_utf8_lossy(&body).contains("max_disk_mb"));
    // Declared too long: refused before a byte is written.
    let req = Request::builder()
        .method("PUT")
        .uri(&uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", (3u64 << 20).to_string())
        .body(Body::from(vec![1u8; 3 << 20]))
        .unwrap();
    assert_eq!(w.send(req).await.0, StatusCode::INSUFFICIENT_STORAGE);
    // A body that breaks mid-way.
    let broken = futures::stream::iter([Ok(vec![1u8; 1024]), Err(std::io::Error::other("gone"))]);
    let (status, _) = content(&w, Some(&token), "PUT", &uri, Body::from_stream(broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(walk(&host), Vec::<PathBuf>::new(), "nothing left behind");

    // Within the headroom it is written.
    let (status, _) = content(
        &w,
        Some(&token),
        "PUT",
        &uri,
        Body::from(vec![1u8; 512 * 1024]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        std::fs::metadata(host.join("big")).unwrap().len(),
        512 * 1024
    );
    w.stop().await;
}
