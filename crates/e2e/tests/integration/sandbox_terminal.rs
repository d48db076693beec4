//! Interactive terminals over the WebSocket API and signal deaths over exec.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warren_api_types::PtyServerMessage;
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
