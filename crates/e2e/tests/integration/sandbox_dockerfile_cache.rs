//! The step cache of Dockerfile builds end to end: a Dockerfile sharing
//! its first steps with an earlier one replays them from the cache (the
//! same random bytes, no step run again) and runs only the rest; a changed
//! COPY'd file runs that step and the later ones again; a step deleting a
//! file of the FROM tree replays with the file gone; a kept layer that
//! would write outside the tree is refused, dropped and its step run
//! again; `--no-cache` runs every step.

use std::path::Path;

use serde_json::json;
use warren_e2e::Daemon;

const RANDOM: &str = "RUN head -c 16 /dev/urandom | od -An -tx1 > /random1";

fn dockerfile(three: &str) -> String {
    format!("FROM tiny\n{RANDOM}\nCOPY data.txt /data.txt\nRUN echo {three} > /three\n")
}

/// Builds `name` from `text` in `context`; returns the build's log.
fn build(d: &Daemon, context: &Path, name: &str, text: &str, extra: &[&str]) -> String {
    let file = context.join("Dockerfile");
    std::fs::write(&file, text).unwrap();
    let mut args = vec!["template", "build", name, "-f", file.to_str().unwrap()];
    args.extend(extra);
    args.push(context.to_str().unwrap());
    let out = d.run_cli(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}\n{}", d.log());
    stderr
}

async fn read(d: &Daemon, template: &str, script: &str) -> String {
    let sb = d.create_sandbox(json!({"template": template})).await;
    let out = d.exec(&sb.id, json!({"cmd": ["sh", "-c", script]})).await;
    assert_eq!(out.exit_code, Some(0), "{}", out.stderr_str());
    out.stdout_str()
}

#[tokio::test]
async fn sandbox_dockerfile_steps_replay_from_the_cache() {
    let work = tempfile::tempdir().unwrap();
    let private = Daemon::private_templates(&["tiny"]).unwrap();
    let templates = private.path().to_path_buf();
    let d = Daemon::start_in(&templates, &[])
        .await
        .expect("daemon starts");
    let context = work.path().join("ctx");
    std::fs::create_dir(&context).unwrap();
    std::fs::write(context.join("data.txt"), "one\n").unwrap();

    let log = build(&d, &context, "a", &dockerfile("a"), &[]);
    assert!(!log.contains("(cached)"), "{log}");
    let a = read(&d, "a", "cat /random1 /data.txt /three").await;

    // Same first two steps, another third: only the third runs.
    let log = build(&d, &context, "b", &dockerfile("b"), &[]);
    assert!(
        log.contains(&format!("step 1/3 (line 2): {RANDOM} (cached)")),
        "{log}"
    );
    assert!(
        log.contains("step 2/3 (line 3): COPY data.txt /data.txt (cached)"),
        "{log}"
    );
    assert!(
        log.contains("step 3/3 (line 4): RUN echo b > /three\n"),
        "{log}"
    );
    let b = read(&d, "b", "cat /random1 /data.txt /three").await;
    let random = a.lines().next().unwrap().to_owned();
    assert_eq!(b, format!("{random}\none\nb\n"));

    // The COPY'd file changes: the COPY and what follows run again.
    std::fs::write(context.join("data.txt"), "two\n").unwrap();
    let log = build(&d, &context, "b", &dockerfile("b"), &[]);
    assert!(log.contains("step 1/3 (line 2): "), "{log}");
    assert!(log.contains(" (cached)\n"), "{log}");
    assert!(
        log.contains("step 2/3 (line 3): COPY data.txt /data.txt\n"),
        "{log}"
    );
    assert!(
        log.contains("step 3/3 (line 4): RUN echo b > /three\n"),
        "{log}"
    );
    let b2 = read(&d, "b", "cat /random1 /data.txt /three").await;
    assert_eq!(b2, format!("{random}\ntwo\nb\n"));

    // A step that deletes a file of the FROM tree replays with it gone.
    let deleting = "FROM tiny\nRUN rm /etc/shadow\nRUN echo kept > /kept\n";
    let log = build(&d, &context, "del1", deleting, &[]);
    assert!(!log.contains("(cached)"), "{log}");
    let log = build(&d, &context, "del2", deleting, &[]);
    assert!(
        log.contains("step 1/2 (line 2): RUN rm /etc/shadow (cached)"),
        "{log}"
    );
    assert!(
        log.contains("step 2/2 (line 3): RUN echo kept > /kept (cached)"),
        "{log}"
    );
    let got = read(
        &d,
        "del2",
        "test -e /etc/shadow && echo present; cat /kept /etc/passwd | head -1",
    )
    .await;
    assert!(got.starts_with("kept\n"), "{got}");

    // Layers are applied as untrusted: one that would write through a
    // symlink out of the tree is refused, dropped, and its step runs.
    let layers = templates.join(".layers");
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for entry in std::fs::read_dir(&layers).unwrap() {
        let path = entry.unwrap().path();
        std::fs::write(&path, hostile_layer(&outside)).unwrap();
    }
    let log = build(&d, &context, "del3", deleting, &[]);
    assert!(!log.contains("(cached)"), "{log}");
    assert!(
        log.contains("step 1/2 (line 2): RUN rm /etc/shadow\n"),
        "{log}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    let got = read(
        &d,
        "del3",
        "test -e /etc/shadow && echo present; test -e /escape && echo escape; cat /kept",
    )
    .await;
    assert_eq!(got, "kept\n");

    // --no-cache runs every step: new random bytes, even for an unchanged
    // Dockerfile.
    let log = build(&d, &context, "b", &dockerfile("b"), &["--no-cache"]);
    assert!(!log.contains("(cached)"), "{log}");
    assert!(!log.contains("nothing changed"), "{log}");
    let b3 = read(&d, "b", "cat /random1 /data.txt /three").await;
    assert_ne!(b3.lines().next().unwrap(), random, "{b3}");
    assert!(b3.ends_with("\ntwo\nb\n"), "{b3}");
}

/// A layer whose second entry writes through its first, a symlink to
/// `outside`.
fn hostile_layer(outside: &Path) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    tar.append_link(&mut h, "escape", outside).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(3);
    h.set_mode(0o644);
    tar.append_data(&mut h, "escape/owned", &b"bad"[..])
        .unwrap();
    tar.into_inner().unwrap()
}
