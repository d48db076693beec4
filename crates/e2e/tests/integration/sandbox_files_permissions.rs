//! Files in a real sandbox are read and written with the named user's
//! rights, on the native API (`/v1/sandboxes/{id}/files`) and on E2B's
//! `/files` through the proxy: the kernel inside gVisor decides, symlinks
//! lend no rights, and an unknown user is a bad request.

use warren_e2e::Daemon;

/// A native files URL; the paths and users here need no escaping.
fn native(id: &str, path: &str, user: &str) -> String {
    format!("/v1/sandboxes/{id}/files?path={path}&user={user}")
}

/// E2B's `/files` through the proxy, with the team's API key.
fn e2b(
    d: &Daemon,
    id: &str,
    method: reqwest::Method,
    path: &str,
    user: &str,
) -> reqwest::RequestBuilder {
    d.http
        .request(
            method,
            format!("{}/files?path={path}&username={user}", d.url),
        )
        .header("E2b-Sandbox-Id", id)
        .header("E2b-Sandbox-Port", "49983")
        .header("X-API-KEY", &d.key)
}

async fn status_and_text(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// What `/etc/sudoers.d` holds whose name contains `pwn` (a file or a
/// temporary).
async fn pwned(d: &Daemon, id: &str) -> String {
    d.sh_root(id, "ls -A /etc/sudoers.d | grep pwn || true")
        .await
        .stdout_str()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn sandbox_files_are_read_and_written_with_the_users_rights() {
    let d = Daemon::with_base().await;
    let id = d.create_sandbox(serde_json::json!({})).await.id;
    let link = d
        .sh(&id, "ln -s /etc/sudoers.d /home/user/x && echo ok")
        .await;
    assert_eq!(link.stdout_str().trim(), "ok", "{}", link.stderr_str());

    // Native API.
    let (status, body) = status_and_text(d.get(&native(&id, "/etc/shadow", "user"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(!body.contains("root:"), "{body}");
    let (status, body) = status_and_text(d.get(&native(&id, "/etc/shadow", "root"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("root:"), "{body}");
    let (status, body) = status_and_text(
        d.put(&native(&id, "/home/user/x/pwn", "user"))
            .header("content-type", "application/octet-stream")
            .body("pwned"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(pwned(&d, &id).await, "");
    let (status, body) = status_and_text(d.get(&native(&id, "/etc/hostname", "../../x"))).await;
    assert_eq!(status, 400, "{body}");

    // E2B's `/files`, forwarded to the same agent.
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let (status, body) = status_and_text(e2b(&d, &id, get.clone(), "/etc/shadow", "user")).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = status_and_text(e2b(&d, &id, get.clone(), "/etc/shadow", "root")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("root:"), "{body}");
    let (status, body) = status_and_text(
        e2b(&d, &id, post.clone(), "/home/user/x/pwn", "user")
            .header("content-type", "application/octet-stream")
            .body("pwned"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(pwned(&d, &id).await, "");
    let (status, body) = status_and_text(e2b(&d, &id, get, "/etc/hostname", "../../x")).await;
    assert_eq!(status, 400, "{body}");

    // Where the user may write, the file is the user's; root writes anywhere.
    let (status, body) = status_and_text(
        d.put(&native(&id, "/home/user/new/mine.txt", "user"))
            .header("content-type", "application/octet-stream")
            .body("mine"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let owner = d
        .sh(&id, "stat -c %U:%G /home/user/new /home/user/new/mine.txt")
        .await;
    assert_eq!(owner.stdout_str(), "user:user\nuser:user\n");
    let (status, body) = status_and_text(
        e2b(&d, &id, post, "/etc/by-root", "root")
            .header("content-type", "application/octet-stream")
            .body("r"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let owner = d.sh(&id, "stat -c %U /etc/by-root").await;
    assert_eq!(owner.stdout_str(), "root\n");

    // Supplementary groups count: a file of group `adm` opens to `user` once
    // `user` is in `adm`.
    let setup = d
        .sh_root(
            &id,
            "echo adm-only > /var/log/adm.log && chown root:adm /var/log/adm.log && chmod 640 /var/log/adm.log && echo ok",
        )
        .await;
    assert_eq!(setup.stdout_str().trim(), "ok", "{}", setup.stderr_str());
    let adm_log = native(&id, "/var/log/adm.log", "user");
    assert_eq!(status_and_text(d.get(&adm_log)).await.0, 403);
    let joined = d.sh_root(&id, "usermod -aG adm user && echo ok").await;
    assert_eq!(joined.stdout_str().trim(), "ok", "{}", joined.stderr_str());
    assert_eq!(
        status_and_text(d.get(&adm_log)).await,
        (200, "adm-only\n".to_owned())
    );
}
