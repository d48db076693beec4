//! Secrets inside real sandboxes: every sandbox trusts the installation's
//! Warren CA (certificate only, never its key), and keeps trusting it
//! exactly once across pause and resume.

use serde_json::json;
use warren_e2e::Daemon;

#[tokio::test]
async fn sandbox_trusts_the_warren_ca_once_across_pause_and_resume() {
    let d = Daemon::with_base().await;
    let ca = std::fs::read_to_string(d.data_dir().join("secrets/warren-ca.crt")).unwrap();
    let sb = d.create_sandbox(json!({})).await;

    let check = "\
        cat /usr/local/share/ca-certificates/warren-ca.crt; \
        echo \"count=$(grep -c \"$(sed -n 2p /usr/local/share/ca-certificates/warren-ca.crt)\" /etc/ssl/certs/ca-certificates.crt)\"; \
        echo \"env=$SSL_CERT_FILE $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS\"; \
        python3 -c 'import ssl; print(\"python=\" + str(any(\"Warren CA\" in str(c[\"subject\"]) for c in ssl.create_default_context().get_ca_certs())))'; \
        grep -rl 'PRIVATE KEY' /usr/local/share/ca-certificates /etc/ssl/certs 2>/dev/null | head -1; echo end";
    let expect = |out: &str| {
        assert!(
            out.starts_with(ca.trim_end()),
            "installed certificate differs:\n{out}"
        );
        assert!(out.contains("count=1\n"), "{out}");
        assert!(
            out.contains(
                "env=/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/warren-ca.crt\n"
            ),
            "{out}"
        );
        assert!(out.contains("python=True\n"), "{out}");
        assert!(
            out.ends_with("\nend\n"),
            "a key file is in the trust store: {out}"
        );
    };
    let out = d.sh(&sb.id, check).await;
    expect(&out.stdout_str());

    let resp = d
        .post(&format!("/v1/sandboxes/{}/pause", sb.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let resp = d
        .post(&format!("/v1/sandboxes/{}/resume", sb.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    let out = d.sh(&sb.id, check).await;
    expect(&out.stdout_str());
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
        {
            found.push(path);
        }
    }
    found
}

#[tokio::test]
async fn sandbox_injected_secret_reaches_the_server_and_never_the_sandbox() {
    use sha2::{Digest, Sha256};
    use warren_e2e::internet::Internet;

    let net = Internet::start(&[("api.example.test", 2)])
        .await
        .expect("test internet");
    net.wait_ready().await.expect("test servers");
    let upstream = net.dns.to_string();
    let ca = net.ca_cert.to_str().unwrap().to_owned();
    let d = Daemon::start_with(&["--dns-upstream", &upstream, "--upstream-ca", &ca])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");

    let value = format!("wsv-{:032x}", rand_u128());
    let resp = d
        .post("/v1/secrets")
        .json(&json!({"name": "gh", "value": value}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let sb = d
        .create_sandbox(json!({"network": {
            "allow": ["api.example.test"],
            "inject": [{"secret": "gh", "host": "api.example.test", "header": "Authorization",
                        "format": "Bearer {value}", "env": "GH_TOKEN"}],
        }}))
        .await;

    // The sandbox holds the placeholder; the server gets the value.
    let placeholder = d.sh(&sb.id, "printf %s \"$GH_TOKEN\"").await.stdout_str();
    assert_eq!(placeholder, "warren-secret-placeholder:gh");
    let out = d
        .sh(
            &sb.id,
            "curl -sS -m 10 -H \"Authorization: Bearer $GH_TOKEN\" https://api.example.test/",
        )
        .await;
    let sent = hex(&Sha256::digest(format!("Bearer {value}").as_bytes()));
    assert_eq!(
        out.stdout_str(),
        format!("host=api.example.test\nauthorization-sha256={sent}\n"),
        "stderr: {}\n{}",
        out.stderr_str(),
        d.log()
    );
    let env = d
        .sh_root(&sb.id, "cat /proc/*/environ | tr '\\0' '\\n'")
        .await
        .stdout_str();
    assert!(env.contains("warren-secret-placeholder:gh") && !env.contains(&value));

    // Its snapshot — every written file and all of its memory — holds the
    // placeholder (so the search finds what is there) and never the value;
    // neither do the daemon's database and log.
    let resp = d
        .post(&format!("/v1/sandboxes/{}/snapshots", sb.id))
        .json(&json!({"name": "after-request"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let images = d.data_dir().join("snapshots/images");
    assert!(!files_holding(&images, b"warren-secret-placeholder:gh").is_empty());
    assert_eq!(
        files_holding(&images, value.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    for file in ["warren.db", "warren.db-wal", "daemon.log"] {
        let path = d.data_dir().join(file);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "{file} holds the secret"
        );
    }
}

fn rand_u128() -> u128 {
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf))
        .unwrap();
    u128::from_le_bytes(buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A sandbox that would inherit secret injections — a fork, a create from
/// a snapshot — needs `secrets:use` as much as one that names them.
#[tokio::test]
async fn sandbox_inherited_injections_need_secrets_use() {
    let d = Daemon::with_base().await;
    let resp = d
        .post("/v1/secrets")
        .json(&json!({"name": "gh", "value": "wsv-inherited"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let sb = d
        .create_sandbox(json!({"network": {
            "allow": ["api.example.test"],
            "inject": [{"secret": "gh", "host": "api.example.test", "header": "Authorization",
                        "format": "Bearer {value}", "env": "GH_TOKEN"}],
        }}))
        .await;
    let (status, snap) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/snapshots", sb.id),
            Some(json!({"name": "with-secret"})),
        )
        .await;
    assert_eq!(status, 201, "{snap}");
    let snap = snap["id"].as_str().unwrap().to_owned();

    let no_secrets = d
        .mint(
            &d.key,
            json!({"name": "ci", "scopes": ["sandboxes:create", "sandboxes:read"]}),
        )
        .await;
    for (path, body) in [
        (format!("/v1/sandboxes/{}/fork", sb.id), json!({"count": 1})),
        ("/v1/sandboxes".to_owned(), json!({"snapshot": snap})),
        (format!("/sandboxes/{}/fork", sb.id), json!({})),
    ] {
        let (status, err) = d.call(&no_secrets, "POST", &path, Some(body)).await;
        assert_eq!(status, 403, "{path}: {err}");
        assert!(err.to_string().contains("secrets:use"), "{path}: {err}");
    }
    // Nothing was made on the way.
    let (_, list) = d.call(&d.key, "GET", "/v1/sandboxes", None).await;
    assert_eq!(list["sandboxes"].as_array().unwrap().len(), 1, "{list}");
    // The key that may use them forks.
    let (status, forked) = d
        .call(
            &d.key,
            "POST",
            &format!("/v1/sandboxes/{}/fork", sb.id),
            Some(json!({"count": 1})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
}

/// E2B's route to the same injection: a secret made with E2B's Secrets API
/// and named by `${e2b.secrets.NAME}` in a header rule of an E2B create
/// reaches the server as its value, its update as the new one.
#[tokio::test]
async fn sandbox_e2b_secret_placeholder_is_filled_by_the_egress_proxy() {
    use sha2::{Digest, Sha256};
    use warren_e2e::internet::Internet;

    let net = Internet::start(&[("api.example.test", 2)])
        .await
        .expect("test internet");
    net.wait_ready().await.expect("test servers");
    let upstream = net.dns.to_string();
    let ca = net.ca_cert.to_str().unwrap().to_owned();
    let d = Daemon::start_with(&["--dns-upstream", &upstream, "--upstream-ca", &ca])
        .await
        .expect("daemon starts");
    d.ensure_template("base").await.expect("base template");
    let e2b = |path: &str, body: serde_json::Value| {
        d.http
            .post(format!("{}{path}", d.url))
            .header("X-API-KEY", &d.key)
            .json(&body)
            .send()
    };

    let value = format!("wsv-{:032x}", rand_u128());
    let resp = e2b("/secrets", json!({"name": "openai", "value": value}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let resp = e2b(
        "/v2/sandboxes",
        json!({"templateID": "base", "network": {
            "allowOut": ["api.example.test"],
            "rules": {"api.example.test": [{"transform": {"headers": {
                "Authorization": "Bearer ${e2b.secrets.openai}"
            }}}]},
        }}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let id = created["sandboxID"].as_str().unwrap().to_owned();

    let ask = "curl -sS -m 10 -H 'Authorization: ${e2b.secrets.openai}' https://api.example.test/";
    let sent = |v: &str| hex(&Sha256::digest(format!("Bearer {v}").as_bytes()));
    let out = d.sh(&id, ask).await;
    assert_eq!(
        out.stdout_str(),
        format!(
            "host=api.example.test\nauthorization-sha256={}\n",
            sent(&value)
        ),
        "stderr: {}\n{}",
        out.stderr_str(),
        d.log()
    );
    let env = d
        .sh_root(&id, "cat /proc/*/environ | tr '\\0' '\\n'")
        .await
        .stdout_str();
    assert!(!env.contains(&value));

    // An update is a new version; the next request carries it.
    let rotated = format!("wsv-{:032x}", rand_u128());
    let resp = e2b("/secrets/sec_openai", json!({"value": rotated}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(info["currentVersion"], 2, "{info}");
    assert!(!info.to_string().contains(&rotated));
    let out = d.sh(&id, ask).await;
    assert_eq!(
        out.stdout_str(),
        format!(
            "host=api.example.test\nauthorization-sha256={}\n",
            sent(&rotated)
        ),
        "stderr: {}",
        out.stderr_str()
    );
}
