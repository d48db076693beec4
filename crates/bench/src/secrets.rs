//! Secret injection: small HTTPS requests through the TLS interceptor
//! against the same requests sent straight to the same local server, in one
//! run on loopback. Two shapes: one kept-alive connection for all requests
//! (what the interceptor adds per request), and a new connection per
//! request (adding the extra TLS handshake and the upstream connect).
//!
//! The server is a local rustls + hyper HTTPS server with a certificate
//! from a CA of the run's own; the interceptor trusts that CA as its
//! `--upstream-ca`, the client trusts the Warren CA through it, and the
//! server directly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use warren_egress::egress::{InjectedHeader, Interceptor as _};
use warren_egress::intercept::{InterceptConfig, TlsInterceptor, WarrenCa};

use crate::stats::{Row, ms, percentile};

const HOST: &str = "api.bench.example";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA of the run's own and a server certificate for [`HOST`] from it.
fn server_identity() -> anyhow::Result<(String, rustls::ServerConfig)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca_params.self_signed(&ca_key)?.pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec![HOST.to_owned()])?.signed_by(&key, &issuer)?;
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], private)?;
    Ok((ca_pem, config))
}

async fn serve_https(config: rustls::ServerConfig) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|req: Request<Incoming>| async move {
                    let seen = req.headers().contains_key("authorization");
                    let body = if seen { "ok" } else { "no" };
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(body))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn serve_proxy(
    interceptor: TlsInterceptor,
    upstream: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let headers = vec![InjectedHeader {
                name: "Authorization".into(),
                value: "Bearer bench-secret".into(),
            }];
            tokio::spawn(interceptor.intercept(tcp, HOST.into(), upstream, headers));
        }
    });
    Ok(addr)
}

fn client_config(root: CertificateDer<'static>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(root)?;
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

async fn connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> anyhow::Result<SendRequest<Empty<Bytes>>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(ServerName::try_from(HOST)?, tcp)
        .await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, expect: &str) -> anyhow::Result<()> {
    sender.ready().await?;
    let req = Request::get("/small")
        .header("host", HOST)
        .body(Empty::new())?;
    let body = sender
        .send_request(req)
        .await?
        .into_body()
        .collect()
        .await?
        .to_bytes();
    anyhow::ensure!(body == expect.as_bytes(), "unexpected answer {body:?}");
    Ok(())
}

/// Latencies of `n` requests on one connection, and with one connection each.
async fn measure(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    expect: &str,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut sender = connect(addr, config).await?;
    get(&mut sender, expect).await?; // warm-up
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(&mut sender, expect).await?;
        kept.push(t.elapsed());
    }
    let mut fresh = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let mut sender = connect(addr, config).await?;
        get(&mut sender, expect).await?;
        fresh.push(t.elapsed());
    }
    Ok((kept, fresh))
}

pub async fn run(requests: usize) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let (server_ca, server_config) = server_identity()?;
    let server_ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&server_ca_file, &server_ca)?;
    let upstream = serve_https(server_config).await?;
    let ca = Arc::new(WarrenCa::load_or_create(dir.path())?);
    let interceptor = TlsInterceptor::new(
        ca.clone(),
        InterceptConfig {
            system_roots: dir.path().join("none"),
            upstream_ca: Some(server_ca_file),
            ..InterceptConfig::default()
        },
    )?;
    let proxy = serve_proxy(interceptor, upstream).await?;
    use rustls_pki_types::pem::PemObject as _;
    let direct_config = client_config(CertificateDer::from_pem_slice(server_ca.as_bytes())?)?;
    let warren_config = client_config(ca.certificate_der().clone())?;

    let (mut via_kept, mut via_fresh) = measure(proxy, &warren_config, "ok", requests).await?;
    let (mut direct_kept, mut direct_fresh) =
        measure(upstream, &direct_config, "no", requests).await?;
    let total = |s: &[Duration]| ms(s.iter().sum());
    let mut rows = Vec::new();
    for (label, via, direct) in [
        ("kept-alive connection", &mut via_kept, &mut direct_kept),
        (
            "new connection per request",
            &mut via_fresh,
            &mut direct_fresh,
        ),
    ] {
        rows.push(Row::new(
            format!("{requests} HTTPS requests, {label}, total"),
            "ms",
            total(via),
            Some(total(direct)),
        ));
        for p in [50.0, 99.0] {
            rows.push(Row::new(
                format!("one request, {label}, p{p}"),
                "µs",
                ms(percentile(via, p)) * 1000.0,
                Some(ms(percentile(direct, p)) * 1000.0),
            ));
        }
    }
    Ok(rows)
}
