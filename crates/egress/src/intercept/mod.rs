//! TLS interception for secret injection: the installation's Warren CA
//! ([`ca`]) and [`TlsInterceptor`], the [`Interceptor`] the egress proxy
//! hands a sandbox's connection to when its policy injects a secret into
//! requests to that host.
//!
//! Protocol of one interception:
//! 1. At the same time: the sandbox's TLS handshake is answered with the
//!    CA's leaf for `host` (ALPN `http/1.1` only, so clients that would
//!    speak h2 fall back), and a TLS connection to `upstream` is opened with
//!    SNI `host`, verifying the server's certificate for `host` against the
//!    system roots plus the configured extra CA. If the upstream side fails
//!    (unreachable, or a certificate that does not verify) the sandbox's
//!    connection is dropped before its handshake completes: there is no
//!    downgrade and no request leaves.
//! 2. The sandbox's HTTP/1.1 requests are forwarded one by one ([`forward`]),
//!    with the injected headers replacing any the sandbox sent under those
//!    names; responses stream back unaltered. A request that names another
//!    host than `host` (its Host header or absolute target; the proxy
//!    judged `host`, the SNI) is answered 421, never forwarded, and ends
//!    the connection; [`Transfer::misdirected`] reports it.
//! 3. It ends when either side closes, or when the sandbox sends no request
//!    head within the header timeout; the bytes the sandbox sent and
//!    received (TLS records) are returned.
//!
//! Header values are secrets: they are never logged (tracing fields
//! included), and hyper gets them marked sensitive.

pub mod ca;
mod count;
pub mod forward;
pub mod roots;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsAcceptor;

pub use ca::{CaError, WarrenCa};

use crate::egress::{InjectedHeader, InterceptFuture, Interceptor, Transfer};
use crate::error::EgressError;
use count::{Counted, Counters};
use forward::{Forwarder, Injected};

