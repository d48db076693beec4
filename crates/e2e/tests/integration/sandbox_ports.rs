//! Exposed ports end to end: a real sandbox runs an HTTP and WebSocket
//! server (Python's standard library only), reached through the daemon by
//! Host and by path, with and without credentials.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use warren_api_types::{NewKey, Sandbox, TeamCreated};
use warren_e2e::Daemon;

/// The server inside: `/` greets, `/headers` echoes what arrived, `/stream`
/// sends one line, waits for `/release`, then sends another; a WebSocket
/// upgrade on any path echoes text frames as `echo: …`.
const SERVER: &str = r#"
import base64, hashlib, http.server, json, socketserver, struct, threading
release = threading.Event()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def body(self, data, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path.startswith("/headers"):
            seen = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
            return self.body(json.dumps(seen).encode(), "application/json")
        if self.path == "/release":
            release.set()
            return self.body(b"released")
        if self.path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            def chunk(b):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.flush()
            chunk(b"line 1\n")
            release.wait(120)
            chunk(b"line 2\n")
            chunk(b"")
            return
        self.body(b"hello from the sandbox")
    def do_POST(self):
        self.body(self.rfile.read(int(self.headers.get("Content-Length", 0))))
    def websocket(self):
        self.close_connection = True
        key = self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", base64.b64encode(hashlib.sha1(key.encode()).digest()).decode())
        self.end_headers()
        self.wfile.flush()
        r = self.rfile
        while True:
            h = r.read(2)
            if len(h) < 2:
                return
            op, n = h[0] & 15, h[1] & 127
            if n == 126:
                n = struct.unpack(">H", r.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", r.read(8))[0]
            mask = r.read(4) if h[1] & 128 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(r.read(n)))
            if op == 8:
                self.wfile.write(b"\x88\x00")
                self.wfile.flush()
                return
            if op == 1:
                out = b"echo: " + data
                head = bytes([129, len(out)]) if len(out) < 126 else bytes([129, 126]) + struct.pack(">H", len(out))
                self.wfile.write(head + out)
                self.wfile.flush()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8000), H).serve_forever()
"#;

/// A client that sends `{port}-{id}.localhost` to the daemon, like a
/// browser resolving `*.localhost` to loopback.
fn host_client(d: &Daemon, host: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .resolve(host, d.addr)
        .build()
        .unwrap()
}

