//! The `warren` binary against the real API: the daemon's own routers and
//! services, in process over the fake runtime (`warren_server::testing`),
//! on a port of 127.0.0.1. What the CLI sends is what the daemon decodes,
//! validates and answers, not what a stand-in expects.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use warren_api_types::Sandbox;
use warren_runtime::fake::{CommandOutput, FakeRuntime};
use warren_server::testing::InProcess;

/// A Warren on a socket, and the directory it lives in.
struct Daemon {
    server: InProcess,
    url: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(runtime: FakeRuntime) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = InProcess::start(dir.path(), Arc::new(runtime))
            .await
            .unwrap();
        let addr = server.serve().await.unwrap();
        Self {
            server,
            url: format!("http://{addr}"),
            _dir: dir,
        }
    }

    /// Runs `warren ARGS` with the admin key and no ambient configuration,
    /// off the server's threads.
    async fn warren(&self, args: &[&str]) -> Output {
        self.warren_with(self.server.admin_key.as_deref().unwrap(), args)
            .await
    }

    async fn warren_with(&self, key: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("WARREN_URL", &self.url)
            .env("WARREN_API_KEY", key)
            .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
            .args(args)
            .stdin(Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().expect("warren runs"))
            .await
            .unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_is_created_listed_inspected_extended_and_killed() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let o = d
        .warren(&[
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
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();
    assert!(stderr(&o).contains("created sandbox"), "{}", stderr(&o));

    let o = d.warren(&["info", &id, "--json"]).await;
    let s: Sandbox = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (s.cpus, s.memory_mb, s.state.as_str()),
        (2, 1024, "running")
    );
    assert_eq!(s.metadata.get("owner").map(String::as_str), Some("alice"));

    let o = d.warren(&["ls", "--metadata", "owner=alice"]).await;
    assert!(
        stdout(&o).lines().nth(1).unwrap().starts_with(&id),
        "{}",
        stdout(&o)
    );
    let o = d.warren(&["ls", "--metadata", "owner=bob"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains(&id), "{}", stdout(&o));

    // The clock stands still: the new expiry is 65 s from now, to the
    // store's millisecond.
    let o = d.warren(&["timeout", &id, "1m5s", "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let s: Sandbox = serde_json::from_slice(&o.stdout).unwrap();
    let got = time::OffsetDateTime::parse(
        &s.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let want = d.server.clock.clock().now() + time::Duration::seconds(65);
    assert!(
        (want - got).abs() < time::Duration::milliseconds(1),
        "{got} vs {want}"
    );

    let missing = "zzzzzzzzzz0000000000";
    let o = d.warren(&["kill", &id, missing]).await;
    assert_eq!(o.status.code(), Some(1), "one of two kills failed");
    assert_eq!(stdout(&o), format!("{id}\n"));
    assert!(stderr(&o).contains(missing), "{}", stderr(&o));
    let o = d.warren(&["info", &id]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_prints_the_commands_output_and_exits_with_its_code() {
    let runtime = FakeRuntime::new();
    runtime.on_command(|c: &warren_envd::process::ProcessConfig| {
        (c.cmd == "build").then(|| CommandOutput::failed(3, "compile error\n"))
    });
    let d = Daemon::start(runtime).await;
    let o = d.warren(&["create"]).await;
    let id = stdout(&o).trim().to_owned();

    let o = d
        .warren(&["exec", &id, "--", "echo", "hello", "there"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "hello there\n");
    let o = d.warren(&["exec", &id, "--", "build"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stderr(&o), "compile error\n");
    d.server.stop().await;
}

/// `warren ARGS` started with piped stdin and stdout, off the server's
/// threads' way.
fn spawn(d: &Daemon, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WARREN_URL", &d.url)
        .env("WARREN_API_KEY", d.server.admin_key.as_deref().unwrap())
        .env("WARREN_CONFIG", "/nonexistent/warren-client.json")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("warren runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_maps_exit_codes_passes_stderr_and_raw_bytes_and_prints_events() {
    let runtime = FakeRuntime::new();
    runtime.on_command(
        |c: &warren_envd::process::ProcessConfig| match c.cmd.as_str() {
            "greet" => Some(CommandOutput {
                exit_code: 0,
                stdout: "hello wörld\n".into(),
                stderr: "wärn\n".into(),
            }),
            "binary" => Some(CommandOutput::ok(vec![0, 159, 146, 150, 255, b'\n'])),
            _ => None,
        },
    );
    let d = Daemon::start(runtime).await;
    let id = stdout(&d.warren(&["create"]).await).trim().to_owned();

    let o = d.warren(&["exec", &id, "--", "greet"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        (stdout(&o), stderr(&o)),
        ("hello wörld\n".into(), "wärn\n".into())
    );
    let o = d.warren(&["exec", &id, "--", "exit", "42"]).await;
    assert_eq!(o.status.code(), Some(42));
    let o = d.warren(&["exec", &id, "--", "binary"]).await;
    assert_eq!(
        o.stdout,
        [0, 159, 146, 150, 255, b'\n'],
        "raw bytes pass through"
    );
    let o = d.warren(&["exec", &id, "--", "no-such-command"]).await;
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));

    let o = d.warren(&["exec", &id, "--json", "--", "greet"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let types: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types, ["start", "stdout", "stderr", "exit"]);
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_arrives_while_the_command_runs() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let id = stdout(&d.warren(&["create"]).await).trim().to_owned();
    // `wait-for` prints a line, then runs until the file exists.
    let mut child = spawn(&d, &["exec", &id, "--", "wait-for", "/tmp/go"]);
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        (line, reader)
    });
    let (line, mut reader) = first.await.unwrap();
    assert_eq!(line, "waiting for /tmp/go\n");
    assert!(
        child.try_wait().unwrap().is_none(),
        "output was held until the command ended"
    );
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    std::fs::write(&go, b"go").unwrap();
    let o = d
        .warren(&["cp", go.to_str().unwrap(), &format!("{id}:/tmp/go")])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rest = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        (rest, child.wait().unwrap())
    });
    let (rest, status) = rest.await.unwrap();
    assert_eq!(rest, "/tmp/go is there\n");
    assert_eq!(status.code(), Some(0));
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_passes_stdin_env_cwd_and_user() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let id = stdout(&d.warren(&["create", "--env", "FROM_CREATE=yes"]).await)
        .trim()
        .to_owned();
    let mut child = spawn(&d, &["exec", &id, "--stdin", "--", "cat"]);
    let mut input = child.stdin.take().unwrap();
    let o = tokio::task::spawn_blocking(move || {
        std::io::Write::write_all(&mut input, b"line one\nline two\n").unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "line one\nline two\n");

    let o = d
        .warren(&[
            "exec", &id, "-e", "A=1", "--env", "B=x=y", "--cwd", "/srv", "--user", "root", "--",
            "env",
        ])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for line in ["A=1", "B=x=y", "FROM_CREATE=yes", "cwd=/srv", "user=root"] {
        assert!(out.lines().any(|l| l == line), "no {line} in {out}");
    }
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_pipes_input_and_exits_with_the_remote_code() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let id = stdout(&d.warren(&["create"]).await).trim().to_owned();
    // The fake's terminal echoes its input and ends at `exit N`.
    let mut child = spawn(&d, &["shell", &id, "--cmd", "/bin/sh"]);
    let mut input = child.stdin.take().unwrap();
    let o = tokio::task::spawn_blocking(move || {
        std::io::Write::write_all(&mut input, b"echo hi\nexit 7\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(stdout(&o), "terminal 80x24\r\necho hi\nexit 7\n");
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_round_trips_a_binary_file_through_the_real_files_api() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let o = d.warren(&["create"]).await;
    let id = stdout(&o).trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3 * 1024 * 1024 + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = dir.path().join("blob.bin");
    std::fs::write(&src, &data).unwrap();
    let remote = format!("{id}:/tmp/blob.bin");
    let o = d.warren(&["cp", src.to_str().unwrap(), &remote]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let back = dir.path().join("back.bin");
    let o = d.warren(&["cp", &remote, back.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(std::fs::read(&back).unwrap() == data, "bytes changed");
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_and_a_forbidden_call_say_what_is_wrong() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let o = d.warren_with("wrn_nope", &["ls"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("API key"), "{}", stderr(&o));

    let o = d
        .warren(&["key", "create", "looker", "--role", "viewer", "--json"])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let viewer: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let viewer = viewer["secret"].as_str().unwrap().to_owned();
    let o = d.warren_with(&viewer, &["create"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("sandboxes:create"), "{}", stderr(&o));
    d.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_sent_listed_and_a_wake_policy_set() {
    let d = Daemon::start(FakeRuntime::new()).await;
    let o = d.warren(&["create", "-q", "--wake", "ci.*"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let id = stdout(&o).trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("run.json");
    std::fs::write(&payload, r#"{"status": "green"}"#).unwrap();
    let data = format!("@{}", payload.display());
    let send = [
        "events",
        "send",
        &id,
        "--type",
        "ci.finished",
        "--data",
        &data,
    ];
    let o = d.warren(&send).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n");
    let o = d
        .warren(&[
            "events",
            "send",
            &id,
            "--type",
            "ci.finished",
            "--dedupe-key",
            "k",
        ])
        .await;
    assert_eq!(stdout(&o), "2\n", "{}", stderr(&o));
    let o = d
        .warren(&["events", "send", &id, "--type", "x", "--dedupe-key", "k"])
        .await;
    assert_eq!(stdout(&o), "2\n");
    assert!(
        stderr(&o).contains("already in the inbox"),
        "{}",
        stderr(&o)
    );

    let o = d.warren(&["events", "ls", &id, "--json"]).await;
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["events"][0]["data"]["status"], "green");
    assert_eq!(list["events"][1]["delivery"], "pending");
    let o = d.warren(&["events", "ls", &id]).await;
    assert!(stdout(&o).contains("ci.finished"), "{}", stdout(&o));

    let o = d.warren(&["events", "wake", &id, "none"]).await;
    assert_eq!(stdout(&o), "no event wakes the sandbox\n", "{}", stderr(&o));
    let o = d.warren(&["events", "wake", &id, "bad pattern"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wake pattern"), "{}", stderr(&o));
    let o = d
        .warren(&["events", "send", &id, "--type", "t", "--data", "{nope"])
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
    d.server.stop().await;
}
