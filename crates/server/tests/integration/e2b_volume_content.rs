//! E2B's volume content API in process: a volume token opens its own
//! volume only (another volume's or team's is 403, a missing, forged, expired,
//! deleted volume's or revoked key's token 401, an API key is no token);
//! files written and read back with the shapes the SDK reads; hostile
//! paths and symlinks planted in the volume by a sandbox are refused with
//! nothing outside touched; an upload over the team's disk headroom is 507
//! and leaves nothing behind; writes are audited.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use warren_server::testing::InProcess;

use crate::fixtures::{e2b, rival_team, start};

const OK: StatusCode = StatusCode::OK;
const CREATED: StatusCode = StatusCode::CREATED;
const GONE: StatusCode = StatusCode::NO_CONTENT;
const BAD: StatusCode = StatusCode::BAD_REQUEST;
const UNAUTH: StatusCode = StatusCode::UNAUTHORIZED;
const FORBIDDEN: StatusCode = StatusCode::FORBIDDEN;
const MISSING: StatusCode = StatusCode::NOT_FOUND;
const CONFLICT: StatusCode = StatusCode::CONFLICT;
const FULL: StatusCode = StatusCode::INSUFFICIENT_STORAGE;

/// A new volume of the key's team: its id and token.
async fn volume(w: &InProcess, key: &str, name: &str) -> (String, String) {
    let (status, v) = e2b(w, key, "POST", "/volumes", Some(json!({"name": name}))).await;
    assert_eq!(status, CREATED, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("wvt_"), "{v}");
    (v["volumeID"].as_str().unwrap().to_owned(), token)
}

/// One volume seen through the content API with one token.
struct Client<'a> {
    w: &'a InProcess,
    token: Option<String>,
    volume: String,
}

impl Client<'_> {
    /// `method /volumecontent/{volume}/{rest}`: the status and the raw answer.
    async fn raw(&self, method: &str, rest: &str, body: impl Into<Body>) -> (StatusCode, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/volumecontent/{}/{rest}", self.volume));
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if method == "PATCH" {
            req = req.header("content-type", "application/json");
        }
        let resp = self
            .w
            .api
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    /// As [`Self::raw`], asserting the status; the answer as JSON.
    async fn expect(
        &self,
        method: &str,
        rest: &str,
        body: impl Into<Body>,
        want: StatusCode,
    ) -> Value {
        let (status, bytes) = self.raw(method, rest, body).await;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, want, "{method} {rest}: {text}");
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

fn client<'a>(w: &'a InProcess, token: Option<&str>, volume: &str) -> Client<'a> {
    Client {
        w,
        token: token.map(str::to_owned),
        volume: volume.to_owned(),
    }
}

async fn team_of(w: &InProcess, key: &str) -> String {
    let (_, me) = w.call(Some(key), "GET", "/v1/whoami", None).await;
    me["team"].as_str().unwrap().to_owned()
}

fn host_dir(dir: &Path, team: &str, id: &str) -> PathBuf {
    dir.join("volumes").join(team).join(id)
}

/// Every path below `dir`, links not followed.
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

/// Temporary files an upload would have left below `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".warren-upload-")
        })
        .collect()
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect()
}

fn owner(entry: &Value) -> (Option<u64>, Option<u64>) {
    (entry["uid"].as_u64(), entry["gid"].as_u64())
}

