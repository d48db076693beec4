//! The TLS interceptor against a real local HTTPS server (rustls, a test
//! CA): the injected header reaches the server in place of the sandbox's,
//! responses and large bodies pass unaltered, and a server whose
//! certificate does not verify gets no request at all.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use warren_egress::egress::{InjectedHeader, Interceptor as _, Transfer};
use warren_egress::intercept::{InterceptConfig, TlsInterceptor, WarrenCa};

const HOST: &str = "api.test.example";
const REAL: &str = "Bearer real-secret-value";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA of the test's own (standing in for a public CA).
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn server_config(&self, host: &str) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![host.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], private)
            .unwrap();
        Arc::new(config)
    }
}

/// The upstream server: `/echo` answers the request's headers as JSON,
/// `/upload` the length and checksum of the body, `/big?n` n bytes.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn checksum(b: &[u8]) -> u64 {
    b.iter().enumerate().fold(0u64, |acc, (i, x)| {
        acc.wrapping_add((i as u64 + 1) * u64::from(*x))
    })
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = match path.as_str() {
        "/echo" => {
            let mut headers = serde_json::Map::new();
            for name in req.headers().keys() {
                let values: Vec<_> = req
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| serde_json::Value::from(v.to_str().unwrap()))
                    .collect();
                headers.insert(name.to_string(), values.into());
            }
            serde_json::to_vec(&headers).unwrap()
        }
        "/upload" => {
            let bytes = req.into_body().collect().await?.to_bytes();
            format!("{} {}", bytes.len(), checksum(&bytes)).into_bytes()
        }
        "/big" => pattern(query.parse().unwrap()),
        _ => b"?".to_vec(),
    };
    Ok(Response::builder()
        .header("x-upstream", "yes")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

async fn upstream(config: Arc<rustls::ServerConfig>) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    handle(req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Upstream { addr, requests }
}

/// What the egress proxy would do: accept the sandbox's connection and hand
/// it to the interceptor. Returns the address sandboxes connect to and the
/// transfers of finished interceptions.
async fn proxy(
    interceptor: TlsInterceptor,
    upstream: SocketAddr,
) -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Result<Transfer, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let headers = vec![InjectedHeader {
                name: "Authorization".into(),
                value: REAL.into(),
            }];
            let done = interceptor.intercept(tcp, HOST.into(), upstream, headers);
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(done.await.map_err(|e| warren_core::error::chain(&e)));
            });
        }
    });
    (addr, rx)
}

/// A sandbox's HTTPS connection to `HOST` through the proxy, trusting the
/// Warren CA only, offering h2 and http/1.1 like curl does.
async fn sandbox_connection(
    proxy: SocketAddr,
    ca: &WarrenCa,
) -> std::io::Result<SendRequest<Full<Bytes>>> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.certificate_der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(proxy).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (Response<()>, Bytes) {
    sender.ready().await.unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (head, body) = resp.into_parts();
    (
        Response::from_parts(head, ()),
        body.collect().await.unwrap().to_bytes(),
    )
}

fn get(path: &str) -> http::request::Builder {
    Request::builder().uri(path).header("host", HOST)
}

struct Setup {
    ca: Arc<WarrenCa>,
    proxy: SocketAddr,
    transfers: tokio::sync::mpsc::UnboundedReceiver<Result<Transfer, String>>,
    upstream: Upstream,
    _dir: tempfile::TempDir,
}

/// A Warren CA, an upstream server with a certificate for `cert_host` from
/// the test CA, and an interceptor that trusts the test CA.
async fn setup(cert_host: &str, trusted: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let test_ca = TestCa::new();
    let untrusted = TestCa::new();
    let ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_file, &test_ca.pem).unwrap();
    let serving = if trusted { &test_ca } else { &untrusted };
    let upstream = upstream(serving.server_config(cert_host)).await;
    let ca = Arc::new(WarrenCa::load_or_create(dir.path()).unwrap());
    let interceptor = TlsInterceptor::new(
        ca.clone(),
        InterceptConfig {
            system_roots: dir.path().join("no-system-roots"),
            upstream_ca: Some(ca_file),
            ..InterceptConfig::default()
        },
    )
    .unwrap();
    let (proxy, transfers) = proxy(interceptor, upstream.addr).await;
    Setup {
        ca,
        proxy,
        transfers,
        upstream,
        _dir: dir,
    }
}

