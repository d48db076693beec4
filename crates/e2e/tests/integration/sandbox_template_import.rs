//! Importing images as templates, end to end: an OCI archive and a docker
//! archive built here from the `tiny` template's files plus an upper layer
//! that whites out a lower file, imported through the CLI into a daemon's
//! own templates directory, then booted: a sandbox sees the top layer's
//! file, not the whited-out one, and the image's Env.

use std::path::Path;

use serde_json::json;
use warren_e2e::Daemon;
use warren_template::oci::testing::{self, Entry};

/// The lower layer: the tiny template's root filesystem plus two files.
fn lower_layer() -> Vec<u8> {
    let tiny = Daemon::template_rootfs("tiny").unwrap();
    assert!(
        tiny.join("bin/busybox").is_file(),
        "the tiny test template is missing at {}",
        tiny.display()
    );
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    for entry in std::fs::read_dir(&tiny).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".warren" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            b.append_dir_all(Path::new(&name), &path).unwrap();
        } else {
            b.append_path_with_name(&path, &name).unwrap();
        }
    }
    for (name, data) in [
        ("lower.txt", &b"from the lower layer\n"[..]),
        ("gone.txt", b"whited out\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.into_inner().unwrap()
}

async fn check_sandbox(d: &Daemon, template: &str) {
    let sb = d.create_sandbox(json!({"template": template})).await;
    let out = d
        .exec(
            &sb.id,
            json!({"cmd": ["sh", "-c", "cat /top.txt /lower.txt; test -e /gone.txt && echo GONE-IS-THERE; echo \"FOO=$FOO\"; id -un"]}),
        )
        .await;
    let stdout = out.stdout_str();
    assert_eq!(out.exit_code, Some(0), "{stdout}{}", out.stderr_str());
    assert_eq!(
        stdout,
        "from the top layer\nfrom the lower layer\nFOO=from the image\nuser\n",
        "{}",
        out.stderr_str()
    );
    // The caller's env wins over the image's.
    let sb = d
        .create_sandbox(json!({"template": template, "env": {"FOO": "mine"}}))
        .await;
    let out = d
        .exec(&sb.id, json!({"cmd": ["sh", "-c", "echo $FOO"]}))
        .await;
    assert_eq!(out.stdout_str(), "mine\n");
}

#[tokio::test]
async fn sandbox_from_imported_oci_and_docker_archives() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let d = Daemon::start_in(&templates, &[])
        .await
        .expect("daemon starts");

    let lower = lower_layer();
    let upper = testing::layer(&[
        Entry::File(".wh.gone.txt", b""),
        Entry::File("top.txt", b"from the top layer\n"),
    ]);
    let config = testing::config(
        &[&lower, &upper],
        &["FOO=from the image"],
        &["/bin/sh"],
        "/",
        "",
    );
    let layout = work.path().join("layout");
    testing::oci_layout(
        &layout,
        &config,
        &[testing::gzip(&lower), testing::gzip(&upper)],
    );
    let oci = work.path().join("image.tar");
    testing::tar_dir(&layout, &oci);
    let docker = work.path().join("docker.tar");
    testing::docker_archive(&docker, &config, &[&lower, &upper]);

    for (name, source) in [
        ("from-oci", format!("oci-archive:{}", oci.display())),
        ("from-layout", format!("oci:{}", layout.display())),
        (
            "from-docker",
            format!("docker-archive:{}", docker.display()),
        ),
    ] {
        let out = d.run_cli(&["template", "import", name, &source]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{source}: {stdout}{stderr}\n{}",
            d.log()
        );
        assert!(
            stdout.starts_with(&format!("imported template {name}@")),
            "{stdout}"
        );
        assert!(stderr.contains("layer 2/2"), "{stderr}");
        check_sandbox(&d, name).await;
    }

    // Importing the same image again gives the same version back.
    let before = d.run_cli(&["template", "ls", "--json"]);
    let out = d.run_cli(&[
        "template",
        "import",
        "from-oci",
        &format!("oci-archive:{}", oci.display()),
    ]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("identical to version"));
    assert_eq!(
        d.run_cli(&["template", "ls", "--json"]).stdout,
        before.stdout
    );
    // A corrupt archive fails with the blob named, and leaves a failed template.
    let blob = testing::digest(&testing::gzip(&upper));
    let path = layout.join("blobs/sha256").join(&blob[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let out = d.run_cli(&[
        "template",
        "import",
        "corrupt",
        &format!("oci:{}", layout.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "blob blobs/sha256/{} does not match its digest",
            &blob[7..]
        )),
        "{stderr}"
    );
    let resp = d
        .post("/v1/sandboxes")
        .json(&json!({"template": "corrupt"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
}

/// An image of the tiny template's files plus `/version.txt` saying `text`.
fn image_saying(work: &Path, text: &[u8]) -> std::path::PathBuf {
    let lower = lower_layer();
    let upper = testing::layer(&[Entry::File("version.txt", text)]);
    let config = testing::config(&[&lower, &upper], &[], &["/bin/sh"], "/", "");
    let layout = work.join(format!("layout-{}", text.len()));
    testing::oci_layout(
        &layout,
        &config,
        &[testing::gzip(&lower), testing::gzip(&upper)],
    );
    let archive = work.join(format!("image-{}.tar", text.len()));
    testing::tar_dir(&layout, &archive);
    archive
}

#[tokio::test]
async fn sandbox_keeps_its_template_version_across_a_rebuild_and_a_pause() {
    let work = tempfile::tempdir().unwrap();
    let templates = work.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    // No standby: the resume restores the image onto its root filesystem.
    let d = Daemon::start_in(&templates, &["--standby", "0"])
        .await
        .expect("daemon starts");
    let import = |archive: std::path::PathBuf| {
        let out = d.run_cli(&[
            "template",
            "import",
            "app",
            &format!("oci-archive:{}", archive.display()),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let version_file = |id: String| {
        let d = &d;
        async move {
            d.exec(&id, json!({"cmd": ["cat", "/version.txt"]}))
                .await
                .stdout_str()
        }
    };

    import(image_saying(work.path(), b"one\n"));
    let old = d.create_sandbox(json!({"template": "app"})).await;
    assert_eq!(version_file(old.id.clone()).await, "one\n");
    let resp = d
        .post(&format!("/v1/sandboxes/{}/pause", old.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());

    import(image_saying(work.path(), b"two, longer\n"));
    let new = d.create_sandbox(json!({"template": "app"})).await;
    assert_eq!(version_file(new.id.clone()).await, "two, longer\n");
    assert_ne!(new.template_version, old.template_version);

    // The paused sandbox resumes on the version it started from.
    let resp = d
        .post(&format!("/v1/sandboxes/{}/resume", old.id))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    assert_eq!(version_file(old.id.clone()).await, "one\n");
    let info = d.run_cli(&["template", "info", "app"]);
    let table = String::from_utf8_lossy(&info.stdout);
    let old_version = old.template_version.unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with(&old_version))
        .unwrap_or_default();
    assert!(row.contains(" yes "), "the old version is in use:\n{table}");
}
