//! End-to-end tests of the `warren` binary against an in-test mock of the
//! daemon's API on 127.0.0.1 (see `mock/`), for what the in-process server
//! over the fake runtime cannot show (`cli_server.rs` and `shell_tty.rs`
//! have the rest: streamed output, stdin, terminals): responses cut at any
//! byte, agent failures, directory copies, template builds, tampered audit
//! logs; and the CLI's own errors, which need no server.

use crate::mock;

use std::process::{Command, Output, Stdio};

use mock::{AuditLog, ID, KEY, MISSING};

/// A `warren` command talking to `url` with the right key and no ambient config.
fn warren(url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WARREN_URL", url)
        .env("WARREN_API_KEY", KEY)
        .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
        .stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("warren runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn exec_output_cut_anywhere_and_a_killed_command_exit_code() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["exec", ID, "--", "echo", "hello", "wörld"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello wörld\n");
    assert_eq!(stderr(&o), "wärn\n");

    let o = run(warren(&url).args(["exec", ID, "--", "killed"]));
    assert_eq!(o.status.code(), Some(137), "SIGKILL maps to 128+9");
}

#[test]
fn exec_failures_exit_1_with_a_message() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["exec", ID, "--", "missing"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("the command could not run: no such file or directory"),
        "{}",
        stderr(&o)
    );

    let o = run(warren(&url).args(["exec", ID, "--", "truncated"]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "partial", "output before the break is kept");
    assert!(stderr(&o).contains("exit status"), "{}", stderr(&o));
}

/// Deterministic, incompressible-looking bytes.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn cp_into_a_remote_directory_and_to_stdout() {
    let (url, m) = mock::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("notes.txt");
    std::fs::write(&src, "hello\n").unwrap();
    let o = run(warren(&url)
        .arg("cp")
        .arg(&src)
        .arg(format!("{ID}:/home/user/")));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(m.file("/home/user/notes.txt").unwrap(), b"hello\n");

    let o = run(warren(&url).args(["cp", &format!("{ID}:/home/user/notes.txt"), "-"]));
    assert_eq!(stdout(&o), "hello\n");
}

#[test]
fn cp_errors_are_clear_and_leave_nothing_behind() {
    let (url, _m) = mock::start();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");

    let o = run(warren(&url)
        .arg("cp")
        .arg(format!("{ID}:/no/such/file"))
        .arg(&dst));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: /no/such/file does not exist in sandbox {ID}\n")
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let o = run(warren(&url)
        .arg("cp")
        .arg(dir.path())
        .arg(format!("{ID}:/tmp/")));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("directories are not supported yet; use tar"),
        "{}",
        stderr(&o)
    );

    // The daemon refusing an upload early still yields its message.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, pseudo_random(8 * 1024 * 1024)).unwrap();
    let o = run(warren(&url)
        .arg("cp")
        .arg(&big)
        .arg(format!("{MISSING}:/tmp/big.bin")));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: sandbox {MISSING} does not exist\n")
    );

    let o = run(warren(&url).args(["cp", "a", "b"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ID:/path"), "{}", stderr(&o));
}

#[test]
fn api_errors_print_the_message_and_exit_1() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["info", MISSING]));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: sandbox {MISSING} does not exist\n")
    );
    assert!(o.stdout.is_empty());

    let o = run(warren(&url).args(["info", MISSING, "--json"]));
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["code"], "not_found");
    assert_eq!(v["message"], format!("sandbox {MISSING} does not exist"));
}

#[test]
fn pause_fs_only_asks_for_a_filesystem_pause_and_info_shows_it() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["pause", "--fs-only", ID, "--json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["pause_mode"], "filesystem");
    let o = run(warren(&url).args(["info", ID]));
    assert!(stdout(&o).contains("paused (filesystem)"), "{}", stdout(&o));
    let o = run(warren(&url).args(["pause", ID]));
    assert_eq!(stdout(&o), format!("{ID} paused\n"));
    let o = run(warren(&url).args(["info", ID]));
    assert!(stdout(&o).contains("paused (full)"), "{}", stdout(&o));
}

#[test]
fn usage_errors_exit_2() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["info", "not-an-id"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a valid sandbox id"),
        "{}",
        stderr(&o)
    );
    let o = run(warren(&url).args(["create", "--timeout", "soon"]));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn templates_list_and_build() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["template", "ls"]));
    assert!(stdout(&o).contains("base") && stdout(&o).contains("317.0 MiB"));

    let o = run(warren(&url).args(["template", "build", "base"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "building base\ninstalling packages\n");
    assert!(
        stdout(&o).starts_with("built template base@0123456789abcdef (1.0 MiB)"),
        "{}",
        stdout(&o)
    );

    let o = run(warren(&url).args(["template", "build", "broken"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("building template broken failed: mmdebstrap exited"));
}

#[test]
fn unreachable_daemon_is_named() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(warren(&url).arg("ls"));
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!("error: cannot reach the Warren daemon at {url}: is `warren serve` running?\n")
    );
}

#[test]
fn missing_configuration_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(warren("")
        .env_remove("WARREN_URL")
        .env_remove("WARREN_API_KEY")
        .env_remove("WARREN_CONFIG")
        .env("WARREN_DATA_DIR", dir.path())
        .arg("ls"));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("warren serve") && err.contains("WARREN_URL and WARREN_API_KEY"),
        "{err}"
    );
}