#[tokio::test]
async fn the_injected_header_replaces_the_sandboxes_on_every_request() {
    let mut s = setup(HOST, true).await;
    let mut conn = sandbox_connection(s.proxy, &s.ca).await.unwrap();
    for _ in 0..2 {
        let req = get("/echo")
            .header("authorization", "Bearer warren-secret-placeholder:gh")
            .header("Authorization", "Basic second")
            .header("x-keep", "kept")
            .body(Full::default())
            .unwrap();
        let (resp, body) = send(&mut conn, req).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-upstream"], "yes", "response unaltered");
        let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["authorization"], serde_json::json!([REAL]));
        assert_eq!(seen["x-keep"], serde_json::json!(["kept"]));
        assert_eq!(seen["host"], serde_json::json!([HOST]));
    }
    // A request that sent no such header gets it too.
    let (_, body) = send(&mut conn, get("/echo").body(Full::default()).unwrap()).await;
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["authorization"], serde_json::json!([REAL]));
    assert_eq!(s.upstream.requests.load(Ordering::SeqCst), 3);
    drop(conn);
    let transfer = s.transfers.recv().await.unwrap().unwrap();
    assert!(
        transfer.bytes_out > 0 && transfer.bytes_in > 0,
        "{transfer:?}"
    );
}

#[tokio::test]
async fn bodies_of_several_megabytes_pass_both_ways_unaltered() {
    let s = setup(HOST, true).await;
    let mut conn = sandbox_connection(s.proxy, &s.ca).await.unwrap();
    let n = 8 * 1024 * 1024;
    let (_, body) = send(
        &mut conn,
        get(&format!("/big?{n}")).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(body.len(), n);
    assert!(body == pattern(n), "downloaded bytes differ");
    let upload = pattern(n + 13);
    let req = Request::post("/upload")
        .header("host", HOST)
        .body(Full::new(Bytes::from(upload.clone())))
        .unwrap();
    let (_, body) = send(&mut conn, req).await;
    assert_eq!(
        String::from_utf8(body.to_vec()).unwrap(),
        format!("{} {}", upload.len(), checksum(&upload))
    );
}

#[tokio::test]
async fn an_upstream_certificate_that_does_not_verify_fails_the_sandboxes_connection() {
    for (cert_host, trusted) in [(HOST, false), ("other.test.example", true)] {
        let mut s = setup(cert_host, trusted).await;
        let failed = match sandbox_connection(s.proxy, &s.ca).await {
            Err(_) => true,
            Ok(mut conn) => {
                conn.ready().await.is_err()
                    || conn
                        .send_request(get("/echo").body(Full::default()).unwrap())
                        .await
                        .is_err()
            }
        };
        assert!(
            failed,
            "the sandbox got an answer through an unverified upstream ({cert_host}, trusted {trusted})"
        );
        let err = s.transfers.recv().await.unwrap().unwrap_err();
        assert!(err.contains("TLS with the upstream server"), "{err}");
        assert_eq!(
            s.upstream.requests.load(Ordering::SeqCst),
            0,
            "no request left"
        );
    }
}

#[tokio::test]
async fn a_request_naming_another_host_than_the_sni_is_refused_and_reported() {
    for req in [
        Request::builder()
            .uri("/echo")
            .header("host", "other.test.example"),
        Request::builder()
            .uri("https://other.test.example/echo")
            .header("host", HOST),
        Request::builder()
            .uri("/echo")
            .header("host", HOST)
            .header("host", HOST),
    ] {
        let mut s = setup(HOST, true).await;
        let mut conn = sandbox_connection(s.proxy, &s.ca).await.unwrap();
        let (resp, _) = send(&mut conn, req.body(Full::default()).unwrap()).await;
        assert_eq!(resp.status(), 421);
        drop(conn);
        let transfer = s.transfers.recv().await.unwrap().unwrap();
        assert!(transfer.misdirected.is_some(), "{transfer:?}");
        assert_eq!(
            s.upstream.requests.load(Ordering::SeqCst),
            0,
            "the misdirected request was forwarded"
        );
    }
    // The same connection's host passes, with or without a port.
    let mut s = setup(HOST, true).await;
    let mut conn = sandbox_connection(s.proxy, &s.ca).await.unwrap();
    let req = get(&format!("https://{HOST}:443/echo"))
        .body(Full::default())
        .unwrap();
    let (resp, _) = send(&mut conn, req).await;
    assert_eq!(resp.status(), 200);
    drop(conn);
    assert_eq!(s.transfers.recv().await.unwrap().unwrap().misdirected, None);
}
