//! Forwarding one HTTP request to a server inside a sandbox: the part the
//! E2B proxy (`e2b::proxy`) and the exposed-port proxy (`ports`) share.
//!
//! Streaming: request and response bodies pass frame by frame (never
//! collected), so a 1 GB upload or an endless stream costs a few buffers.
//! Upstream connections are pooled, with TCP_NODELAY (a kept-alive
//! connection without it costs ~44 ms per request through gVisor's
//! netstack). A request carrying `Upgrade` (WebSocket) keeps its hop-by-hop
//! headers, and once the sandbox answers 101 both connections are spliced
//! byte for byte until either side closes.
//!
//! [`Upstream::send`] takes Warren's credentials out of every request and
//! answer ([`crate::credentials`]: the agent's access token reaches the
//! agent's port only), whichever proxy calls it; the caller prepares the
//! rest of the headers (`Host`, forwarding headers) and the path.
//!
//! Header names reach the sandbox title-cased (`Host`, `Content-Type`), as
//! E2B's proxy sends them: servers that read the raw names (Python's
//! `http.server` hands them over as received) see what they would behind
//! E2B.
//!
//! A pool belongs to one instance of one sandbox
//! ([`crate::agents::Agents::upstream`]): connections are never carried
//! from a sandbox to the next one given its address.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, StatusCode, Uri, Version, header};
use axum::response::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::credentials;
use warren_envd::http_api::DEFAULT_PORT as ENVD_PORT;

/// Why a request did not reach the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("malformed request path")]
    BadPath,
    /// Nothing accepted the connection (no listener, or the address is gone).
    #[error("cannot connect: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("the upstream failed: {0}")]
    Upstream(#[source] hyper_util::client::legacy::Error),
}

/// A pooled HTTP/1.1 client for sandbox addresses.
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpConnector, Body>,
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

impl Upstream {
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http1_title_case_headers(true)
            .build(connector);
        Self { client }
    }

    /// Sends `req` (its path and query kept) to `addr` and returns the
    /// answer, streaming; an upgrade is spliced once both sides agreed.
    pub async fn send(&self, addr: SocketAddr, mut req: Request) -> Result<Response, ForwardError> {
        credentials::strip_request(req.headers_mut(), addr.port() == ENVD_PORT);
        let upgrade = is_upgrade(req.headers());
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = format!("http://{addr}{path}")
            .parse::<Uri>()
            .map_err(|_| ForwardError::BadPath)?;
        let inbound_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        let mut resp = self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                ForwardError::Connect(e)
            } else {
                ForwardError::Upstream(e)
            }
        })?;
        if let Some(inbound) = inbound_upgrade
            && resp.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            let outbound = hyper::upgrade::on(&mut resp);
            tokio::spawn(splice(inbound, outbound));
        }
        if !upgrade {
            strip_hop_by_hop(resp.headers_mut());
        }
        credentials::strip_response(resp.headers_mut());
        Ok(resp.map(Body::new))
    }
}

/// Whether the request asks to switch protocols (WebSocket and the like).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
}

/// Copies bytes both ways between an upgraded client and sandbox connection.
async fn splice(inbound: hyper::upgrade::OnUpgrade, outbound: hyper::upgrade::OnUpgrade) {
    let (Ok(a), Ok(b)) = (inbound.await, outbound.await) else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b)).await;
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the hop-by-hop headers, and those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}
