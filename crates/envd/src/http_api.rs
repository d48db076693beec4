//! The plain HTTP endpoints next to the RPC services.
//!
//! - `GET /health` answers 204.
//! - `POST /init` takes an [`InitRequest`] and answers 204. The first call is
//!   accepted without a token; once a token is set, later calls must carry it
//!   in `X-Access-Token`.
//! - `GET /files?path=&username=` answers the raw bytes (gzip when accepted).
//! - `POST /files?path=&username=` takes `application/octet-stream` or
//!   `multipart/form-data` (parts named `file`, the filename is the path when
//!   `path` is absent), optionally gzip-encoded, and answers a JSON list of
//!   [`WriteInfo`].
//! - Errors of these endpoints are [`HttpError`] JSON with the HTTP status.
//!
//! `/files` also accepts, instead of `X-Access-Token`, a `signature` (and
//! optional `signature_expiration`) query parameter: see [`file_signature`].

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The envd port.
pub const DEFAULT_PORT: u16 = 49983;
/// Header carrying the access token set by `/init`.
pub const ACCESS_TOKEN_HEADER: &str = "X-Access-Token";
/// Header with the keepalive interval in seconds for server streams.
pub const KEEPALIVE_HEADER: &str = "Keepalive-Ping-Interval";
/// The Connect protocol's deadline, in milliseconds. On `process.Process/Start`
/// it is the command's own deadline: the process is killed when it passes.
pub const CONNECT_TIMEOUT_HEADER: &str = "connect-timeout-ms";

/// Body of `POST /init`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InitRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_workdir: Option<String>,
    /// RFC 3339 wall-clock time to set inside the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Warren's own field (E2B's envd has none such): the PEM certificate
    /// of the installation's Warren CA, which the agent installs into the
    /// system's trust store (see `docs/agent.md`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warren_ca_cert: Option<String>,
    /// Warren's own field: the sandbox's API token, which the agent writes
    /// (whole, by rename, mode 0644) to [`SANDBOX_TOKEN_FILE`] before it
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warren_token: Option<String>,
}

/// Where a sandbox's token for Warren's API lives inside it.
pub const SANDBOX_TOKEN_FILE: &str = "/run/warren/token";

/// The tag of a template's start command: the agent keeps the output of
/// the process started with it for `GET /logs` (Warren's own endpoint).
pub const START_COMMAND_TAG: &str = "template-start";

/// One line of `GET /logs?start=MS` (oldest first): the start command's
/// output, or one of the agent's own log lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch when the line was read.
    pub timestamp_ms: i64,
    /// `stdout`, `stderr` or `pty` for the start command's output;
    /// [`AGENT_STREAM`] for the agent's own lines.
    pub stream: String,
    pub line: String,
    /// `info` for the start command's output; the agent's own lines carry
    /// theirs (`info`, `warn` or `error`). Agents before levels existed
    /// sent none.
    #[serde(default = "info_level")]
    pub level: String,
}

/// The `stream` of the agent's own log lines.
pub const AGENT_STREAM: &str = "agent";

fn info_level() -> String {
    "info".to_owned()
}

/// Where the agent keeps the sandbox's environment (`envVars` of every
/// `/init` so far, merged) as one JSON object, rewritten whole by rename
/// (mode 0644) after each `/init`. A process that started before the last
/// `/init` (a template's start command, restored from a template snapshot)
/// reads the create's variables here.
pub const SANDBOX_ENV_FILE: &str = "/run/warren/env.json";

/// One written file in the answer to `POST /files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteInfo {
    pub name: String,
    /// `file` or `dir`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    /// The file's user metadata (envd's `user.e2b.*` attributes).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

/// Error body of the plain HTTP endpoints: the HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpError {
    pub code: u16,
    pub message: String,
}

/// The `Authorization` header value that selects `user` for an RPC.
pub fn basic_user_header(user: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
    format!("Basic {encoded}")
}

/// The user selected by an `Authorization: Basic base64("user:")` header.
/// Returns `None` for other schemes or malformed values.
pub fn user_from_basic(header: &str) -> Option<String> {
    let encoded = header.strip_prefix("Basic ")?.trim();
    let raw = crate::json::decode_base64(encoded).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let user = text.split(':').next()?;
    (!user.is_empty()).then(|| user.to_string())
}

/// The text a `/files` signature hashes: `path:operation:username:token` and
/// `:expiration` when set. The signature is `v1_` followed by the unpadded
/// standard base64 of its SHA-256; `operation` is `read` or `write`.
pub fn file_signature_input(
    path: &str,
    operation: &str,
    username: &str,
    token: &str,
    expiration: Option<i64>,
) -> String {
    match expiration {
        Some(exp) => format!("{path}:{operation}:{username}:{token}:{exp}"),
        None => format!("{path}:{operation}:{username}:{token}"),
    }
}

/// Formats a signature from the SHA-256 digest of [`file_signature_input`].
pub fn file_signature(digest: &[u8]) -> String {
    format!(
        "v1_{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_user_round_trip() {
        let header = basic_user_header("user");
        assert_eq!(header, "Basic dXNlcjo=");
        assert_eq!(user_from_basic(&header).as_deref(), Some("user"));
        assert_eq!(user_from_basic("Bearer x"), None);
        assert_eq!(user_from_basic("Basic !!!"), None);
        assert_eq!(user_from_basic(&basic_user_header("")), None);
    }

    #[test]
    fn init_request_wire_shape() {
        let req: InitRequest = serde_json::from_str(
            r#"{"envVars":{"A":"1"},"accessToken":"t","defaultUser":"root","timestamp":"2024-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(req.access_token.as_deref(), Some("t"));
        assert_eq!(req.default_user.as_deref(), Some("root"));
        assert_eq!(
            req.env_vars.unwrap().get("A").map(String::as_str),
            Some("1")
        );
    }
}