#[tokio::test]
async fn files_round_trip_with_the_sdks_shapes_and_are_audited() {
    let (w, dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (id, token) = volume(&w, &admin, "data").await;
    let host = host_dir(dir.path(), &team_of(&w, &admin).await, &id);
    let v = client(&w, Some(&token), &id);

    // Write, then read back; the entry is E2B's VolumeEntryStat.
    let entry = v.expect("PUT", "file?path=/a.txt", "hello", CREATED).await;
    assert_eq!(entry["name"], "a.txt");
    assert_eq!(entry["type"], "file");
    assert_eq!(entry["path"], "/a.txt");
    assert_eq!(entry["size"], 5);
    assert_eq!(entry["mode"], 0o644);
    for t in ["atime", "mtime", "ctime"] {
        assert!(entry[t].as_str().unwrap().contains('T'), "{entry}");
    }
    if is_root() {
        assert_eq!(owner(&entry), (Some(1000), Some(1000)));
        assert_eq!(std::fs::metadata(host.join("a.txt")).unwrap().uid(), 1000);
    }
    let (status, body) = v.raw("GET", "file?path=a.txt", Body::empty()).await;
    assert_eq!((status, body.as_slice()), (OK, &b"hello"[..]));
    assert_eq!(std::fs::read(host.join("a.txt")).unwrap(), b"hello");

    // Replacing: by default and with force; force=false refuses.
    v.expect("PUT", "file?path=/a.txt&force=false", "no", CONFLICT)
        .await;
    v.expect("PUT", "file?path=/a.txt&force=true", "again", CREATED)
        .await;
    assert_eq!(std::fs::read(host.join("a.txt")).unwrap(), b"again");

    // Directories: parents need force; an existing one is 409 without it.
    v.expect("POST", "dir?path=/d/e/f", Body::empty(), MISSING)
        .await;
    let made = v
        .expect("POST", "dir?path=/d/e/f&force=true", Body::empty(), CREATED)
        .await;
    assert_eq!(made["type"], "directory");
    assert_eq!(made["path"], "/d/e/f");
    assert_eq!(made["mode"], 0o755);
    v.expect("POST", "dir?path=/d", Body::empty(), CONFLICT)
        .await;
    v.expect("POST", "dir?path=/d&force=true", Body::empty(), CREATED)
        .await;

    // Owner and mode asked for.
    let asked = "file?path=/d/e/f/g.bin&mode=384&uid=1001&gid=1002";
    let g = v.expect("PUT", asked, vec![7u8; 4096], CREATED).await;
    assert_eq!(g["mode"], 0o600);
    if is_root() {
        assert_eq!(owner(&g), (Some(1001), Some(1002)));
    }

    // Listing, one level and deeper; stat.
    let list = v.expect("GET", "dir?path=/", Body::empty(), OK).await;
    assert_eq!(paths(&list), ["/a.txt", "/d"]);
    let deep = v
        .expect("GET", "dir?path=/&depth=4", Body::empty(), OK)
        .await;
    assert_eq!(
        paths(&deep),
        ["/a.txt", "/d", "/d/e", "/d/e/f", "/d/e/f/g.bin"]
    );
    v.expect("GET", "dir?path=/&depth=17", Body::empty(), BAD)
        .await;
    v.expect("GET", "dir?path=/a.txt", Body::empty(), BAD).await;
    let st = v
        .expect("GET", "path?path=/d/e/f/g.bin", Body::empty(), OK)
        .await;
    assert_eq!(
        (st["size"].as_u64(), st["name"].as_str()),
        (Some(4096), Some("g.bin"))
    );
    v.expect("GET", "path?path=/nope", Body::empty(), MISSING)
        .await;
    let root = v.expect("GET", "path?path=/", Body::empty(), OK).await;
    assert_eq!(root["type"], "directory");

    // Metadata: permission bits and ids in range only.
    let up = v
        .expect("PATCH", "path?path=/a.txt", r#"{"mode": 448}"#, OK)
        .await;
    assert_eq!(up["mode"], 0o700);
    for bad in [
        json!({"mode": 0o4755}),
        json!({"uid": 70000}),
        json!({"gid": -1}),
        json!({"owner": 1}),
    ] {
        v.expect("PATCH", "path?path=/a.txt", bad.to_string(), BAD)
            .await;
    }
    v.expect("PATCH", "path?path=/none", r#"{"mode": 384}"#, MISSING)
        .await;
    for q in [
        "uid=4294967295",
        "mode=2048",
        "uid=-1",
        "force=maybe",
        "colour=red",
    ] {
        v.expect("PUT", &format!("file?path=/b.txt&{q}"), "x", BAD)
            .await;
    }
    assert!(!host.join("b.txt").exists());

    // Remove: a directory with all below it; the root is not removed.
    v.expect("DELETE", "path?path=/d", Body::empty(), GONE)
        .await;
    assert!(!host.join("d").exists());
    v.expect("DELETE", "path?path=/d", Body::empty(), MISSING)
        .await;
    v.expect("DELETE", "path?path=/", Body::empty(), BAD).await;
    assert!(host.is_dir());
    assert!(leftovers(&host).is_empty(), "{:?}", leftovers(&host));

    // Every write is in the audit log, as the token's holder.
    let (_, audit) = w
        .call(Some(&admin), "GET", "/v1/audit/entries?limit=1000", None)
        .await;
    let me = w.call(Some(&admin), "GET", "/v1/whoami", None).await.1;
    let user = format!("user:{}", me["user"].as_str().unwrap());
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
        let e = entries.iter().find(|e| e["action"] == action);
        let e = e.unwrap_or_else(|| panic!("no {action} in {entries:?}"));
        assert_eq!(e["actor"][0], user.as_str(), "{e}");
    }
    w.stop().await;
}

#[tokio::test]
async fn a_token_opens_its_own_volume_while_it_and_its_key_live() {
    let (w, _dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (other, _) = rival_team(&w, &admin).await;
    let (a, token_a) = volume(&w, &admin, "a").await;
    let (b, _) = volume(&w, &admin, "b").await;
    let (_, token_c) = volume(&w, &other, "c").await;
    let stat = "path?path=/";

    client(&w, Some(&token_a), &a)
        .expect("GET", stat, Body::empty(), OK)
        .await;
    client(&w, Some(&token_a), "a")
        .expect("GET", stat, Body::empty(), OK)
        .await;
    // GET /volumes/{id} hands out a token too.
    let (_, again) = e2b(&w, &admin, "GET", &format!("/volumes/{a}"), None).await;
    let token_again = again["token"].as_str().unwrap();
    client(&w, Some(token_again), &a)
        .expect("GET", stat, Body::empty(), OK)
        .await;

    let mut forged = token_a.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let retargeted = token_a.replacen(&a, &b, 1);
    for (token, want) in [
        (None, UNAUTH),
        (Some(""), UNAUTH),
        (Some("garbage"), UNAUTH),
        (Some(admin.as_str()), UNAUTH),
        (Some(forged.as_str()), UNAUTH),
        (Some(retargeted.as_str()), UNAUTH),
        (Some(token_c.as_str()), FORBIDDEN),
    ] {
        let err = client(&w, token, &a)
            .expect("GET", stat, Body::empty(), want)
            .await;
        assert_eq!(err["code"], want.as_u16(), "E2B's error body: {err}");
    }
    client(&w, Some(&token_a), &b)
        .expect("GET", stat, Body::empty(), FORBIDDEN)
        .await;
    // An API key is refused however it is sent.
    let req = Request::builder()
        .uri(format!("/volumecontent/{a}/{stat}"))
        .header("x-api-key", &admin)
        .body(Body::empty())
        .unwrap();
    assert_eq!(w.send(req).await.0, UNAUTH);

    // A viewer's token reads and does not write; revoking the key kills it.
    let body = json!({"name": "v", "role": "viewer"});
    let (status, viewer) = w.call(Some(&admin), "POST", "/v1/keys", Some(body)).await;
    assert_eq!(status, CREATED, "{viewer}");
    let viewer_key = viewer["secret"].as_str().unwrap();
    let (_, got) = e2b(&w, viewer_key, "GET", &format!("/volumes/{a}"), None).await;
    let as_viewer = client(&w, got["token"].as_str(), &a);
    as_viewer.expect("GET", stat, Body::empty(), OK).await;
    as_viewer
        .expect("PUT", "file?path=/v.txt", "x", FORBIDDEN)
        .await;
    let revoke = format!("/v1/keys/{}", viewer["id"].as_str().unwrap());
    assert!(
        w.call(Some(&admin), "DELETE", &revoke, None)
            .await
            .0
            .is_success()
    );
    as_viewer.expect("GET", stat, Body::empty(), UNAUTH).await;

    // A deleted volume's token is dead, even for a new volume of its name.
    let (status, _) = e2b(&w, &admin, "DELETE", &format!("/volumes/{a}"), None).await;
    assert_eq!(status, GONE);
    let (new_a, _) = volume(&w, &admin, "a").await;
    for target in [a.as_str(), "a", new_a.as_str()] {
        client(&w, Some(&token_a), target)
            .expect("GET", stat, Body::empty(), UNAUTH)
            .await;
    }

    // A token lives as long as an access grant, a day by default.
    let (_, fresh) = e2b(&w, &admin, "GET", &format!("/volumes/{b}"), None).await;
    let as_b = client(&w, fresh["token"].as_str(), &b);
    w.clock.advance(time::Duration::hours(23));
    as_b.expect("GET", stat, Body::empty(), OK).await;
    w.clock.advance(time::Duration::hours(2));
    as_b.expect("GET", stat, Body::empty(), UNAUTH).await;
    w.stop().await;
}

#[tokio::test]
async fn hostile_paths_and_planted_symlinks_are_refused_and_nothing_outside_is_touched() {
    let (w, dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (id, token) = volume(&w, &admin, "data").await;
    let host = host_dir(dir.path(), &team_of(&w, &admin).await, &id);
    let v = client(&w, Some(&token), &id);

    // What a sandbox mounting the volume might plant.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::create_dir(host.join("sub")).unwrap();
    let plant =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, host.join(name)).unwrap();
    plant(outside.path(), "link");
    plant(&secret, "flink");
    plant(Path::new("../../.."), "sub/up");
    plant(Path::new("/proc/self/root"), "magic");

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
            ("GET", format!("file?path={p}")),
            ("GET", format!("path?path={p}/x")),
            ("GET", format!("dir?path={p}")),
            ("PUT", format!("file?path={p}/new")),
            ("PUT", format!("file?path={p}")),
            ("POST", format!("dir?path={p}/made&force=true")),
            ("PATCH", format!("path?path={p}")),
            ("DELETE", format!("path?path={p}/x")),
        ];
        for (method, rest) in tries {
            let body = if method == "PATCH" {
                r#"{"mode":511}"#
            } else {
                "planted"
            };
            let (status, answer) = v.raw(method, &rest, body).await;
            let text = String::from_utf8_lossy(&answer);
            assert!(
                !text.contains("host secret") && !text.contains("root:"),
                "{text}"
            );
            // A PUT to a link's own name replaces the link (a new file in
            // the volume); everything else through a link is refused.
            let name = path.trim_end_matches('/');
            if method == "PUT"
                && rest == format!("file?path={p}")
                && ["flink", "link"].contains(&name)
            {
                assert_eq!(status, CREATED, "{method} {rest}: {text}");
                std::fs::remove_file(host.join(name)).unwrap();
                plant(
                    if name == "flink" {
                        &secret
                    } else {
                        outside.path()
                    },
                    name,
                );
                continue;
            }
            assert_eq!(status, BAD, "{method} {rest}: {text}");
        }
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host secret");
    assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
    assert_eq!(walk(outside.path()), std::slice::from_ref(&secret));

    // A link is described and removed as itself, never followed.
    let st = v.expect("GET", "path?path=/link", Body::empty(), OK).await;
    assert_eq!(st["type"], "symlink");
    assert_eq!(st["target"], outside.path().display().to_string());
    let list = v
        .expect("GET", "dir?path=/&depth=5", Body::empty(), OK)
        .await;
    assert_eq!(
        paths(&list),
        ["/flink", "/link", "/magic", "/sub", "/sub/up"]
    );
    v.expect("DELETE", "path?path=/link", Body::empty(), GONE)
        .await;
    assert!(secret.exists() && !host.join("link").exists());
    v.expect("DELETE", "path?path=/sub", Body::empty(), GONE)
        .await;
    assert_eq!(walk(outside.path()), std::slice::from_ref(&secret));

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
        let rest = format!("file?path={}", q(path));
        v.expect("GET", &rest, Body::empty(), BAD).await;
        v.expect("PUT", &rest, "x", BAD).await;
    }
    v.expect("GET", "file", Body::empty(), BAD).await;
    v.expect("GET", "file?path=/etc/passwd", Body::empty(), MISSING)
        .await;
    v.expect("PUT", "file?path=/etc/passwd", "x", MISSING).await;
    assert!(leftovers(&host).is_empty(), "{:?}", leftovers(&host));
    w.stop().await;
}

#[tokio::test]
async fn an_upload_over_the_disk_headroom_is_507_and_leaves_nothing() {
    let (w, dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (other, team) = rival_team(&w, &admin).await;
    let quota = json!({"max_disk_mb": 2});
    let (status, body) = w
        .call(
            Some(&admin),
            "PUT",
            &format!("/v1/teams/{team}/quota"),
            Some(quota),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (id, token) = volume(&w, &other, "v").await;
    let host = host_dir(dir.path(), &team, &id);
    let v = client(&w, Some(&token), &id);

    // Streamed without a length: refused once past the headroom.
    let chunks = (0..12).map(|_| Ok::<_, std::io::Error>(vec![1u8; 256 * 1024]));
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let err = v.expect("PUT", "file?path=/big", streamed, FULL).await;
    assert!(
        err["message"].as_str().unwrap().contains("max_disk_mb"),
        "{err}"
    );
    // Declared too long: refused before a byte is written.
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/volumecontent/{id}/file?path=/big"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-length", (3u64 << 20).to_string())
        .body(Body::from(vec![1u8; 3 << 20]))
        .unwrap();
    assert_eq!(w.send(req).await.0, FULL);
    // A body that breaks mid-way.
    let broken = futures::stream::iter([Ok(vec![1u8; 1024]), Err(std::io::Error::other("gone"))]);
    v.expect("PUT", "file?path=/big", Body::from_stream(broken), BAD)
        .await;
    assert_eq!(walk(&host), Vec::<PathBuf>::new(), "nothing left behind");

    // Within the headroom it is written.
    v.expect("PUT", "file?path=/big", vec![1u8; 512 * 1024], CREATED)
        .await;
    assert_eq!(
        std::fs::metadata(host.join("big")).unwrap().len(),
        512 * 1024
    );
    w.stop().await;
}

#[tokio::test]
async fn a_link_swapped_in_while_requests_run_is_never_followed() {
    let (w, dir) = start().await;
    let admin = w.admin_key.clone().unwrap();
    let (id, token) = volume(&w, &admin, "racy").await;
    let host = host_dir(dir.path(), &team_of(&w, &admin).await, &id);
    let v = client(&w, Some(&token), &id);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("f");
    std::fs::write(&secret, "host file").unwrap();

    // A sandbox flipping `d` between a directory and a link out, as fast
    // as it can, while the API writes, reads, lists and removes below it.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (d, link_to, stop) = (host.join("d"), outside.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::create_dir(&d);
                let _ = std::fs::write(d.join("f"), "inside");
                let _ = std::fs::remove_dir_all(&d);
                let _ = std::os::unix::fs::symlink(&link_to, &d);
                let _ = std::fs::remove_file(&d);
            }
        })
    };
    for _ in 0..50 {
        let (_, read) = v.raw("GET", "file?path=/d/f", Body::empty()).await;
        assert_ne!(read, b"host file");
        v.raw("PUT", "file?path=/d/f", "from the API").await;
        v.raw("PATCH", "path?path=/d/f", r#"{"mode": 511}"#).await;
        v.raw("POST", "dir?path=/d/made&force=true", Body::empty())
            .await;
        v.raw("DELETE", "path?path=/d/f", Body::empty()).await;
        let (_, list) = v.raw("GET", "dir?path=/d", Body::empty()).await;
        assert!(!String::from_utf8_lossy(&list).contains("host file"));
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert_eq!(walk(outside.path()), std::slice::from_ref(&secret));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host file");
    assert_eq!(std::fs::metadata(&secret).unwrap().mode() & 0o777, 0o644);
    assert!(leftovers(&host).is_empty(), "{:?}", leftovers(&host));
    w.stop().await;
}
