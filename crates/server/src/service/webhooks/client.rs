//! One delivery attempt over HTTP/1.1: resolve and check the destination
//! ([`Destinations::resolve`]), connect to that address (TLS for `https`,
//! verified against the system's roots for the URL's host), POST, read the
//! status and at most [`MAX_RESPONSE`] bytes of the answer. Redirects are
//! never followed (a 3xx is a failed attempt), no proxy is used, and the
//! whole attempt is bounded by [`TIMEOUT`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::Url;

use super::destination::Destinations;
use super::payload::Rendered;

/// Longest an attempt may take, connect to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a receiver's answer is kept.
pub const MAX_RESPONSE: usize = 4096;

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body, lossy UTF-8.
    pub body: String,
}

/// Sends deliveries.
#[derive(Clone)]
pub struct Sender {
    destinations: Arc<Destinations>,
    tls: Option<TlsConnector>,
}

impl Sender {
    /// A sender; `https` works when the system's roots load.
    pub fn new(destinations: Arc<Destinations>) -> Self {
        let roots = warren_egress::intercept::roots::load(
            std::path::Path::new(warren_egress::intercept::roots::SYSTEM_ROOTS),
            None,
        );
        let tls = match roots {
            Ok(roots) => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .ok()
                    .map(|b| {
                        let mut c = b.with_root_certificates(roots).with_no_client_auth();
                        c.alpn_protocols = vec![b"http/1.1".to_vec()];
                        TlsConnector::from(Arc::new(c))
                    })
            }
            Err(e) => {
                tracing::warn!(error = %e, "no trusted roots: https webhooks cannot be delivered");
                None
            }
        };
        Self { destinations, tls }
    }

    /// Whether `url` may be registered.
    pub fn destinations(&self) -> &Destinations {
        &self.destinations
    }

    /// POSTs `rendered` to `url`; an error says why no answer came.
    pub async fn post(&self, url: &str, rendered: &Rendered) -> Result<Answer, String> {
        match tokio::time::timeout(TIMEOUT, self.attempt(url, rendered)).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} s", TIMEOUT.as_secs())),
        }
    }

    async fn attempt(&self, url: &str, rendered: &Rendered) -> Result<Answer, String> {
        let url = Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
        let addr = self
            .destinations
            .resolve(&url)
            .await
            .map_err(|e| e.to_string())?;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        if url.scheme() == "https" {
            let tls = self
                .tls
                .as_ref()
                .ok_or("https is unavailable: no trusted roots")?;
            let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
            let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                .map_err(|e| format!("TLS name {host}: {e}"))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {addr}: {e}"))?;
            exchange(stream, &url, rendered).await
        } else {
            exchange(tcp, &url, rendered).await
        }
    }
}

async fn exchange<S>(stream: S, url: &Url, rendered: &Rendered) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let host = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut req = http::Request::post(path).header(http::header::HOST, host);
    for (k, v) in &rendered.headers {
        req = req.header(*k, v);
    }
    let req = req
        .body(Full::new(Bytes::from(rendered.body.clone())))
        .map_err(|e| format!("request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut kept = Vec::new();
    while kept.len() < MAX_RESPONSE {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let room = MAX_RESPONSE - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    drop(body);
    conn.abort();
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&kept).into_owned(),
    })
}
