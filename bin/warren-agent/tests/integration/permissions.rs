//! File operations are checked by the kernel with the named user's
//! credentials: run as root (CI does) against an agent whose accounts come
//! from a test `passwd`/`group`.

use crate::common;

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use futures::StreamExt;
use warren_envd::filesystem::WatchDirRequest;
use warren_envd::{Code, EnvdClient};

use common::Agent;

const ALICE: u32 = 4242;
const BOB: u32 = 4243;
const READERS: u32 = 4300;
const OTHERS: u32 = 4301;

/// Accounts: `alice` (also in `readers`), `bob`, and root.
fn accounts() -> tempfile::TempDir {
    let etc = tempfile::tempdir().unwrap();
    std::fs::write(
        etc.path().join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\nalice:x:{ALICE}:{ALICE}::/tmp:/bin/sh\nbob:x:{BOB}:{BOB}::/tmp:/bin/sh\n"
        ),
    )
    .unwrap();
    std::fs::write(
        etc.path().join("group"),
        format!(
            "root:x:0:\nalice:x:{ALICE}:\nbob:x:{BOB}:\nreaders:x:{READERS}:alice\nothers:x:{OTHERS}:bob\n"
        ),
    )
    .unwrap();
    etc
}

async fn agent(etc: &Path) -> Agent {
    Agent::start_with(&["--etc", etc.to_str().unwrap()]).await
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

/// A directory everyone may enter, holding `shared` (world-writable) and
/// `locked` (root's, 0755) and `private` (root's, 0700, with a file).
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    std::fs::create_dir(dir.path().join("shared")).unwrap();
    chmod(&dir.path().join("shared"), 0o777);
    std::fs::create_dir(dir.path().join("locked")).unwrap();
    std::fs::write(dir.path().join("locked/root.txt"), "root's").unwrap();
    std::fs::create_dir(dir.path().join("private")).unwrap();
    chmod(&dir.path().join("private"), 0o700);
    std::fs::write(dir.path().join("private/secret.txt"), "secret").unwrap();
    dir
}

/// `/files` with its query; test paths and users need no escaping.
fn files_url(agent: &Agent, path: Option<&Path>, user: &str) -> String {
    match path {
        Some(p) => format!("{}/files?path={}&username={user}", agent.url, p.display()),
        None => format!("{}/files?username={user}", agent.url),
    }
}

fn denied<T>(r: Result<T, warren_envd::ClientError>) -> Code {
    r.map(drop).unwrap_err().code()
}

