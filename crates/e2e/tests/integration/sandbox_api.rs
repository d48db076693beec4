//! The native API end to end: real daemon, real runsc sandboxes from the
//! `base` template.

use serde_json::json;
use warren_api_types::{ApiError, SandboxList};
use warren_e2e::Daemon;

async fn error_of(resp: reqwest::Response) -> (u16, ApiError) {
    let status = resp.status().as_u16();
    (
        status,
        resp.json().await.expect("error body is {code, message}"),
    )
}

#[tokio::test]
async fn sandbox_create_exec_kill() {
    let d = Daemon::with_base().await;
    let sb = d
        .create_sandbox(json!({"metadata": {"purpose": "e2e"}}))
        .await;
    assert_eq!(sb.state, "running");
    assert_eq!(sb.template, "base");

    let out = d.sh(&sb.id, "echo out; echo err >&2; exit 3").await;
    assert_eq!(out.stdout_str(), "out\n");
    assert_eq!(out.stderr_str(), "err\n");
    assert_eq!(out.exit_code, Some(3));
    assert!(out.pid.is_some());

    let out = d
        .exec(&sb.id, json!({"cmd": ["cat"], "stdin": "from stdin"}))
        .await;
    assert_eq!(out.stdout_str(), "from stdin");
    assert_eq!(out.exit_code, Some(0));

    // Scripts that call `python` work, as on E2B's base image.
    let out = d.sh(&sb.id, "python -c 'print(6 * 7)'").await;
    assert_eq!(
        (out.stdout_str().as_str(), out.exit_code),
        ("42\n", Some(0))
    );

    let out = d
        .exec(
            &sb.id,
            json!({"cmd": ["bash", "-c", "echo $GREETING; pwd; id -un"],
               "env": {"GREETING": "hello"}, "cwd": "/tmp", "user": "root"}),
        )
        .await;
    assert_eq!(out.stdout_str(), "hello\n/tmp\nroot\n");

    // Default user is `user` with home /home/user; base has git, python3, curl.
    let out = d
        .sh(
            &sb.id,
            "id -un; pwd; git --version >/dev/null && python3 -c 'print(6*7)'",
        )
        .await;
    assert_eq!(out.stdout_str(), "user\n/home/user\n42\n");

    let out = d.exec(&sb.id, json!({"cmd": ["/no/such/binary"]})).await;
    assert_eq!(out.exit_code, Some(127), "{out:?}");
    assert_eq!(out.pid, None);

    let listed: SandboxList = d.get_json("/v1/sandboxes?metadata=purpose%3De2e").await;
    assert_eq!(listed.sandboxes.len(), 1);
    let none: SandboxList = d.get_json("/v1/sandboxes?metadata=purpose%3Dother").await;
    assert!(none.sandboxes.is_empty());

    let resp = d
        .delete(&format!("/v1/sandboxes/{}", sb.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, err) = error_of(
        d.get(&format!("/v1/sandboxes/{}", sb.id))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, err.code.as_str()), (404, "not_found"));
    let resp = d
        .post(&format!("/v1/sandboxes/{}/exec", sb.id))
        .json(&json!({"cmd": ["true"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn sandbox_files_in_and_out() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let path = |p: &str| format!("/v1/sandboxes/{}/files?path={p}", sb.id);

    // Text into a nested directory that does not exist yet.
    let resp = d
        .put(&path("/home/user/a/b/c.txt"))
        .body("hello files")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let out = d.sh(&sb.id, "cat /home/user/a/b/c.txt").await;
    assert_eq!(out.stdout_str(), "hello files");

    // 50 MB of binary noise round trips byte for byte.
    let big: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let resp = d
        .put(&path("/tmp/big.bin"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let back = d
        .get(&path("/tmp/big.bin"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(back.len(), big.len());
    assert!(back == big, "50 MB file changed in transit");

    // A file written inside is readable outside.
    d.sh(&sb.id, "printf 'made inside' > /tmp/inside.txt").await;
    let got = d.get_text(&path("/tmp/inside.txt")).await;
    assert_eq!(got, "made inside");

    let (status, err) = error_of(d.get(&path("/tmp/missing")).send().await.unwrap()).await;
    assert_eq!((status, err.code.as_str()), (404, "not_found"));
    let (status, _) = error_of(
        d.get(&format!("/v1/sandboxes/{}/files", sb.id))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sandbox_bad_input_gets_precise_errors() {
    let d = Daemon::start().await.unwrap();
    let cases = [
        (json!({"cpus": 0}), 400, "cpus"),
        (json!({"memory_mb": 5}), 400, "memory_mb"),
        (json!({"templat": "base"}), 400, "templat"),
        (
            json!({"template": "no-such-template"}),
            404,
            "no-such-template",
        ),
        (json!({"timeout_s": 0}), 400, "timeout_s"),
    ];
    for (body, status, word) in cases {
        let (got, err) = error_of(d.post("/v1/sandboxes").json(&body).send().await.unwrap()).await;
        assert_eq!(got, status, "{body}: {err:?}");
        assert!(err.message.contains(word), "{body}: {}", err.message);
    }
    // Malformed JSON and oversized bodies.
    let (got, _) = error_of(
        d.post("/v1/sandboxes")
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got, 400);
    let huge = format!(
        r#"{{"metadata": {{"k": "{}"}}}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (got, err) = error_of(
        d.post("/v1/sandboxes")
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((got, err.code.as_str()), (413, "payload_too_large"));
    // Hostile ids and missing keys.
    for hostile in [
        "/v1/sandboxes/..%2F..%2Fetc",
        "/v1/sandboxes/x%00y",
        "/v1/nope",
    ] {
        let (got, err) = error_of(d.get(hostile).send().await.unwrap()).await;
        assert_eq!((got, err.code.as_str()), (404, "not_found"), "{hostile}");
    }
    let resp = d
        .http
        .get(format!("{}/v1/sandboxes", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = d
        .http
        .get(format!("{}/v1/sandboxes", d.url))
        .bearer_auth(
            "wrn_aaaaaaaaaaaa_0000000000000000000000000000000000000000000000000000000000000000",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The OpenAPI document is served and names the endpoints.
    let doc: serde_json::Value = d
        .http
        .get(format!("{}/v1/openapi.json", d.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/sandboxes/{id}/exec"].is_object());
}

#[tokio::test]
async fn sandbox_timeout_expires() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({"timeout_s": 2})).await;
    let resp = d
        .post(&format!("/v1/sandboxes/{}/timeout", sb.id))
        .json(&json!({"timeout_s": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = d
            .get(&format!("/v1/sandboxes/{}", sb.id))
            .send()
            .await
            .unwrap()
            .status();
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sandbox outlived its timeout"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `user` has passwordless sudo in `base`, as on E2B's base image, so agent
/// scripts that run `sudo apt-get …` work: through set-user-ID bits where
/// runsc honours them (`--allow-suid`, gVisor 20250818 and later), through
/// the agent's relay where it does not (the agent mounted as
/// `/usr/local/bin/sudo`). Either way, a user no sudoers rule lets run
/// everything without a password gets nothing.
#[tokio::test]
async fn sandbox_user_sudo_works_and_only_for_users_sudoers_allows() {
    let flags = std::process::Command::new("runsc")
        .arg("flags")
        .output()
        .expect("runsc");
    let allow_suid = String::from_utf8_lossy(&flags.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&flags.stdout).lines())
        .any(|l| l.trim_start() == "-allow-suid" || l.trim_start().starts_with("-allow-suid "));
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let out = d
        .sh(
            &sb.id,
            "set -e; sudo -n true; sudo -n id -un; sudo apt-get --version | head -1; \
             sudo -u user id -un; echo piped | sudo tee /root/owned >/dev/null; sudo cat /root/owned; \
             sudo env | grep -E '^(HOME|SUDO_USER)=' | sort; \
             cd /tmp && sudo pwd; set +e; sudo sh -c 'exit 7'; echo code=$?",
        )
        .await;
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    assert_eq!(out.exit_code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "root", "{stdout}");
    assert!(lines[1].starts_with("apt "), "{stdout}");
    assert_eq!(
        lines[2..],
        [
            "user",
            "piped",
            "HOME=/root",
            "SUDO_USER=user",
            "/tmp",
            "code=7"
        ],
        "{stdout}"
    );

    // Nobody else: a user no rule names, one the Debian default would ask
    // a password of, and `nobody`.
    let made = d
        .sh_root(&sb.id, "useradd -m guest && useradd -m -G sudo admin")
        .await;
    assert_eq!(made.exit_code, Some(0), "{}", made.stderr_str());
    for who in ["guest", "admin", "nobody"] {
        let refused = d
            .exec(
                &sb.id,
                json!({"cmd": ["bash", "-c", "sudo -n id -un"], "user": who, "cwd": "/"}),
            )
            .await;
        assert_eq!(
            refused.exit_code,
            Some(1),
            "{who}: {}",
            refused.stdout_str()
        );
        assert!(!refused.stdout_str().contains("root"), "{who}");
    }

    if !allow_suid {
        // The relay's command goes with its caller: a killed `sudo` leaves
        // nothing running as root.
        let killed = d
            .sh(
                &sb.id,
                "sudo sleep 300 & pid=$!; sleep 1; kill -9 $pid; sleep 1; \
                 for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done \
                 | grep -c '^sleep 300' || true",
            )
            .await;
        assert_eq!(killed.stdout_str().trim(), "0", "{}", killed.stderr_str());
        // `sudo -l` shows the rule that grants it.
        let listed = d.sh(&sb.id, "sudo -l").await;
        assert!(
            listed.stdout_str().contains("(ALL : ALL) NOPASSWD: ALL"),
            "{}",
            listed.stdout_str()
        );
    }
}
