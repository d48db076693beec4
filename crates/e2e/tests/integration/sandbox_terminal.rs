//! Interactive terminals over the WebSocket API and signal deaths over exec.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warren_api_types::{NewKey, PtyServerMessage, RecordingList, TeamCreated};
use warren_e2e::{Daemon, decode_exec};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads terminal output until it contains `needle`; returns everything read.
async fn read_until(ws: &mut Socket, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in terminal output:\n{seen}"))
            .expect("socket open")
            .unwrap();
        if let Message::Binary(b) = msg {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    seen
}

#[tokio::test]
async fn sandbox_pty_session() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let url = format!(
        "{}/v1/sandboxes/{}/pty?cols=100&rows=30",
        d.url.replace("http://", "ws://"),
        sb.id
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", d.key).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("upgrade");

    ws.send(Message::Binary("stty size; echo mark-$((6*7))\n".into()))
        .await
        .unwrap();
    let out = read_until(&mut ws, "mark-42").await;
    assert!(out.contains("30 100"), "initial size not applied:\n{out}");

    ws.send(Message::Text(
        r#"{"type":"resize","cols":120,"rows":40}"#.into(),
    ))
    .await
    .unwrap();
    ws.send(Message::Binary("stty size; echo again-$((1+1))\n".into()))
        .await
        .unwrap();
    let out = read_until(&mut ws, "again-2").await;
    assert!(out.contains("40 120"), "resize not applied:\n{out}");

    ws.send(Message::Binary("exit 3\n".into())).await.unwrap();
    let exit = loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                break serde_json::from_str::<PtyServerMessage>(&t).unwrap();
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no exit message: {other:?}"),
        }
    };
    assert_eq!(exit, PtyServerMessage::Exit { exit_code: 3 });

    drop(ws);
    let recording = recorded_session(&d, &sb.id).await;
    recordings_are_refused_to_others(&d, &sb.id, &recording).await;

    // `warren replay`: the story names the terminal and its recording;
    // played into a pipe, the session's output comes out at once.
    let story = d.cli().args(["replay", &sb.id]).output().unwrap();
    let story_text = String::from_utf8_lossy(&story.stdout);
    assert!(
        story.status.success(),
        "{}",
        String::from_utf8_lossy(&story.stderr)
    );
    assert!(
        story_text.contains("opened a terminal") && story_text.contains(&recording),
        "{story_text}"
    );
    let played = d
        .cli()
        .args(["replay", &sb.id, &recording])
        .output()
        .unwrap();
    assert!(
        played.status.success(),
        "{}",
        String::from_utf8_lossy(&played.stderr)
    );
    assert!(String::from_utf8_lossy(&played.stdout).contains("mark-42"));
    let bad = d.cli().args(["replay", &sb.id, "../x"]).output().unwrap();
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Without a key the upgrade is refused.
    let anon = format!(
        "{}/v1/sandboxes/{}/pty",
        d.url.replace("http://", "ws://"),
        sb.id
    );
    assert!(tokio_tungstenite::connect_async(anon).await.is_err());
}

#[tokio::test]
async fn sandbox_signal_deaths_are_reported() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    for (script, signal) in [("kill -KILL $$", "killed"), ("kill -TERM $$", "terminated")] {
        let body = d
            .post(&format!("/v1/sandboxes/{}/exec", sb.id))
            .json(&json!({"cmd": ["bash", "-c", script]}))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let out = decode_exec(&body).unwrap();
        assert_eq!(out.exit_code, Some(-1), "{body}");
        assert!(body.contains(&format!(r#""signal":"{signal}""#)), "{body}");
    }
}

/// The session of `sandbox_pty_session`, as recorded: one asciicast v2
/// file with its opening size, the output and the resize, whose SHA-256
/// the audit log names. Returns its id.
async fn recorded_session(d: &Daemon, sandbox: &str) -> String {
    // The recording is kept when the terminal's bridge ends, just after
    // the exit message.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let list = loop {
        let list: RecordingList = d
            .get_json(&format!("/v1/sandboxes/{sandbox}/recordings"))
            .await;
        if !list.recordings.is_empty() || tokio::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(list.recordings.len(), 1, "{list:?}");
    let rec = &list.recordings[0];
    assert_eq!(
        (rec.cols, rec.rows, rec.title.as_str()),
        (100, 30, "bash -l")
    );
    assert!(!rec.truncated);
    let resp = d
        .get(&format!("/v1/sandboxes/{sandbox}/recordings/{}", rec.id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-asciicast");
    let cast = resp.bytes().await.unwrap();
    assert_eq!(cast.len() as u64, rec.size_bytes);
    let lines: Vec<serde_json::Value> = cast
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(
        (lines[0]["version"].clone(), lines[0]["width"].clone()),
        (json!(2), json!(100))
    );
    let output: String = lines[1..]
        .iter()
        .filter(|e| e[1] == "o")
        .map(|e| e[2].as_str().unwrap())
        .collect();
    assert!(
        output.contains("mark-42") && output.contains("again-2"),
        "{output}"
    );
    assert!(lines.iter().any(|e| e[1] == "r" && e[2] == "120x40"));
    let (status, entries) = d
        .call(&d.key, "GET", "/v1/audit/entries?action=pty.record", None)
        .await;
    assert_eq!(status, 200);
    let details = &entries["entries"][0]["entry"]["details"];
    assert_eq!(details["recording"], rec.id.as_str(), "{entries}");
    assert_eq!(details["sha256"], hex::encode(Sha256::digest(&cast)));
    rec.id.clone()
}

/// A viewer (no `sandboxes:exec`) gets 403, another team 404, a malformed
/// recording id 400 and an unknown one 404.
async fn recordings_are_refused_to_others(d: &Daemon, sandbox: &str, recording: &str) {
    let viewer = d
        .created_as::<NewKey>(&d.key, "/v1/keys", json!({"name": "v", "role": "viewer"}))
        .await
        .secret;
    let other = d
        .created_as::<TeamCreated>(
            &d.key,
            "/v1/teams",
            json!({"name": "team-b", "admin": "bea"}),
        )
        .await
        .key
        .secret;
    let one = format!("/v1/sandboxes/{sandbox}/recordings/{recording}");
    for (key, path, want) in [
        (&viewer, one.clone(), 403),
        (&other, one.clone(), 404),
        (&other, format!("/v1/sandboxes/{sandbox}/recordings"), 404),
        (
            &d.key,
            format!("/v1/sandboxes/{sandbox}/recordings/..%2F..%2Fwarren.db"),
            400,
        ),
        (
            &d.key,
            format!("/v1/sandboxes/{sandbox}/recordings/aaaaaaaaaaaaaaaa"),
            404,
        ),
    ] {
        let (status, body) = d.call(key, "GET", &path, None).await;
        assert_eq!(status, want, "{path}: {body}");
    }
}
