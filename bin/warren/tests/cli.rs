//! End-to-end tests of the `warren` binary against an in-test mock of the
//! daemon's API on 127.0.0.1 (see `mock/`).

mod mock;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use mock::{AuditLog, ID, KEY, MISSING};
use warren_api_types::{Sandbox, SandboxList};

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
fn exec_streams_output_and_exits_with_the_command_code() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["exec", ID, "--", "echo", "hello", "wörld"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello wörld\n");
    assert_eq!(stderr(&o), "wärn\n");

    let o = run(warren(&url).args(["exec", ID, "--", "exit", "42"]));
    assert_eq!(o.status.code(), Some(42));

    let o = run(warren(&url).args(["exec", ID, "--", "killed"]));
    assert_eq!(o.status.code(), Some(137), "SIGKILL maps to 128+9");

    let o = run(warren(&url).args(["exec", ID, "--", "binary"]));
    assert_eq!(
        o.stdout,
        [0, 159, 146, 150, 255, b'\n'],
        "raw bytes pass through"
    );
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

#[test]
fn exec_output_arrives_while_the_command_runs() {
    let (url, _m) = mock::start();
    let mut child = warren(&url)
        .args(["exec", ID, "--", "slow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert_eq!(first, "first\n");
    // The mock holds the stream open for 3 s after "first".
    assert!(
        child.try_wait().unwrap().is_none(),
        "output was buffered until exit"
    );
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    assert_eq!(rest, "second\n");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn exec_passes_stdin_env_cwd_and_user() {
    let (url, _m) = mock::start();
    let mut child = warren(&url)
        .args(["exec", ID, "--stdin", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"line one\nline two\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "line one\nline two\n");

    let o = run(warren(&url).args([
        "exec", ID, "-e", "A=1", "--env", "B=x=y", "--cwd", "/srv", "--user", "root", "--", "env",
    ]));
    assert_eq!(stdout(&o), "A=1\nB=x=y\ncwd=/srv\nuser=root\n");
}

#[test]
fn exec_json_prints_each_event() {
    let (url, _m) = mock::start();
    let o = run(warren(&url).args(["exec", ID, "--json", "--", "echo", "hi"]));
    assert_eq!(o.status.code(), Some(0));
    let types: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types, ["start", "stdout", "stderr", "exit"]);
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
fn cp_round_trips_a_5mb_binary_file() {
    let (url, m) = mock::start();
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random(5 * 1024 * 1024 + 13);
    let src = dir.path().join("blob.bin");
    std::fs::write(&src, &data).unwrap();

    let remote = format!("{ID}:/tmp/blob.bin");
    let o = run(warren(&url).arg("cp").arg(&src).arg(&remote));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        m.file("/tmp/blob.bin").unwrap() == data,
        "upload altered bytes"
    );

    // A directory destination keeps the remote name.
    let back = dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    let o = run(warren(&url).arg("cp").arg(&remote).arg(&back));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        std::fs::read(back.join("blob.bin")).unwrap() == data,
        "download altered bytes"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&back)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["blob.bin"], "temporary files left behind");
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
fn create_ls_info_timeout_kill() {
    let (url, m) = mock::start();
    let o = run(warren(&url).args([
        "create",
        "--cpus",
        "2",
        "--memory",
        "1G",
        "--disk",
        "2G",
        "--timeout",
        "10m",
        "--env",
        "A=1",
        "--metadata",
        "owner=alice",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{ID}\n"));
    assert!(stderr(&o).contains("created sandbox"), "{}", stderr(&o));
    let req = m.seen(|s| s.create.clone()).unwrap();
    assert_eq!(req.cpus, Some(2));
    assert_eq!(req.memory_mb, Some(1024));
    assert_eq!(req.disk_mb, Some(2048));
    assert_eq!(req.timeout_s, Some(600));
    assert_eq!(req.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(req.metadata.get("owner").map(String::as_str), Some("alice"));

    let o = run(warren(&url).args(["create", "--json", "-q", "-m", "owner=alice"]));
    let s: Sandbox = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.id, ID);
    assert!(o.stderr.is_empty(), "--quiet still printed: {}", stderr(&o));

    let o = run(warren(&url).args([
        "ls",
        "--state",
        "running",
        "--state",
        "paused",
        "--metadata",
        "owner=alice",
    ]));
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID", "TEMPLATE", "STATE", "CPUS", "MEMORY", "DISK", "CREATED", "EXPIRES"
        ]
    );
    assert!(lines.next().unwrap().starts_with(ID));
    assert_eq!(
        m.seen(|s| s.list_query.clone()).unwrap(),
        "state=running&state=paused&metadata=owner%3Dalice"
    );

    let o = run(warren(&url).args(["ls", "--json"]));
    let list: SandboxList = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.sandboxes.len(), 1);

    let o = run(warren(&url).args(["info", ID]));
    assert!(stdout(&o).contains("owner=alice"), "{}", stdout(&o));

    let o = run(warren(&url).args(["timeout", ID, "1m5s", "--json"]));
    let s: Sandbox = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.expires_at, "2099-01-01T00:00:05Z", "65 s were sent");

    let o = run(warren(&url).args(["kill", ID, MISSING]));
    assert_eq!(o.status.code(), Some(1), "one of two kills failed");
    assert_eq!(stdout(&o), format!("{ID}\n"));
    assert!(stderr(&o).contains(&format!("{MISSING}: sandbox {MISSING} does not exist")));
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
        stdout(&o).starts_with("built template base (1.0 MiB)"),
        "{}",
        stdout(&o)
    );

    let o = run(warren(&url).args(["template", "build", "broken"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("building template broken failed: mmdebstrap exited"));
}

#[test]
fn shell_pipes_input_and_exits_with_the_remote_code() {
    let (url, m) = mock::start();
    let mut child = warren(&url)
        .args(["shell", ID, "--cmd", "/bin/sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"echo hi\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ready\r\necho hi\n");
    let query = m.seen(|s| s.pty_query.clone()).unwrap();
    assert_eq!(query, "cols=80&rows=24&cmd=%2Fbin%2Fsh");
    assert_eq!(
        m.seen(|s| s.auth_on_pty.clone()).unwrap(),
        format!("Bearer {KEY}")
    );
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