#[test]
fn client_config_file_and_flags() {
    let (url, _m) = mock::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client.json");
    std::fs::write(
        &file,
        serde_json::json!({ "url": url, "api_key": KEY }).to_string(),
    )
    .unwrap();
    let o = run(warren("")
        .env_remove("WARREN_URL")
        .env_remove("WARREN_API_KEY")
        .env("WARREN_CONFIG", &file)
        .args(["info", ID]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // A wrong key on the command line beats the right one in the file.
    let o = run(warren("")
        .env_remove("WARREN_URL")
        .env_remove("WARREN_API_KEY")
        .env("WARREN_CONFIG", &file)
        .args(["info", ID, "--api-key", "wrong"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid API key"), "{}", stderr(&o));
}

#[test]
fn serve_rejects_bad_arguments_before_starting() {
    let o = run(warren("").args(["serve", "--sandbox-cidr", "10.0.0.0/31"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("10.77.0.0/16"), "{}", stderr(&o));
    let o = run(warren("").args(["serve", "--meter-interval", "10h"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("1s to 5m"), "{}", stderr(&o));

    // A price table that is not one stops the start and says why.
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (r#"{"vcpu_second": -1}"#, "vcpu_second"),
        (r#"{"cpu": 1}"#, "not valid"),
        ("not json", "not valid"),
    ] {
        let file = dir.path().join("prices.json");
        std::fs::write(&file, text).unwrap();
        let o = run(warren("").args(["serve", "--prices"]).arg(&file));
        assert_ne!(o.status.code(), Some(0), "{text}");
        assert!(stderr(&o).contains(says), "{text}: {}", stderr(&o));
    }
}

/// A log of `n` entries with heads at the sizes in `at`, signed by `seed`'s key.
fn audit_log_by(seed: u8, n: u64, at: &[u64]) -> AuditLog {
    use warren_audit::{AuditEntry, ExportedEntry, Frontier, Outcome, SigningKey, TreeHead};
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mut frontier = Frontier::new();
    let mut log = AuditLog {
        public_key: key
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        ..Default::default()
    };
    for i in 0..n {
        let entry = AuditEntry {
            index: i,
            time_ms: 1_800_000_000_000 + i,
            team: "default".into(),
            actor: vec!["key:abc".into()],
            action: "process.exec".into(),
            target: ID.into(),
            outcome: Outcome::Ok,
            details: Default::default(),
        };
        let leaf = entry.leaf_hash().unwrap();
        frontier.push(leaf);
        let line = ExportedEntry {
            entry,
            leaf_hash: Some(leaf),
        };
        log.lines.push(serde_json::to_string(&line).unwrap());
        if at.contains(&(i + 1)) {
            let head = TreeHead {
                size: i + 1,
                root_hash: frontier.root(),
                timestamp_ms: 1,
            };
            log.heads
                .push(serde_json::to_value(head.sign(&key)).unwrap());
        }
    }
    log
}

fn audit_log(n: u64, at: &[u64]) -> AuditLog {
    audit_log_by(5, n, at)
}

#[test]
fn audit_verify_passes_names_an_edited_entry_and_catches_a_rollback() {
    let (url, m) = mock::start();
    m.set_audit(audit_log(8, &[4, 8]));
    let ok = run(warren(&url).args(["audit", "verify"]));
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("ok: 8 entries verified against 2 signed heads"),
        "{}",
        stdout(&ok)
    );

    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("cp.json");
    let saved = run(warren(&url).args(["audit", "checkpoint", cp.to_str().unwrap()]));
    assert!(saved.status.success(), "{}", stderr(&saved));
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cp).unwrap()).unwrap();
    assert_eq!(checkpoint["head"]["size"], 8);

    let mut edited = audit_log(8, &[4, 8]);
    edited.lines[5] = edited.lines[5].replace("process.exec", "process.kill");
    m.set_audit(edited);
    let bad = run(warren(&url).args(["audit", "verify"]));
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("failed at index 5:"),
        "{}",
        stderr(&bad)
    );

    // Rolled back to 4 entries with its heads: fine alone, not against the checkpoint.
    m.set_audit(audit_log(4, &[4]));
    assert!(run(warren(&url).args(["audit", "verify"])).status.success());
    let rolled = run(warren(&url).args([
        "audit",
        "verify",
        "--json",
        "--checkpoint",
        cp.to_str().unwrap(),
    ]));
    assert_eq!(rolled.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&rolled.stdout).unwrap();
    assert_eq!(report["first_bad_index"], 4, "{report}");

    // A daemon signing with another key is not the checkpoint's log.
    m.set_audit(audit_log_by(6, 8, &[4, 8]));
    let other = run(warren(&url).args(["audit", "verify", "--checkpoint", cp.to_str().unwrap()]));
    assert_eq!(other.status.code(), Some(1));
    assert!(
        stderr(&other).contains("the checkpoint was signed with"),
        "{}",
        stderr(&other)
    );
}

#[test]
fn audit_ls_export_and_timeline() {
    let (url, m) = mock::start();
    let log = audit_log(3, &[3]);
    m.set_audit(log.clone());
    let ls = run(warren(&url).args(["audit", "ls"]));
    assert!(ls.status.success(), "{}", stderr(&ls));
    let text = stdout(&ls);
    assert!(text.starts_with("INDEX"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    let export = run(warren(&url).args(["audit", "export"]));
    assert_eq!(
        stdout(&export),
        log.lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    let tl = run(warren(&url).args(["timeline", ID]));
    assert!(
        stdout(&tl).contains("ran `ls -l` as user: exit 2 in 12 ms"),
        "{}",
        stdout(&tl)
    );
    let missing = run(warren(&url).args(["timeline", MISSING]));
    assert_eq!(missing.status.code(), Some(1));
}