async fn http_get(agent: &Agent, path: &Path, user: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(files_url(agent, Some(path), user))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn http_post(agent: &Agent, path: &Path, user: &str, body: &'static str) -> u16 {
    reqwest::Client::new()
        .post(files_url(agent, Some(path), user))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn root_a_user_reads_only_what_the_user_may_read() {
    let etc = accounts();
    let agent = agent(etc.path()).await;
    let dir = tree();
    let secret = dir.path().join("private/secret.txt");
    let (status, body) = http_get(&agent, &secret, "alice").await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("secret\""), "{body}");
    let (status, body) = http_get(&agent, &secret, "root").await;
    assert_eq!((status, body.as_str()), (200, "secret"));

    // The file is open to the group `readers`, which alice is in, bob not.
    let logs = dir.path().join("readers.log");
    std::fs::write(&logs, "for readers").unwrap();
    chown(&logs, 0, READERS);
    chmod(&logs, 0o640);
    assert_eq!(http_get(&agent, &logs, "alice").await.0, 200);
    assert_eq!(http_get(&agent, &logs, "bob").await.0, 403);

    // A symlink does not lend root's rights.
    let link = dir.path().join("shared/link");
    symlink(&secret, &link).unwrap();
    assert_eq!(http_get(&agent, &link, "alice").await.0, 403);

    let alice = agent.client().with_user("alice");
    assert_eq!(
        alice
            .read_file_to_vec(secret.to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let private = dir.path().join("private");
    assert_eq!(
        alice
            .list_dir(private.to_str().unwrap(), 1)
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        alice
            .stat(secret.to_str().unwrap())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn root_a_user_writes_only_where_the_user_may_write() {
    let etc = accounts();
    let agent = agent(etc.path()).await;
    let dir = tree();
    let locked = dir.path().join("locked");
    let shared = dir.path().join("shared");

    // Through a symlinked directory into root's directory: refused, and
    // nothing (not even a temporary file) appears there.
    symlink(&locked, shared.join("x")).unwrap();
    assert_eq!(
        http_post(&agent, &shared.join("x/pwn"), "alice", "pwned").await,
        403
    );
    let boundary = "XbOuNdArY";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\npwned\r\n--{boundary}--\r\n",
        shared.join("x/pwn2").display()
    );
    let resp = reqwest::Client::new()
        .post(files_url(&agent, None, "alice"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let names: Vec<_> = std::fs::read_dir(&locked)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["root.txt"]);

    // Parents are created only where the user may create them.
    assert_eq!(
        http_post(&agent, &locked.join("new/dir/f"), "alice", "x").await,
        403
    );
    assert!(!locked.join("new").exists());

    // Where alice may write, what she writes is hers.
    assert_eq!(
        http_post(&agent, &shared.join("a/b/mine.txt"), "alice", "x").await,
        200
    );
    for p in [shared.join("a"), shared.join("a/b/mine.txt")] {
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (ALICE, ALICE), "{p:?}");
    }

    // In a sticky directory alice may not replace bob's file.
    let sticky = dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    let bobs = sticky.join("bob.txt");
    std::fs::write(&bobs, "bob's").unwrap();
    chown(&bobs, BOB, BOB);
    chmod(&bobs, 0o666);
    assert_eq!(http_post(&agent, &bobs, "alice", "alice's").await, 403);
    assert_eq!(std::fs::read_to_string(&bobs).unwrap(), "bob's");
    assert_eq!(std::fs::read_dir(&sticky).unwrap().count(), 1);

    let alice = agent.client().with_user("alice");
    let root_file = locked.join("root.txt");
    assert_eq!(
        denied(alice.make_dir(locked.join("d").to_str().unwrap()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        denied(alice.remove(root_file.to_str().unwrap()).await),
        Code::PermissionDenied
    );
    assert_eq!(
        denied(
            alice
                .rename(
                    root_file.to_str().unwrap(),
                    shared.join("stolen").to_str().unwrap()
                )
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        denied(
            alice
                .write_file(root_file.to_str().unwrap(), "overwritten")
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(std::fs::read_to_string(&root_file).unwrap(), "root's");

    // Root keeps full access.
    let root = agent.client().with_user("root");
    root.write_file(locked.join("by-root").to_str().unwrap(), "r")
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(locked.join("by-root")).unwrap().uid(), 0);
}

#[tokio::test]
async fn root_a_user_watches_only_what_the_user_may_read() {
    let etc = accounts();
    let agent = agent(etc.path()).await;
    let dir = tree();
    let alice = agent.client().with_user("alice");
    let req = WatchDirRequest {
        path: dir.path().join("private").display().to_string(),
        ..Default::default()
    };
    assert_eq!(
        alice.create_watcher(&req).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let code = match alice.watch_dir(&req, None).await {
        Err(e) => e.code(),
        Ok(mut stream) => stream.next().await.unwrap().unwrap_err().code(),
    };
    assert_eq!(code, Code::PermissionDenied);
    let root = agent.client().with_user("root");
    root.create_watcher(&req).await.unwrap();
}

#[tokio::test]
async fn root_an_unknown_user_is_a_bad_request() {
    let etc = accounts();
    let agent = agent(etc.path()).await;
    let dir = tree();
    for user in ["../../x", "nobody-here"] {
        let (status, body) = http_get(&agent, &dir.path().join("shared"), user).await;
        assert_eq!(status, 400, "{user}: {body}");
        assert_eq!(
            http_post(&agent, &dir.path().join("shared/f"), user, "x").await,
            400
        );
        let client: EnvdClient = agent.client().with_user(user);
        assert_eq!(
            client
                .stat(dir.path().to_str().unwrap())
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument,
            "{user}"
        );
    }
}