async fn status_and_text(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn sandbox_ports_reach_http_servers_by_path_and_host() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let id = sb.id.clone();
    d.start_python_server(&id, SERVER, 8000).await;
    let detail: Sandbox = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    let token = detail
        .traffic_token
        .expect("the detail carries the traffic token");
    let path = |rest: &str| format!("{}/v1/sandboxes/{id}/ports/8000{rest}", d.url);
    let anon = reqwest::Client::new();

    // By path: nothing is 403 (as on E2B), a wrong token 401; a key, the
    // traffic token in either header, or the query parameter let the
    // request through.
    let (status, body) = status_and_text(anon.get(path("/"))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("traffic token"), "{body}");
    let wrong = anon
        .get(path("/"))
        .header("x-warren-traffic-token", "0".repeat(64));
    assert_eq!(status_and_text(wrong).await.0, 401);
    let ok = [
        anon.get(path("/")).bearer_auth(&d.key),
        anon.get(path("/")).header("x-api-key", &d.key),
        anon.get(path("/")).header("x-warren-traffic-token", &token),
        anon.get(path("/"))
            .header("e2b-traffic-access-token", &token),
        anon.get(path(&format!("/?warren_token={token}"))),
    ];
    for req in ok {
        assert_eq!(
            status_and_text(req).await,
            (200, "hello from the sandbox".to_owned())
        );
    }
    // Without a trailing slash the sandbox gets `/`.
    let (status, body) = status_and_text(anon.get(path("")).bearer_auth(&d.key)).await;
    assert_eq!((status, body.as_str()), (200, "hello from the sandbox"));

    // A request body reaches the server; its answer comes back.
    let (status, body) = status_and_text(
        anon.post(path("/echo"))
            .bearer_auth(&d.key)
            .body("x".repeat(100_000)),
    )
    .await;
    assert_eq!((status, body.len()), (200, 100_000));

    // What the server sees: the path and query without Warren's token, the
    // forwarding headers, and none of Warren's credentials.
    let seen: Value = anon
        .get(path(&format!("/headers?a=1&warren_token={token}")))
        .bearer_auth(&d.key)
        .header("x-warren-traffic-token", &token)
        .header("x-api-key", &d.key)
        .header("cookie", format!("app=1; warren_traffic_token={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["path"], "/headers?a=1", "{seen}");
    let headers = &seen["headers"];
    for gone in [
        "authorization",
        "x-api-key",
        "x-warren-traffic-token",
        "e2b-traffic-access-token",
    ] {
        assert!(
            headers.get(gone).is_none(),
            "{gone} reached the sandbox: {seen}"
        );
    }
    assert_eq!(headers["cookie"], "app=1", "{seen}");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{seen}");
    assert_eq!(headers["x-forwarded-proto"], "http", "{seen}");
    assert_eq!(
        headers["x-forwarded-prefix"],
        format!("/v1/sandboxes/{id}/ports/8000")
    );
    assert!(!seen.to_string().contains(&token), "{seen}");

    // By Host, as a browser: the token in the URL becomes a cookie for that
    // host, and the cookie alone then lets the browser in.
    let host = format!("8000-{id}.localhost");
    let browser = host_client(&d, &host);
    let port = d.addr.port();
    let url = |rest: &str| format!("http://{host}:{port}{rest}");
    let (status, _) = status_and_text(browser.get(url("/"))).await;
    assert_eq!(status, 403);
    let resp = browser
        .get(url(&format!("/headers?warren_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .expect("the token becomes a cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/;"),
        "{cookie}"
    );
    let seen: Value = resp.json().await.unwrap();
    assert_eq!(seen["path"], "/headers");
    assert_eq!(seen["headers"]["host"], format!("{host}:{port}"));
    assert_eq!(
        seen["headers"]["x-forwarded-host"],
        format!("{host}:{port}")
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (status, body) = status_and_text(browser.get(url("/")).header("cookie", &pair)).await;
    assert_eq!((status, body.as_str()), (200, "hello from the sandbox"));
    // The Host is matched case-insensitively.
    let req = anon
        .get(format!("{}/", d.url))
        .header("host", format!("{}:{port}", host.to_uppercase()))
        .bearer_auth(&d.key);
    assert_eq!(
        status_and_text(req).await,
        (200, "hello from the sandbox".to_owned())
    );

    // The CLI prints both URLs, with the token; the host URL works as is.
    let out = d.run_cli(&["port", &id, "8000", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let urls: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(urls["with_token"], true);
    let host_url = urls["host_url"].as_str().unwrap();
    assert_eq!(
        host_url,
        format!("http://{host}:{port}/?warren_token={token}")
    );
    assert_eq!(status_and_text(browser.get(host_url)).await.0, 200);
    let path_url = urls["path_url"].as_str().unwrap();
    assert_eq!(status_and_text(anon.get(path_url)).await.0, 200);
    let out = d.run_cli(&["port", &id, "8000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");

    // A port nothing listens on is 502, saying so; the agent's port is
    // never reachable, whatever the credentials.
    let (status, body) = status_and_text(
        anon.get(format!("{}/v1/sandboxes/{id}/ports/8001/", d.url))
            .bearer_auth(&d.key),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("nothing answers on port 8001"), "{body}");
    for req in [
        anon.get(format!("{}/v1/sandboxes/{id}/ports/49983/health", d.url))
            .bearer_auth(&d.key),
        host_client(&d, &format!("49983-{id}.localhost"))
            .get(format!("http://49983-{id}.localhost:{port}/health"))
            .bearer_auth(&d.key),
    ] {
        let (status, body) = status_and_text(req).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("agent"), "{body}");
    }
    let (status, _) = status_and_text(
        anon.get(format!("{}/v1/sandboxes/{id}/ports/0/", d.url))
            .bearer_auth(&d.key),
    )
    .await;
    assert_eq!(status, 400);

    // Another team's key: 403. An unknown sandbox: 502 in E2B's shape,
    // whoever asks. A viewer of the team lacks sandboxes:exec (403) and
    // gets no token.
    let team: TeamCreated = d
        .created_as(
            &d.key,
            "/v1/teams",
            json!({"name": "team-b", "admin": "bea"}),
        )
        .await;
    let other = team.key.secret;
    let (status, body) = status_and_text(anon.get(path("/")).bearer_auth(&other)).await;
    assert_eq!(status, 403, "{body}");
    let unknown = format!("{}/v1/sandboxes/zzzzzzzzzzzzzzzzzzzz/ports/8000/", d.url);
    for req in [anon.get(&unknown).bearer_auth(&d.key), anon.get(&unknown)] {
        let (status, body) = status_and_text(req).await;
        assert_eq!(status, 502, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"code": 502, "message": "The sandbox was not found", "sandboxId": "zzzzzzzzzzzzzzzzzzzz"})
        );
    }
    let viewer = d
        .created_as::<NewKey>(&d.key, "/v1/keys", json!({"name": "v", "role": "viewer"}))
        .await
        .secret;
    let (status, body) = status_and_text(anon.get(path("/")).bearer_auth(&viewer)).await;
    assert_eq!(status, 403, "{body}");
    let resp = anon
        .get(format!("{}/v1/sandboxes/{id}", d.url))
        .bearer_auth(&viewer);
    let (status, text) = status_and_text(resp).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Sandbox>(&text)
            .unwrap()
            .traffic_token
            .is_none()
    );

    // A paused sandbox with auto_resume wakes up for its port; the server
    // (a listener) survives the snapshot.
    let resp = d
        .post(&format!("/v1/sandboxes/{id}/pause"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let (status, body) =
        status_and_text(anon.get(path("/")).header("x-warren-traffic-token", &token)).await;
    assert_eq!((status, body.as_str()), (200, "hello from the sandbox"));

    // Once killed, the token opens nothing: the sandbox is not found.
    assert_eq!(
        d.delete(&format!("/v1/sandboxes/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let req = anon.get(path("/")).header("x-warren-traffic-token", &token);
    assert_eq!(status_and_text(req).await.0, 502);
}

#[tokio::test]
async fn sandbox_ports_stream_responses_and_splice_websockets() {
    let d = Daemon::with_base().await;
    let sb = d.create_sandbox(json!({})).await;
    let id = sb.id.clone();
    d.start_python_server(&id, SERVER, 8000).await;
    let detail: Sandbox = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    let token = detail.traffic_token.unwrap();
    let base = format!("{}/v1/sandboxes/{id}/ports/8000", d.url);
    let anon = reqwest::Client::new();

    // The first line arrives while the server still holds the second one
    // back: the proxy passes the response on as it comes.
    let mut stream = anon
        .get(format!("{base}/stream"))
        .header("x-warren-traffic-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut got = Vec::new();
    while !got.ends_with(b"line 1\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(60), stream.chunk())
            .await
            .expect("the first line arrives before the server is released")
            .unwrap()
            .expect("the stream is still open");
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"line 1\n");
    let (status, _) = status_and_text(
        anon.get(format!("{base}/release"))
            .header("x-warren-traffic-token", &token),
    )
    .await;
    assert_eq!(status, 200);
    while let Some(chunk) = stream.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"line 1\nline 2\n");

    // WebSocket by path with the traffic token: frames echo both ways.
    let mut req = format!("{}/ws", base.replacen("http://", "ws://", 1))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("x-warren-traffic-token", token.parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", "second frame"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text(format!("echo: {text}")));
    }
    ws.close(None).await.unwrap();

    // WebSocket by Host: without a credential the handshake is refused
    // with 403; with the cookie a browser holds it goes through.
    let host = format!("8000-{id}.localhost:{}", d.addr.port());
    let ws_by_host = |cookie: Option<String>| {
        let mut req = format!("ws://{host}/ws").into_client_request().unwrap();
        if let Some(c) = cookie {
            req.headers_mut().insert("cookie", c.parse().unwrap());
        }
        connect_to(d.addr, req)
    };
    match ws_by_host(None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|(_, r)| r.status())),
    }
    let (mut ws, _) = ws_by_host(Some(format!("warren_traffic_token={token}")))
        .await
        .unwrap();
    ws.send(Message::text("by host")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("echo: by host")
    );
}

/// Opens a WebSocket through the daemon at `addr` whatever host `req`
/// names (as a browser whose `*.localhost` resolves to loopback).
async fn connect_to(
    addr: SocketAddr,
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<
    (
        tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
        tokio_tungstenite::tungstenite::handshake::client::Response,
    ),
    tokio_tungstenite::tungstenite::Error,
> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_tungstenite::client_async(req, tcp).await
}

/// A port the sandbox's policy lists in `public_ports` is open without any
/// credential, and only that port.
#[tokio::test]
async fn sandbox_ports_public_port_needs_no_token() {
    let d = Daemon::with_base().await;
    let sb = d
        .create_sandbox(json!({"network": {"internet": "allow", "public_ports": [8000]}}))
        .await;
    assert_eq!(sb.network.public_ports, [8000]);
    d.start_python_server(&sb.id, SERVER, 8000).await;
    let anon = reqwest::Client::new();
    let url = |port: u16| format!("{}/v1/sandboxes/{}/ports/{port}/", d.url, sb.id);
    assert_eq!(
        status_and_text(anon.get(url(8000))).await,
        (200, "hello from the sandbox".to_owned())
    );
    assert_eq!(status_and_text(anon.get(url(8001))).await.0, 403);
    // Any `warren_token` on a public port is ignored: no cookie comes back.
    let resp = anon
        .get(format!("{}?warren_token=guess", url(8000)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("set-cookie").is_none());
    let out = d.run_cli(&["port", &sb.id, "8000", "--json"]);
    let urls: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (urls["public"].as_bool(), urls["with_token"].as_bool()),
        (Some(true), Some(false))
    );
}

/// E2B's `maskRequestHost` (and the native `request_host`): requests to
/// the exposed port carry the configured Host, `${PORT}` replaced, for
/// dev servers that refuse names they do not know; a malformed one is
/// refused at create.
#[tokio::test]
async fn sandbox_ports_carry_the_policys_request_host() {
    let d = Daemon::with_base().await;
    let resp = d
        .http
        .post(format!("{}/v2/sandboxes", d.url))
        .header("X-API-KEY", &d.key)
        .json(&json!({"templateID": "base", "timeout": 120,
                      "network": {"maskRequestHost": "localhost:${PORT}"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    let id = body["sandboxID"].as_str().unwrap().to_owned();
    d.start_python_server(&id, SERVER, 8000).await;
    let seen: Value = d
        .get(&format!("/v1/sandboxes/{id}/ports/8000/headers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["headers"]["host"], "localhost:8000", "{seen}");
    // The client's own host is still told.
    assert!(seen["headers"]["x-forwarded-host"].is_string(), "{seen}");

    let info: Value = d.get_json(&format!("/v1/sandboxes/{id}")).await;
    assert_eq!(
        info["network"]["request_host"], "localhost:${PORT}",
        "{info}"
    );
    let (status, err) = d
        .call(
            &d.key,
            "POST",
            "/v1/sandboxes",
            Some(json!({"network": {"request_host": "evil.example\r\nX-Injected: 1"}})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("request_host"),
        "{err}"
    );
}
