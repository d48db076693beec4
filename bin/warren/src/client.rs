//! A small typed client for Warren's native HTTP API (`/v1`).
//!
//! Plain HTTP only. Every request carries
//! `Authorization: Bearer KEY`. Any non-2xx answer becomes
//! [`ClientError::Api`] holding the daemon's `{code, message}` (or one made up
//! from the status line when the body is not an `ApiError`). Streaming
//! endpoints (`exec`, template builds) return an [`EventStream`] of NDJSON
//! events; file transfers hand out the raw response / take a raw body so the
//! caller can stream them.

mod audit;
mod budgets;
mod events;
mod hooks;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Request, header::AUTHORIZATION};
use url::Url;
use warren_api_types::{
    ApiError, BuildEvent, CreateSandboxRequest, ExecEvent, ExecRequest, FileWritten, Sandbox,
    SandboxList, SetTimeoutRequest, TemplateList,
};
use warren_core::SandboxId;

mod network;
mod pools;
mod recordings;
mod rules;
mod secrets;
mod snapshots;
mod template_aliases;
mod usage;
mod volumes;
mod webhooks;

use crate::config::Endpoint;
use crate::ndjson::{EventStream, StreamError};

/// How long to wait for a TCP connection to the daemon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound for plain request/response calls (not streams or transfers).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Error bodies longer than this are cut before being shown.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the URL, or the connection could not be made.
    #[error("cannot reach the Warren daemon at {url}: is `warren serve` running?")]
    Unreachable { url: String },
    /// The daemon answered with an error.
    #[error("{}", .error.message)]
    Api { status: u16, error: ApiError },
    /// The request failed after connecting.
    #[error("{what} failed")]
    Transport {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The daemon's answer was not what the API promises.
    #[error("the daemon's answer to {what} could not be read ({reason})")]
    Decode { what: String, reason: String },
    /// A streaming answer broke off or held garbage.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The daemon URL cannot carry the API paths.
    #[error("'{0}' cannot be used as a base URL for the API")]
    BadBase(String),
}

impl ClientError {
    /// The stable error code shown with `--json`.
    pub fn code(&self) -> &str {
        match self {
            Self::Api { error, .. } => &error.code,
            Self::Unreachable { .. } => "unreachable",
            Self::Transport { .. } | Self::Stream(_) => "transport",
            Self::Decode { .. } => "bad_response",
            Self::BadBase(_) => "invalid_argument",
        }
    }
}

/// A connection to one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: String,
}

impl Client {
    pub fn new(endpoint: Endpoint) -> Result<Self, ClientError> {
        if endpoint.url.cannot_be_a_base() {
            return Err(ClientError::BadBase(endpoint.url.to_string()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(concat!("warren-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Transport {
                what: "setting up the HTTP client".into(),
                source,
            })?;
        Ok(Self {
            http,
            base: endpoint.url,
            api_key: endpoint.api_key,
        })
    }

    /// The daemon's base URL as the user gave it, for messages.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The daemon's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + `/v1/` + `segments`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.http.request(method, url).bearer_auth(&self.api_key)
    }

    /// Sends `req` and turns connection failures and non-2xx answers into errors.
    async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.transport(e, what))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(api_error(resp).await)
    }

    fn transport(&self, e: reqwest::Error, what: &str) -> ClientError {
        if e.is_connect() {
            ClientError::Unreachable {
                url: self.base_url().to_owned(),
            }
        } else {
            ClientError::Transport {
                what: what.to_owned(),
                source: e,
            }
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<T, ClientError> {
        let resp = self.send(req.timeout(CALL_TIMEOUT), what).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e, what))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `GET /v1/<segments>` decoded as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        what: &str,
    ) -> Result<T, ClientError> {
        self.json(self.request(Method::GET, self.url(segments)), what)
            .await
    }

