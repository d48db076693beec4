//! Processes through the envd client: run as root (CI does).

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use futures::StreamExt;
use warren_envd::Code;
use warren_envd::client::RpcStream;
use warren_envd::process::{
    DataEvent, EndEvent, ProcessConfig, ProcessEvent, ProcessInput, ProcessSelector, Pty, PtySize,
    Signal, StartRequest,
};

use common::Agent;

fn bash(cmd: &str) -> StartRequest {
    StartRequest {
        process: Some(ProcessConfig {
            cmd: "/bin/bash".into(),
            args: vec!["-c".into(), cmd.into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[derive(Default, Debug)]
struct Collected {
    pid: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    pty: Vec<u8>,
    end: Option<EndEvent>,
    keepalives: usize,
}

async fn collect(mut stream: RpcStream<ProcessEvent>) -> Collected {
    let mut c = Collected::default();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        ProcessEvent::Start(s) => c.pid = s.pid,
        other => panic!("first event must be start, got {other:?}"),
    }
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("stream stalled")
    {
        match ev.unwrap() {
            ProcessEvent::Data(DataEvent::Stdout(d)) => c.stdout.extend(d),
            ProcessEvent::Data(DataEvent::Stderr(d)) => c.stderr.extend(d),
            ProcessEvent::Data(DataEvent::Pty(d)) => c.pty.extend(d),
            ProcessEvent::End(e) => c.end = Some(e),
            ProcessEvent::Keepalive(_) => c.keepalives += 1,
            ProcessEvent::Start(_) => panic!("second start event"),
        }
    }
    c
}

#[tokio::test]
async fn root_stdout_stderr_and_exit_code_arrive_apart() {
    let agent = Agent::start().await;
    let client = agent.client();
    let c = collect(
        client
            .start(&bash("echo out; echo err >&2; exit 7"), None)
            .await
            .unwrap(),
    )
    .await;
    assert!(c.pid > 0);
    assert_eq!(c.stdout, b"out\n");
    assert_eq!(c.stderr, b"err\n");
    let end = c.end.expect("end event");
    assert_eq!(
        (end.exit_code, end.exited, end.status.as_str()),
        (7, true, "exit status 7")
    );
    assert!(
        client.list().await.unwrap().is_empty(),
        "ended processes leave the list"
    );
}

#[tokio::test]
async fn root_large_output_is_complete_and_ordered() {
    let agent = Agent::start().await;
    let c = collect(
        agent
            .client()
            .start(&bash("seq 1 200000"), None)
            .await
            .unwrap(),
    )
    .await;
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(c.stdout).unwrap(), expected);
}

#[tokio::test]
async fn root_missing_executable_is_not_found() {
    let agent = Agent::start().await;
    let mut req = bash("");
    req.process.as_mut().unwrap().cmd = "definitely-not-a-program".into();
    let mut stream = agent.client().start(&req, None).await.unwrap();
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn root_stdin_is_written_and_closed() {
    let agent = Agent::start().await;
    let client = agent.client();
    let mut req = bash("tr a-z A-Z");
    req.stdin = Some(true);
    req.tag = Some("upper".into());
    let mut stream = client.start(&req, None).await.unwrap();
    let ProcessEvent::Start(start) = stream.next().await.unwrap().unwrap() else {
        panic!("no start")
    };
    client
        .send_input(
            ProcessSelector::Pid(start.pid),
            ProcessInput::Stdin(b"hello ".to_vec()),
        )
        .await
        .unwrap();
    let more = futures::stream::iter(vec![
        ProcessInput::Stdin(b"wor".to_vec()),
        ProcessInput::Stdin(b"ld".to_vec()),
    ]);
    client
        .stream_input(ProcessSelector::Tag("upper".into()), more)
        .await
        .unwrap();
    client
        .close_stdin(ProcessSelector::Tag("upper".into()))
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut end = None;
    while let Some(ev) = stream.next().await {
        match ev.unwrap() {
            ProcessEvent::Data(DataEvent::Stdout(d)) => out.extend(d),
            ProcessEvent::End(e) => end = Some(e),
            _ => {}
        }
    }
    assert_eq!(out, b"HELLO WORLD");
    assert_eq!(end.unwrap().exit_code, 0);
}

#[tokio::test]
async fn root_env_cwd_and_user_are_applied() {
    let agent = Agent::start().await;
    let client = agent.client().with_user("nobody");
    let mut req = bash("echo $FOO $USER $(id -u) $(pwd)");
    let config = req.process.as_mut().unwrap();
    config.envs = BTreeMap::from([("FOO".to_string(), "bar".to_string())]);
    config.cwd = Some("/tmp".into());
    let c = collect(client.start(&req, None).await.unwrap()).await;
    assert_eq!(
        String::from_utf8(c.stdout).unwrap(),
        "bar nobody 65534 /tmp\n"
    );

    let root = agent.client().with_user("root");
    let c = collect(root.start(&bash("id -u; echo $HOME"), None).await.unwrap()).await;
    assert_eq!(String::from_utf8(c.stdout).unwrap(), "0\n/root\n");

    let ghost = agent.client().with_user("no-such-user-x");
    let err = ghost
        .start(&bash("true"), None)
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn root_other_user_gets_its_ids_groups_own_session_and_clean_signals() {
    let agent = Agent::start().await;
    let client = agent.client().with_user("nobody");
    let mut req = bash(
        "id -u; id -g; id -G; cut -d' ' -f5,6 /proc/$$/stat; \
         grep -E '^(SigBlk|SigIgn|CapEff):' /proc/$$/status",
    );
    req.process.as_mut().unwrap().cwd = Some("/tmp".into());
    let c = collect(client.start(&req, None).await.unwrap()).await;
    assert_eq!(c.end.unwrap().exit_code, 0, "stderr: {:?}", c.stderr);
    // The agent's own supplementary group (root) is gone; the shell leads its
    // own session and group; nothing is blocked or ignored (the agent ignores
    // SIGPIPE); no capability survives the switch.
    let pid = c.pid;
    assert_eq!(
        String::from_utf8(c.stdout).unwrap(),
        format!(
            "65534\n65534\n65534\n{pid} {pid}\n\
             SigBlk:\t0000000000000000\n\
             SigIgn:\t0000000000000000\n\
             CapEff:\t0000000000000000\n"
        )
    );
}

#[tokio::test]
async fn root_init_env_vars_reach_later_processes_and_the_environment_file() {
    let agent = Agent::start().await;
    let client = agent.client();
    let init = |name: &str, value: &str| warren_envd::http_api::InitRequest {
        env_vars: Some(BTreeMap::from([(name.to_string(), value.to_string())])),
        ..Default::default()
    };
    client.init(&init("FROM_INIT", "yes")).await.unwrap();
    let c = collect(client.start(&bash("echo $FROM_INIT"), None).await.unwrap()).await;
    assert_eq!(c.stdout, b"yes\n");

    // A process started before a later /init (a template's start command
    // restored from a snapshot) finds every /init's variables in the file.
    client.init(&init("LATER", "too")).await.unwrap();
    let file = agent
        .root
        .path()
        .join(warren_envd::http_api::SANDBOX_ENV_FILE.trim_start_matches('/'));
    let env: BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(env.get("FROM_INIT").map(String::as_str), Some("yes"));
    assert_eq!(env.get("LATER").map(String::as_str), Some("too"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "every user in the sandbox reads it");
}

#[tokio::test]
async fn root_init_installs_the_warren_ca_and_points_tls_clients_at_it() {
    let root = tempfile::tempdir().unwrap();
    let agent = Agent::start_with(&["--root", root.path().to_str().unwrap()]).await;
    let client = agent.client();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBwarren\n-----END CERTIFICATE-----\n";
    let init = warren_envd::http_api::InitRequest {
        warren_ca_cert: Some(pem.into()),
        env_vars: Some(BTreeMap::from([(
            "NODE_EXTRA_CA_CERTS".to_string(),
            "/mine.pem".to_string(),
        )])),
        ..Default::default()
    };
    // Every init (a restore repeats it) leaves one copy in the bundle.
    client.init(&init).await.unwrap();
    client.init(&init).await.unwrap();
    let bundle =
        std::fs::read_to_string(root.path().join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(bundle.matches("MIIBwarren").count(), 1, "{bundle}");
    let installed = root
        .path()
        .join("usr/local/share/ca-certificates/warren-ca.crt");
    assert_eq!(std::fs::read_to_string(installed).unwrap(), pem);
    let c = collect(
        client
            .start(
                &bash("echo $SSL_CERT_FILE $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS"),
                None,
            )
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        String::from_utf8(c.stdout).unwrap(),
        "/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt /mine.pem\n"
    );

    let key = warren_envd::http_api::InitRequest {
        warren_ca_cert: Some("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----".into()),
        ..Default::default()
    };
    assert!(client.init(&key).await.is_err());
}

#[tokio::test]
async fn root_signals_end_the_process_group() {
    let agent = Agent::start().await;
    let client = agent.client();
    let mut req = bash("sleep 60 & sleep 60; echo never");
    req.tag = Some("sleeper".into());
    let mut stream = client.start(&req, None).await.unwrap();
    let ProcessEvent::Start(start) = stream.next().await.unwrap().unwrap() else {
        panic!("no start")
    };
    let listed = client.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].pid, listed[0].tag.as_deref()),
        (start.pid, Some("sleeper"))
    );

    // A second client attaches to the same process.
    let watcher = client
        .connect(ProcessSelector::Tag("sleeper".into()), None)
        .await
        .unwrap();
    client
        .send_signal(ProcessSelector::Pid(start.pid), Signal::Sigkill)
        .await
        .unwrap();
    let rest = collect(watcher).await;
    let end = rest.end.unwrap();
    assert_eq!(
        (end.exit_code, end.exited, end.status.as_str()),
        (-1, false, "signal: killed")
    );
    let mut end2 = None;
    while let Some(ev) = stream.next().await {
        if let ProcessEvent::End(e) = ev.unwrap() {
            end2 = Some(e);
        }
    }
    assert_eq!(end2.unwrap().status, "signal: killed");
    // No zombie or orphan of the agent stays behind: the background sleep got the signal too.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        agent.pid(),
        agent.pid()
    ))
    .unwrap_or_default();
    assert!(
        children.trim().is_empty(),
        "agent still has children: {children}"
    );

    let err = client
        .send_signal(ProcessSelector::Pid(start.pid), Signal::Sigterm)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn root_pty_session_echoes_and_resizes() {
    let agent = Agent::start().await;
    let client = agent.client();
    let req = StartRequest {
        process: Some(ProcessConfig {
            cmd: "/bin/bash".into(),
            args: vec!["--norc".into(), "-i".into()],
            ..Default::default()
        }),
        pty: Some(Pty {
            size: Some(PtySize { cols: 80, rows: 24 }),
        }),
        ..Default::default()
    };
    let mut stream = client.start(&req, None).await.unwrap();
    let ProcessEvent::Start(start) = stream.next().await.unwrap().unwrap() else {
        panic!("no start")
    };
    let pid = ProcessSelector::Pid(start.pid);
    client
        .send_input(
            pid.clone(),
            ProcessInput::Pty(b"echo hi$((1+1))\n".to_vec()),
        )
        .await
        .unwrap();
    client
        .resize(
            pid.clone(),
            PtySize {
                cols: 123,
                rows: 45,
            },
        )
        .await
        .unwrap();
    client
        .send_input(
            pid.clone(),
            ProcessInput::Pty(b"stty size; exit 0\n".to_vec()),
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut end = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap()
    {
        match ev.unwrap() {
            ProcessEvent::Data(DataEvent::Pty(d)) => out.extend(d),
            ProcessEvent::End(e) => end = Some(e),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("hi2"), "pty output: {text}");
    assert!(text.contains("45 123"), "pty output: {text}");
    assert_eq!(end.unwrap().exit_code, 0);
    let err = client.close_stdin(pid).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn root_keepalives_flow_while_idle() {
    let agent = Agent::start().await;
    let c = collect(
        agent
            .client()
            .start(&bash("sleep 2.5"), Some(Duration::from_secs(1)))
            .await
            .unwrap(),
    )
    .await;
    assert!(c.keepalives >= 2, "got {} keepalives", c.keepalives);
    assert_eq!(c.end.unwrap().exit_code, 0);
}

#[tokio::test]
async fn root_duplicate_tag_is_already_exists() {
    let agent = Agent::start().await;
    let client = agent.client();
    let mut req = bash("sleep 30");
    req.tag = Some("one".into());
    let mut first = client.start(&req, None).await.unwrap();
    first.next().await.unwrap().unwrap();
    let err = client
        .start(&req, None)
        .await
        .unwrap()
        .next()
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    client
        .send_signal(ProcessSelector::Tag("one".into()), Signal::Sigterm)
        .await
        .unwrap();
}

/// A command started with a Connect deadline (`connect-timeout-ms`, what the
/// SDK's `commands.run(timeout=…)` sends) is killed when it passes, its
/// background children with it, as envd does; a malformed deadline is
/// refused before anything runs.
#[tokio::test]
async fn root_a_command_past_its_connect_deadline_is_killed() {
    let agent = Agent::start().await;
    let client = agent.client().with_deadline(Duration::from_millis(500));
    let c = collect(
        client
            .start(&bash("sleep 60 & echo started; sleep 60"), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(c.stdout, b"started\n");
    let end = c.end.unwrap();
    assert_eq!(
        (end.exit_code, end.exited, end.status.as_str()),
        (-1, false, "signal: killed")
    );
    assert!(agent.client().list().await.unwrap().is_empty());
    // The background sleep went with it: the agent is left without children.
    let children = || {
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", agent.pid()))
            .unwrap_or_default()
    };
    for _ in 0..100 {
        if children().trim().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        children().trim().is_empty(),
        "agent still has children: {}",
        children()
    );

    // A deadline longer than the command leaves it alone.
    let long = agent.client().with_deadline(Duration::from_secs(600));
    let c = collect(long.start(&bash("echo done"), None).await.unwrap()).await;
    assert_eq!(
        (c.stdout.as_slice(), c.end.unwrap().exit_code),
        (&b"done\n"[..], 0)
    );

    let resp = reqwest::Client::new()
        .post(format!("{}/process.Process/Start", agent.url))
        .header("content-type", "application/connect+json")
        .header("connect-timeout-ms", "soon")
        .body(warren_envd::envelope::message_frame(&bash("touch /tmp/never")).unwrap())
        .send()
        .await
        .unwrap();
    let body = resp.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("invalid_argument") && text.contains("connect-timeout-ms"),
        "{text}"
    );
}

#[tokio::test]
async fn the_start_commands_output_and_the_agents_own_lines_are_kept_for_logs() {
    let agent = Agent::start().await;
    let client = agent.client();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = StartRequest {
        tag: Some(warren_envd::http_api::START_COMMAND_TAG.into()),
        ..bash("echo ready; echo warming >&2; printf 'no newline yet'")
    };
    collect(client.start(&start, None).await.unwrap()).await;
    collect(
        client
            .start(&bash("echo not a start command"), None)
            .await
            .unwrap(),
    )
    .await;

    let lines = client.start_command_logs(0).await.unwrap();
    let (own, started): (Vec<_>, Vec<_>) = lines
        .iter()
        .partition(|l| l.stream == warren_envd::http_api::AGENT_STREAM);
    let mut seen: Vec<_> = started
        .iter()
        .map(|l| (l.stream.as_str(), l.line.as_str(), l.level.as_str()))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [("stderr", "warming", "info"), ("stdout", "ready", "info")]
    );
    // The agent's own lines come along, apart from the command's.
    assert!(
        own.iter()
            .any(|l| l.line.starts_with("serving envd") && l.level == "info"),
        "{own:?}"
    );
    assert!(started.iter().all(|l| l.timestamp_ms >= before));
    let later = lines.iter().map(|l| l.timestamp_ms).max().unwrap() + 1;
    assert!(client.start_command_logs(later).await.unwrap().is_empty());
}

#[tokio::test]
async fn quiesce_ends_every_process_it_started_one_that_ignores_sigterm_too() {
    let agent = Agent::start().await;
    let client = agent.client();
    let mut polite = client.start(&bash("sleep 60"), None).await.unwrap();
    // Ignores SIGTERM: it ends only by the SIGKILL after the grace.
    let mut stubborn = client
        .start(&bash("trap '' TERM; sleep 60 & wait; sleep 60"), None)
        .await
        .unwrap();
    for stream in [&mut polite, &mut stubborn] {
        let Some(Ok(ProcessEvent::Start(_))) = stream.next().await else {
            panic!("no start")
        };
    }
    assert_eq!(client.list().await.unwrap().len(), 2);
    client.quiesce().await.unwrap();
    assert!(client.list().await.unwrap().is_empty());
    for mut stream in [polite, stubborn] {
        let mut end = None;
        while let Some(ev) = stream.next().await {
            if let ProcessEvent::End(e) = ev.unwrap() {
                end = Some(e);
            }
        }
        let end = end.expect("an end event");
        assert!(!end.exited, "killed by a signal: {end:?}");
    }
    // The agent still answers, and starts processes again.
    let out = collect(client.start(&bash("echo again"), None).await.unwrap()).await;
    assert_eq!(out.end.unwrap().exit_code, 0);
}
