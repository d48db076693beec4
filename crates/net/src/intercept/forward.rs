//! One intercepted connection: the sandbox's HTTP/1.1 requests, served by
//! hyper over the TLS session the sandbox opened, each forwarded with the
//! injected headers over a verified TLS connection to the real server.
//!
//! Protocol per request: every header of an injected name the sandbox sent
//! is dropped and the injected value set (marked sensitive, so hyper never
//! prints it); the request and its body go upstream unchanged otherwise;
//! the response (head and streaming body) comes back unaltered. One
//! upstream connection serves the requests of one sandbox connection in
//! turn (HTTP/1.1 keep-alive on both sides); when the server closed it, the
//! next request opens another, verified like the first.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Request, Response};
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
    ) -> Result<Response<Incoming>, InterceptError> {
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
            .map_err(InterceptError::Http)
    }

    async fn reconnect(&self) -> Result<SendRequest<Incoming>, InterceptError> {
        self.connect().await.inspect_err(|e| {
            tracing::warn!(host = %self.host_str(), error = %crate::intercept::chain(e), "reconnecting to the upstream server failed");
        })
    }
}