    /// `POST /v1/<segments>` with a JSON body, answer decoded as `T`.
    pub async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
        what: &str,
    ) -> Result<T, ClientError> {
        let req = self.request(Method::POST, self.url(segments)).json(body);
        self.json(req, what).await
    }

    /// `PUT /v1/<segments>` with a JSON body, answer decoded as `T`.
    pub async fn put_json<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
        what: &str,
    ) -> Result<T, ClientError> {
        let req = self.request(Method::PUT, self.url(segments)).json(body);
        self.json(req, what).await
    }

    /// `DELETE /v1/<segments>`, answer decoded as `T`.
    pub async fn delete_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        what: &str,
    ) -> Result<T, ClientError> {
        self.json(self.request(Method::DELETE, self.url(segments)), what)
            .await
    }

    pub async fn create(&self, body: &CreateSandboxRequest) -> Result<Sandbox, ClientError> {
        let req = self
            .request(Method::POST, self.url(&["sandboxes"]))
            .json(body);
        self.json(req, "creating the sandbox").await
    }

    pub async fn list(
        &self,
        states: &[String],
        metadata: &[(String, String)],
    ) -> Result<SandboxList, ClientError> {
        let mut url = self.url(&["sandboxes"]);
        {
            let mut q = url.query_pairs_mut();
            for s in states {
                q.append_pair("state", s);
            }
            for (k, v) in metadata {
                q.append_pair("metadata", &format!("{k}={v}"));
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.json(self.request(Method::GET, url), "listing sandboxes")
            .await
    }

    pub async fn get(&self, id: &SandboxId) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str()]);
        self.json(self.request(Method::GET, url), "looking up the sandbox")
            .await
    }

    pub async fn kill(&self, id: &SandboxId) -> Result<(), ClientError> {
        let url = self.url(&["sandboxes", id.as_str()]);
        let req = self.request(Method::DELETE, url).timeout(CALL_TIMEOUT);
        self.send(req, "killing the sandbox").await.map(drop)
    }

    pub async fn set_timeout(
        &self,
        id: &SandboxId,
        timeout_s: u64,
    ) -> Result<Sandbox, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "timeout"]);
        let req = self
            .request(Method::POST, url)
            .json(&SetTimeoutRequest { timeout_s });
        self.json(req, "setting the timeout").await
    }

    /// Starts a command; the stream yields its events until `exit`.
    pub async fn exec(
        &self,
        id: &SandboxId,
        body: &ExecRequest,
    ) -> Result<EventStream<ExecEvent>, ClientError> {
        let url = self.url(&["sandboxes", id.as_str(), "exec"]);
        let req = self.request(Method::POST, url).json(body);
        let resp = self.send(req, "starting the command").await?;
        Ok(EventStream::new(resp.bytes_stream()))
    }

    /// Opens a file for download; the caller streams the body.
    pub async fn download(
        &self,
        id: &SandboxId,
        path: &str,
        user: Option<&str>,
    ) -> Result<Response, ClientError> {
        let url = self.file_url(id, path, user);
        self.send(self.request(Method::GET, url), "downloading the file")
            .await
    }

    /// Writes `body` to `path` in the sandbox.
    pub async fn upload(
        &self,
        id: &SandboxId,
        path: &str,
        user: Option<&str>,
        body: reqwest::Body,
    ) -> Result<FileWritten, ClientError> {
        let url = self.file_url(id, path, user);
        let req = self
            .request(Method::PUT, url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let what = "uploading the file";
        let resp = self.send(req, what).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport(e, what))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    fn file_url(&self, id: &SandboxId, path: &str, user: Option<&str>) -> Url {
        let mut url = self.url(&["sandboxes", id.as_str(), "files"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("path", path);
            if let Some(user) = user {
                q.append_pair("user", user);
            }
        }
        url
    }

    pub async fn templates(&self) -> Result<TemplateList, ClientError> {
        let url = self.url(&["templates"]);
        self.json(self.request(Method::GET, url), "listing templates")
            .await
    }

    /// Starts a template build; the stream yields log lines, then `done` or `error`.
    pub async fn build_template(
        &self,
        name: &str,
        rebuild: bool,
    ) -> Result<EventStream<BuildEvent>, ClientError> {
        let mut url = self.url(&["templates", name, "build"]);
        if rebuild {
            url.query_pairs_mut().append_pair("rebuild", "true");
        }
        let resp = self
            .send(self.request(Method::POST, url), "starting the build")
            .await?;
        Ok(EventStream::new(resp.bytes_stream()))
    }

    /// Uploads an image archive (`format`: `oci-archive` or
    /// `docker-archive`) to import as template `name`; the stream yields
    /// log lines, then `done` or `error`.
    pub async fn import_template(
        &self,
        name: &str,
        format: &str,
        body: reqwest::Body,
    ) -> Result<EventStream<BuildEvent>, ClientError> {
        let mut url = self.url(&["templates", name, "import"]);
        url.query_pairs_mut().append_pair("format", format);
        let req = self
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body);
        let resp = self.send(req, "uploading the image").await?;
        Ok(EventStream::new(resp.bytes_stream()))
    }

    /// Uploads a build context (a tar) to build `name` from the Dockerfile
    /// in it; `query` carries `dockerfile`, `args` and `allow`.
    pub async fn build_dockerfile(
        &self,
        name: &str,
        query: &[(&str, String)],
        body: reqwest::Body,
    ) -> Result<EventStream<BuildEvent>, ClientError> {
        let mut url = self.url(&["templates", name, "builds"]);
        for (k, v) in query {
            url.query_pairs_mut().append_pair(k, v);
        }
        let req = self
            .request(Method::POST, url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(body);
        let resp = self.send(req, "uploading the build context").await?;
        Ok(EventStream::new(resp.bytes_stream()))
    }

    /// The WebSocket upgrade request for an interactive terminal; `cmd` and
    /// `user` default on the daemon (a login shell as `user`).
    pub fn pty_request(
        &self,
        id: &SandboxId,
        (cols, rows): (u16, u16),
        cmd: Option<&str>,
        user: Option<&str>,
    ) -> Result<Request<()>, ClientError> {
        let mut url = self.url(&["sandboxes", id.as_str(), "pty"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("cols", &cols.to_string())
                .append_pair("rows", &rows.to_string());
            if let Some(cmd) = cmd {
                q.append_pair("cmd", cmd);
            }
            if let Some(user) = user {
                q.append_pair("user", user);
            }
        }
        if url.set_scheme("ws").is_err() {
            return Err(ClientError::BadBase(self.base_url().to_owned()));
        }
        let bad = |reason: String| ClientError::Decode {
            what: "building the terminal request".into(),
            reason,
        };
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| bad(e.to_string()))?;
        let auth = HeaderValue::from_str(&format!("Bearer {}", self.api_key))
            .map_err(|_| bad("the API key contains characters not allowed in a header".into()))?;
        req.headers_mut().insert(AUTHORIZATION, auth);
        Ok(req)
    }

    /// Maps a WebSocket handshake failure to the same errors as HTTP calls.
    pub fn pty_error(&self, e: tokio_tungstenite::tungstenite::Error) -> ClientError {
        use tokio_tungstenite::tungstenite::Error as WsError;
        match e {
            WsError::Io(io) if is_connect_failure(&io) => ClientError::Unreachable {
                url: self.base_url().to_owned(),
            },
            WsError::Http(resp) => {
                let status = resp.status();
                let body = resp.into_body().unwrap_or_default();
                ClientError::Api {
                    status: status.as_u16(),
                    error: parse_api_error(status.as_u16(), status.canonical_reason(), &body),
                }
            }
            other => ClientError::Decode {
                what: "opening the terminal".into(),
                reason: other.to_string(),
            },
        }
    }
}

fn is_connect_failure(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::HostUnreachable | K::NetworkUnreachable | K::TimedOut
    )
}

