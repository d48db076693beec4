//! The E2B `envd` wire protocol, shared by the in-sandbox agent and the daemon.
//!
//! envd speaks Connect RPC over HTTP/1.1 with JSON bodies:
//! - unary calls: `POST /<service>/<Method>`, `Content-Type: application/json`,
//!   the message JSON as the body; errors are [`ConnectError`] JSON with the
//!   HTTP status of their [`Code`];
//! - streams: `Content-Type: application/connect+json`, bodies made of
//!   [`envelope`] frames, ending with an end-of-stream frame.
//!
//! Messages follow the proto3 JSON mapping (see [`json`]). Next to the two
//! services there are plain HTTP endpoints (see [`http_api`]). The user an
//! RPC acts as is selected with `Authorization: Basic base64("user:")`.

pub mod code;
pub mod envelope;
pub mod filesystem;
pub mod http_api;
pub mod json;
pub mod process;

#[cfg(feature = "client")]
pub mod client;

#[cfg(feature = "client")]
pub use client::{ClientError, EnvdClient};
pub use code::{Code, ConnectError};

/// Content type of unary Connect calls.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content type of streaming Connect calls.
pub const CONTENT_TYPE_CONNECT_JSON: &str = "application/connect+json";
/// Header clients send with the Connect protocol version.
pub const PROTOCOL_VERSION_HEADER: &str = "Connect-Protocol-Version";
