//! Warren's credentials never reach a server inside a sandbox: a server on
//! an app port (run as `user`, who must not be able to act as root through
//! the agent) sees no envd access token, API key, traffic token or Warren
//! cookie, on every path in — the E2B proxy, host- and path-style port
//! URLs, WebSocket upgrades — and cannot set Warren's cookies.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warren_e2e::Daemon;

/// `/headers` answers the request's headers as JSON; `/cookies` sets a
/// Warren cookie and two of its own; an upgrade is answered with 101 and
/// then the headers as JSON, and the connection closed.
const SERVER: &str = r#"
import http.server, json, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        seen = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        if self.headers.get("Upgrade"):
            self.close_connection = True
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            self.end_headers()
            self.wfile.write(seen)
            self.wfile.flush()
            return
        self.send_response(200)
        if self.path == "/cookies":
            self.send_header("Set-Cookie", "warren_traffic_token=planted; Path=/")
            self.send_header("Set-Cookie", "sid=1; Path=/; Domain=127.0.0.1")
            self.send_header("Set-Cookie", "theme=dark")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(seen)))
        self.end_headers()
        self.wfile.write(seen)
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("0.0.0.0", 8000), H).serve_forever()
"#;

const CREDENTIALS: [&str; 5] = [
    "x-access-token",
    "x-api-key",
    "authorization",
    "x-warren-traffic-token",
    "e2b-traffic-access-token",
];

fn assert_clean(seen: &Value, how: &str) {
    for name in CREDENTIALS {
        assert!(
            seen.get(name).is_none(),
            "{name} reached the app port via {how}: {seen}"
        );
    }
    if let Some(cookie) = seen.get("cookie").and_then(Value::as_str) {
        assert!(!cookie.contains("warren_"), "via {how}: {seen}");
    }
}

/// Sends a raw upgrade request to the daemon and returns what follows the
/// sandbox's `101` answer.
async fn upgrade(d: &Daemon, host: &str, path: &str, headers: &[(&str, &str)]) -> Value {
    let mut conn = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let mut req =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        conn.read_to_end(&mut answer),
    )
    .await
    .expect("the upgraded connection closes")
    .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn sandbox_app_ports_never_see_warren_credentials() {
    let d = Daemon::with_base().await;
    let created: Value = d
        .created_as(&d.key, "/sandboxes", json!({"templateID": "base"}))
        .await;
    let id = created["sandboxID"].as_str().unwrap().to_owned();
    let envd_token = created["envdAccessToken"].as_str().unwrap().to_owned();
    let traffic = created["trafficAccessToken"].as_str().unwrap().to_owned();
    d.start_python_server(&id, SERVER, 8000).await;
    let http = reqwest::Client::new();
    let e2b = |port: &str| {
        http.get(format!("{}/headers", d.url))
            .header("E2b-Sandbox-Id", &id)
            .header("E2b-Sandbox-Port", port)
    };

    // The E2B proxy, let in by an API key, by the envd token (which is the
    // agent's, and must stay with the agent) and by the traffic token.
    let cookie = format!("app=1; warren_traffic_token={traffic}");
    let ways = [
        ("an API key", e2b("8000").header("X-API-Key", &d.key)),
        ("a Bearer key", e2b("8000").bearer_auth(&d.key)),
        (
            "the envd token",
            e2b("8000").header("X-Access-Token", &envd_token),
        ),
        (
            "the traffic token",
            e2b("8000").header("E2B-Traffic-Access-Token", &traffic),
        ),
    ];
    for (how, req) in ways {
        let resp = req.header("cookie", &cookie).send().await.unwrap();
        assert_eq!(resp.status(), 200, "via {how}");
        let seen: Value = resp.json().await.unwrap();
        assert_clean(&seen, how);
        assert_eq!(seen["cookie"], "app=1", "via {how}: {seen}");
    }

    // The agent's own port still gets the token it needs.
    let health = http
        .get(format!("{}/health", d.url))
        .header("E2b-Sandbox-Id", &id)
        .header("X-API-Key", &d.key)
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success(), "{}", health.status());

    // Upgrades: through the E2B proxy and a host-style port URL.
    let host = d.addr.to_string();
    let seen = upgrade(
        &d,
        &host,
        "/ws",
        &[
            ("E2b-Sandbox-Id", &id),
            ("E2b-Sandbox-Port", "8000"),
            ("X-API-Key", &d.key),
        ],
    )
    .await;
    assert_clean(&seen, "an E2B upgrade");
    let port_host = format!("8000-{id}.localhost");
    let seen = upgrade(
        &d,
        &port_host,
        "/ws",
        &[
            ("X-Warren-Traffic-Token", &traffic),
            ("Cookie", &format!("warren_traffic_token={traffic}")),
            ("Authorization", &format!("Bearer {}", d.key)),
        ],
    )
    .await;
    assert_clean(&seen, "a host-style upgrade");

    // A path-style page cannot set Warren's cookies, and its own cookies
    // stay under its port's path (the API's origin is shared).
    let resp = http
        .get(format!("{}/v1/sandboxes/{id}/ports/8000/cookies", d.url))
        .header("X-Warren-Traffic-Token", &traffic)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let prefix = format!("/v1/sandboxes/{id}/ports/8000/");
    let set: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        set,
        [
            format!("sid=1; Path={prefix}"),
            format!("theme=dark; Path={prefix}")
        ]
    );
    // Host style has its own origin: the app's cookies pass unchanged but
    // for Warren's.
    let resp = reqwest::Client::builder()
        .resolve(&port_host, d.addr)
        .build()
        .unwrap()
        .get(format!("http://{port_host}:{}/cookies", d.addr.port()))
        .header("X-Warren-Traffic-Token", &traffic)
        .send()
        .await
        .unwrap();
    let set: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set, ["sid=1; Path=/; Domain=127.0.0.1", "theme=dark"]);
}

/// The E2B proxy judges the credential before it looks the sandbox up: an
/// unknown, malformed or killed id answers exactly like a live one.
#[tokio::test]
async fn sandbox_e2b_proxy_answers_every_id_alike_before_a_credential() {
    let d = Daemon::with_base().await;
    let live = d.create_sandbox(json!({})).await.id;
    let killed = d.create_sandbox(json!({})).await.id;
    let resp = d
        .delete(&format!("/v1/sandboxes/{killed}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let http = reqwest::Client::new();
    let ask = |id: &str, token: Option<&str>| {
        let mut req = http
            .get(format!("{}/health", d.url))
            .header("E2b-Sandbox-Id", id);
        if let Some(t) = token {
            req = req.header("X-Access-Token", t);
        }
        req.send()
    };
    for token in [None, Some("0000")] {
        let mut answers = Vec::new();
        for id in [
            live.as_str(),
            killed.as_str(),
            "aaaaaaaaaaaaaaaaaaaa",
            "../x",
        ] {
            let resp = ask(id, token).await.unwrap();
            answers.push((resp.status().as_u16(), resp.text().await.unwrap()));
        }
        assert_eq!(answers[0].0, 401, "{answers:?}");
        assert!(
            answers.iter().all(|a| *a == answers[0]),
            "token {token:?}: {answers:?}"
        );
    }
}