/// Reads a non-2xx answer into [`ClientError::Api`].
async fn api_error(resp: Response) -> ClientError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(MAX_ERROR_BODY)];
    ClientError::Api {
        status: status.as_u16(),
        error: parse_api_error(status.as_u16(), status.canonical_reason(), body),
    }
}

/// The daemon's `{code, message}`, or one made up from the status line.
fn parse_api_error(status: u16, reason: Option<&str>, body: &[u8]) -> ApiError {
    let mut err = serde_json::from_slice::<ApiError>(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut message = format!("the daemon answered HTTP {status} {}", reason.unwrap_or(""))
            .trim_end()
            .to_owned();
        if !text.is_empty() {
            message.push_str(": ");
            message.extend(text.chars().take(300));
        }
        ApiError {
            code: format!("http_{status}"),
            message,
            retry_after_s: None,
        }
    });
    if let Some(seconds) = err.retry_after_s {
        err.message
            .push_str(&format!(" (try again in {seconds} s)"));
    }
    if status == StatusCode::UNAUTHORIZED.as_u16() {
        err.message
            .push_str(" (check --api-key, WARREN_API_KEY or the client config)");
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> Client {
        Client::new(Endpoint {
            url: base.parse().unwrap(),
            api_key: "k".into(),
        })
        .unwrap()
    }

    #[test]
    fn urls_keep_a_base_path_and_encode_segments() {
        let c = client("http://127.0.0.1:8700/warren/");
        assert_eq!(
            c.url(&["templates", "a/b?c", "build"]).as_str(),
            "http://127.0.0.1:8700/warren/v1/templates/a%2Fb%3Fc/build"
        );
        let c = client("http://127.0.0.1:8700");
        assert_eq!(
            c.url(&["health"]).as_str(),
            "http://127.0.0.1:8700/v1/health"
        );
    }

    #[test]
    fn file_paths_go_in_the_query() {
        let c = client("http://h:1");
        let id: SandboxId = "abcdefghij0123456789".parse().unwrap();
        assert_eq!(
            c.file_url(&id, "/tmp/a b&c=d", None).as_str(),
            "http://h:1/v1/sandboxes/abcdefghij0123456789/files?path=%2Ftmp%2Fa+b%26c%3Dd"
        );
    }

    #[test]
    fn pty_request_is_websocket_with_auth() {
        let c = client("http://h:1");
        let id: SandboxId = "abcdefghij0123456789".parse().unwrap();
        let req = c
            .pty_request(&id, (80, 24), Some("/bin/bash"), Some("root"))
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "ws://h:1/v1/sandboxes/abcdefghij0123456789/pty?cols=80&rows=24&cmd=%2Fbin%2Fbash&user=root"
        );
        let req = c.pty_request(&id, (80, 24), None, None).unwrap();
        assert!(req.uri().to_string().ends_with("/pty?cols=80&rows=24"));
        assert_eq!(req.headers()[AUTHORIZATION], "Bearer k");
    }

    #[test]
    fn error_bodies() {
        let e = parse_api_error(
            404,
            Some("Not Found"),
            br#"{"code":"not_found","message":"no sandbox x"}"#,
        );
        assert_eq!(e.code, "not_found");
        assert_eq!(e.message, "no sandbox x");
        let e = parse_api_error(502, Some("Bad Gateway"), b"<html>upstream</html>");
        assert_eq!(e.code, "http_502");
        assert!(
            e.message.contains("HTTP 502 Bad Gateway: <html>"),
            "{}",
            e.message
        );
        let e = parse_api_error(
            401,
            None,
            br#"{"code":"unauthenticated","message":"bad key"}"#,
        );
        assert!(e.message.contains("WARREN_API_KEY"), "{}", e.message);
        let e = parse_api_error(
            503,
            None,
            br#"{"code":"unavailable","message":"the host is busy","retry_after_s":4}"#,
        );
        assert_eq!(e.message, "the host is busy (try again in 4 s)");
    }
}
