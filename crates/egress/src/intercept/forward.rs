//! One intercepted connection: the sandbox's HTTP/1.1 requests, served by
//! hyper over the TLS session the sandbox opened, each forwarded with the
//! injected headers over a verified TLS connection to the real server.
//!
//! Protocol per request: a request must name the connection's host (the
//! SNI the proxy judged) and nothing else — exactly one Host header, and
//! an absolute target, if any, with the same host; otherwise it is answered
//! `421 Misdirected Request` with `Connection: close`, is never forwarded,
//! and the host it named is recorded ([`Forwarder::misdirected`]). Every
//! header of an injected name the sandbox sent
//! is dropped and the injected value set (marked sensitive, so hyper never
//! prints it); the request and its body go upstream unchanged otherwise;
//! the response (head and streaming body) comes back unaltered. One
//! upstream connection serves the requests of one sandbox connection in
//! turn (HTTP/1.1 keep-alive on both sides); when the server closed it, the
//! next request opens another, verified like the first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::InterceptError;

/// The injected headers, ready to set. `Debug` never shows a value.
pub struct Injected(pub Vec<(HeaderName, HeaderValue)>);

impl std::fmt::Debug for Injected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

/// What forwarding needs, shared by the requests of one connection.
pub struct Forwarder {
    pub client: Arc<ClientConfig>,
    pub host: ServerName<'static>,
    pub upstream: SocketAddr,
    pub headers: Injected,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    pub conn: Mutex<Option<SendRequest<Incoming>>>,
    /// The host the first misdirected request named (`""`: none).
    pub misdirected: std::sync::Mutex<Option<String>>,
}

/// What the sandbox gets back: the server's response, or the proxy's own.
pub type Reply = Response<Either<Incoming, Full<Bytes>>>;

/// The host `req` names other than `host` (lower-case, without port), or
/// `None` when it names exactly `host`: one Host header and, if the target
/// is absolute, the same host there. More than one Host header, or none
/// and no absolute target, is misdirected too.
pub fn misdirected<B>(req: &Request<B>, host: &str) -> Option<String> {
    let want = host.trim_end_matches('.').to_ascii_lowercase();
    let hosts: Vec<_> = req.headers().get_all(header::HOST).iter().collect();
    if hosts.len() > 1 {
        let all: Vec<_> = hosts
            .iter()
            .map(|h| String::from_utf8_lossy(h.as_bytes()))
            .collect();
        return Some(all.join(", "));
    }
    let mut named = Vec::new();
    if let Some(h) = hosts.first() {
        let h = String::from_utf8_lossy(h.as_bytes());
        named.push(crate::sniff::host_of(h.trim()).unwrap_or_else(|_| h.into_owned()));
    }
    if let Some(authority) = req.uri().authority() {
        let a = authority.as_str();
        let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
        named.push(crate::sniff::host_of(a).unwrap_or_else(|_| a.to_owned()));
    }
    if named.is_empty() {
        return Some(String::new());
    }
    named.into_iter().find(|n| *n != want)
}

impl Forwarder {
    fn host_str(&self) -> String {
        self.host.to_str().into_owned()
    }

    /// A new verified connection to the upstream server.
    pub async fn connect(&self) -> Result<SendRequest<Incoming>, InterceptError> {
        let host = self.host_str();
        let tcp = timeout(self.connect_timeout, TcpStream::connect(self.upstream))
            .await
            .map_err(|_| InterceptError::Timeout {
                what: "connecting to the upstream server",
            })?
            .map_err(|source| InterceptError::Connect {
                upstream: self.upstream,
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let tls = timeout(
            self.connect_timeout,
            TlsConnector::from(self.client.clone()).connect(self.host.clone(), tcp),
        )
        .await
        .map_err(|_| InterceptError::Timeout {
            what: "the TLS handshake with the upstream server",
        })?
        .map_err(|source| InterceptError::UpstreamTls {
            host: host.clone(),
            source,
        })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(InterceptError::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(host, error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Forwards one request; see the module docs.
    pub async fn forward(
        self: Arc<Self>,
        mut req: Request<Incoming>,
    ) -> Result<Reply, InterceptError> {
        if let Some(named) = misdirected(&req, &self.host_str()) {
            self.misdirected
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert(named);
            let mut refused = Response::new(Either::Right(Full::new(Bytes::from_static(
                b"this connection serves one host only\n",
            ))));
            *refused.status_mut() = StatusCode::MISDIRECTED_REQUEST;
            refused
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Ok(refused);
        }
        for (name, value) in &self.headers.0 {
            req.headers_mut().remove(name);
            req.headers_mut().insert(name.clone(), value.clone());
        }
        let mut slot = self.conn.lock().await;
        let mut sender = match slot.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.reconnect().await?,
        };
        if sender.ready().await.is_err() {
            sender = self.reconnect().await?;
            sender.ready().await.map_err(InterceptError::Http)?;
        }
        let sent = sender.send_request(req);
        *slot = Some(sender);
        drop(slot);
        timeout(self.response_timeout, sent)
            .await
            .map_err(|_| InterceptError::Timeout {
                what: "waiting for the upstream server's response",
            })?
            .map(|r| r.map(Either::Left))
            .map_err(InterceptError::Http)
    }

    async fn reconnect(&self) -> Result<SendRequest<Incoming>, InterceptError> {
        self.connect().await.inspect_err(|e| {
            tracing::warn!(host = %self.host_str(), error = %crate::intercept::chain(e), "reconnecting to the upstream server failed");
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, hosts: &[&str]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for h in hosts {
            b = b.header(header::HOST, *h);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn requests_must_name_the_connections_host_only() {
        let host = "api.example.test";
        for (uri, hosts) in [
            ("/x", &["api.example.test"][..]),
            ("/x", &["API.example.test:443"]),
            ("https://api.example.test/x", &["api.example.test"]),
            ("https://api.example.test:443/x", &[]),
        ] {
            assert_eq!(misdirected(&req(uri, hosts), host), None, "{uri} {hosts:?}");
        }
        for (uri, hosts, named) in [
            ("/x", &["evil.example.test"][..], "evil.example.test"),
            (
                "https://evil.example.test/x",
                &["api.example.test"],
                "evil.example.test",
            ),
            (
                "https://api.example.test@evil.example.test/x",
                &["api.example.test"],
                "evil.example.test",
            ),
            (
                "/x",
                &["api.example.test", "api.example.test"],
                "api.example.test, api.example.test",
            ),
            ("/x", &[], ""),
        ] {
            assert_eq!(
                misdirected(&req(uri, hosts), host).as_deref(),
                Some(named),
                "{uri} {hosts:?}"
            );
        }
    }
}
