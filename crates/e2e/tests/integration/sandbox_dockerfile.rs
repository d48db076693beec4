//! Dockerfile builds end to end: a Dockerfile FROM the tiny template with
//! ENV, WORKDIR, COPY (with --chown), RUN and USER builds through the CLI
//! into a daemon's own templates directory; a sandbox from the result
//! shows each effect; an unchanged rebuild reuses the version; a failing
//! RUN names its line; an unsupported instruction is refused before
//! anything runs.

use serde_json::json;
use warren_e2e::Daemon;

const DOCKERFILE: &str = r#"FROM tiny
ENV GREETING=hello
WORKDIR /srv/app
COPY hello.txt ./
COPY --chown=user conf/ /etc/app/
RUN echo "$GREETING from run" > run.txt && id -un > who.txt
USER user
RUN id -un > /home/user/who.txt
"#;

#[tokio::test]
async fn sandbox_from_a_dockerfile_shows_each_step() {
    let work = tempfile::tempdir().unwrap();
    let private = Daemon::private_templates(&["tiny"]).unwrap();
    let templates = private.path().to_path_buf();
    let d = Daemon::start_in(&templates, &[])
        .await
        .expect("daemon starts");

    let context = work.path().join("ctx");
    std::fs::create_dir_all(context.join("conf")).unwrap();
    std::fs::write(context.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(context.join("hello.txt"), "from the context\n").unwrap();
    std::fs::write(context.join("conf/app.conf"), "level=1\n").unwrap();
    let dockerfile = context.join("Dockerfile");
    let build = |name: &str| {
        d.run_cli(&[
            "template",
            "build",
            name,
            "-f",
            dockerfile.to_str().unwrap(),
            context.to_str().unwrap(),
        ])
    };
    let out = build("app");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", d.log());
    assert!(stderr.contains("step 5/5 (line 8): RUN id -un"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("built template app@"), "{stdout}");

    let sb = d.create_sandbox(json!({"template": "app"})).await;
    let script = "cat /srv/app/hello.txt /srv/app/run.txt /srv/app/who.txt /home/user/who.txt; \
                  echo \"GREETING=$GREETING\"; stat -c %U:%G /etc/app/app.conf; stat -c %U /srv/app/hello.txt";
    let out = d.exec(&sb.id, json!({"cmd": ["sh", "-c", script]})).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    assert_eq!(
        out.stdout_str(),
        "from the context\nhello from run\nroot\nuser\nGREETING=hello\nuser:root\nroot\n"
    );
    // Nothing of the build sandbox is left in the template.
    let version = sb.template_version.clone().unwrap();
    let rootfs = templates.join("app/v").join(&version).join("rootfs");
    assert!(rootfs.join("srv/app/run.txt").is_file());
    assert!(
        !rootfs
            .join("usr/local/share/ca-certificates/warren-ca.crt")
            .exists()
    );

    // The same inputs again: no step runs, the version is the same.
    let again = build("app");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(
        stderr.contains("nothing changed since the last build"),
        "{stderr}"
    );
    assert!(!stderr.contains("step 1/5"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .split_whitespace()
            .nth(2),
        stdout.split_whitespace().nth(2)
    );

    // A failing RUN names its line, its command and its output.
    std::fs::write(
        &dockerfile,
        "FROM tiny\nRUN echo preparing\nRUN echo oops >&2; exit 3\n",
    )
    .unwrap();
    let out = build("broken");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step at line 3 (`RUN echo oops >&2; exit 3`) exited with code 3"),
        "{stderr}"
    );
    assert!(stderr.contains("oops"), "{stderr}");
    // An unsupported instruction is refused before anything runs.
    std::fs::write(&dockerfile, "FROM tiny\nSTOPSIGNAL SIGINT\n").unwrap();
    let out = build("broken");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Dockerfile line 2: STOPSIGNAL is not supported"),
        "{stderr}"
    );
    // A COPY source outside the context is refused.
    std::fs::write(&dockerfile, "FROM tiny\nCOPY ../../etc/passwd /x\n").unwrap();
    let out = build("broken");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stay inside the build context"), "{stderr}");
}