/// Why an interception failed. Never carries a header value.
#[derive(Debug, thiserror::Error)]
pub enum InterceptError {
    #[error("cannot read trusted certificates from {path}: {detail}")]
    Roots { path: PathBuf, detail: String },
    #[error("{path} holds no usable CA certificate")]
    NoRoots { path: PathBuf },
    #[error("Warren CA")]
    Ca(#[from] CaError),
    #[error("'{0}' is not a host name TLS can name")]
    BadHost(String),
    #[error("injected header '{name}' has a name or value HTTP does not allow")]
    BadHeader { name: String },
    #[error("connecting to the upstream server {upstream} failed")]
    Connect {
        upstream: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with the upstream server for {host} failed")]
    UpstreamTls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox's TLS handshake for {host} failed")]
    ClientTls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out {what}")]
    Timeout { what: &'static str },
    #[error("HTTP")]
    Http(#[source] hyper::Error),
}

/// `e` and its sources, for log lines.
pub(crate) fn chain(e: &InterceptError) -> String {
    warren_core::error::chain(e)
}

/// Settings of a [`TlsInterceptor`].
#[derive(Debug, Clone)]
pub struct InterceptConfig {
    /// The system's CA bundle; default [`roots::SYSTEM_ROOTS`].
    pub system_roots: PathBuf,
    /// One more CA file upstream servers may be verified against
    /// (`--upstream-ca`).
    pub upstream_ca: Option<PathBuf>,
    /// For the TCP connect and each TLS handshake; default 10 s.
    pub connect_timeout: Duration,
    /// How long the sandbox may take to send a request head (also between
    /// requests on a kept-alive connection); default 60 s.
    pub header_timeout: Duration,
    /// How long the upstream server may take to answer a request's head;
    /// default 300 s.
    pub response_timeout: Duration,
}

impl Default for InterceptConfig {
    fn default() -> Self {
        Self {
            system_roots: PathBuf::from(roots::SYSTEM_ROOTS),
            upstream_ca: None,
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(300),
        }
    }
}

/// The interceptor; cheap to clone (clones share the CA and the roots).
#[derive(Clone)]
pub struct TlsInterceptor {
    ca: Arc<WarrenCa>,
    client: Arc<ClientConfig>,
    config: InterceptConfig,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const HTTP1: &[u8] = b"http/1.1";

/// Always the one leaf of the host being intercepted.
#[derive(Debug)]
struct OneLeaf(Arc<CertifiedKey>);

impl ResolvesServerCert for OneLeaf {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

impl TlsInterceptor {
    pub fn new(ca: Arc<WarrenCa>, config: InterceptConfig) -> Result<Self, InterceptError> {
        let roots = roots::load(&config.system_roots, config.upstream_ca.as_deref())?;
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![HTTP1.to_vec()];
        Ok(Self {
            ca,
            client: Arc::new(client),
            config,
        })
    }

    fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, InterceptError> {
        let leaf = self.ca.leaf(host)?;
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(OneLeaf(leaf)));
        server.alpn_protocols = vec![HTTP1.to_vec()];
        Ok(Arc::new(server))
    }

    /// Intercepts one connection of a sandbox to `host` (see the module
    /// docs). `client` may be any stream; the proxy passes a TcpStream.
    pub async fn run<S>(
        &self,
        client: S,
        host: String,
        upstream: SocketAddr,
        headers: Vec<InjectedHeader>,
    ) -> Result<Transfer, InterceptError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let server_name = ServerName::try_from(host.clone())
            .map_err(|_| InterceptError::BadHost(host.clone()))?;
        let injected = prepare(headers)?;
        let acceptor = TlsAcceptor::from(self.server_config(&host)?);
        let counters = Arc::new(Counters::default());
        let forwarder = Arc::new(Forwarder {
            client: self.client.clone(),
            host: server_name,
            upstream,
            headers: injected,
            connect_timeout: self.config.connect_timeout,
            response_timeout: self.config.response_timeout,
            conn: Mutex::new(None),
            misdirected: std::sync::Mutex::default(),
        });
        let accept = async {
            tokio::time::timeout(
                self.config.connect_timeout,
                acceptor.accept(Counted::new(client, counters.clone())),
            )
            .await
            .map_err(|_| InterceptError::Timeout {
                what: "the sandbox's TLS handshake",
            })?
            .map_err(|source| InterceptError::ClientTls {
                host: host.clone(),
                source,
            })
        };
        // The upstream side first wins: a failure there drops the sandbox's
        // connection mid-handshake.
        let (sandbox_tls, first) = tokio::try_join!(accept, forwarder.connect())?;
        *forwarder.conn.lock().await = Some(first);

        let serving = forwarder.clone();
        let service = service_fn(move |req| serving.clone().forward(req));
        let served = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(sandbox_tls), service)
            .await;
        if let Err(e) = served {
            tracing::debug!(host, error = %e, "intercepted connection ended");
        }
        let misdirected = forwarder
            .misdirected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        Ok(Transfer {
            bytes_out: counters.read.load(Ordering::Relaxed),
            bytes_in: counters.written.load(Ordering::Relaxed),
            misdirected,
        })
    }
}

/// Header names and values as HTTP types; values marked sensitive.
fn prepare(headers: Vec<InjectedHeader>) -> Result<Injected, InterceptError> {
    headers
        .into_iter()
        .map(|h| {
            let bad = || InterceptError::BadHeader {
                name: h.name.clone(),
            };
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(&h.value).map_err(|_| bad())?;
            value.set_sensitive(true);
            Ok((name, value))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Injected)
}

impl Interceptor for TlsInterceptor {
    fn intercept(
        &self,
        client: TcpStream,
        host: String,
        upstream: SocketAddr,
        headers: Vec<InjectedHeader>,
    ) -> InterceptFuture {
        let this = self.clone();
        Box::pin(async move {
            let _ = client.set_nodelay(true);
            this.run(client, host, upstream, headers)
                .await
                .map_err(EgressError::from)
        })
    }
}
