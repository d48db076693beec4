//! A stand-in for the internet, on this machine only: a network namespace
//! with a veth to the host, addresses in 198.18.0.0/15 (the benchmarking
//! range, public by `is_private`), real HTTP (port 80) and HTTPS (port 443,
//! a certificate for every test name from a test CA made with openssl,
//! [`Internet::ca_cert`]) servers answering under every address with
//! `host=<Host header>` (and `authorization-sha256=<hex>` of an
//! `Authorization` header, never the header itself), `GET /bytes/N` with
//! N bytes, and `POST` of any body answered with `received=<bytes>`; plus
//! an upstream DNS server on the host end of the veth that answers the
//! test names and records every query it sees.
//!
//! Each fixture takes its own /24 (198.18.N.0/24, N from the process id
//! and a counter), so parallel test processes do not collide. The
//! namespace, veth and server processes go when the fixture is dropped,
//! also when a test fails.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use tempfile::TempDir;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The HTTP/HTTPS server run inside the namespace.
const SERVER: &str = r#"
import hashlib, http.server, socketserver, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/bytes/"):
            n = int(self.path[7:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        body = "host=%s\n" % self.headers.get("Host", "")
        auth = self.headers.get("Authorization")
        if auth is not None:
            body += "authorization-sha256=%s\n" % hashlib.sha256(auth.encode()).hexdigest()
        body = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        while n > 0:
            k = len(self.rfile.read(min(n, 65536)))
            if k == 0:
                break
            n -= k
        body = ("received=%d\n" % (int(self.headers.get("Content-Length", "0")) - n)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S(("0.0.0.0", 80), H)
tls = S(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
print("ready", flush=True)
tls.serve_forever()
"#;

/// The test internet. See the module docs.
pub struct Internet {
    netns: String,
    host_veth: String,
    /// The host end (198.18.N.1), where the upstream DNS server listens.
    pub host_ip: Ipv4Addr,
    /// The upstream DNS server, for `warren serve --dns-upstream`.
    pub dns: SocketAddr,
    /// Test name → the address it resolves to (all served by the servers).
    names: HashMap<String, Ipv4Addr>,
    /// The test CA that signed the HTTPS server's certificate (PEM), for
    /// `warren serve --upstream-ca`.
    pub ca_cert: std::path::PathBuf,
    queries: Arc<Mutex<Vec<(String, RecordType)>>>,
    server: Option<Child>,
    dns_task: tokio::task::JoinHandle<()>,
    _dir: TempDir,
    /// Keeps the network this one's alone (see `crate::slot`).
    _slot: std::fs::File,
}

fn run(cmd: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Internet {
    /// Sets the namespace up with addresses .2 to .9 of its /24 and the
    /// given names (each mapped to one of those addresses).
    pub async fn start(names: &[(&str, u8)]) -> anyhow::Result<Self> {
        // One of 250 networks (198.18.2.0/24 to 198.18.251.0/24), held
        // while this lives: another test's is never taken over.
        let start = std::process::id() * 4 + NEXT.fetch_add(1, Ordering::Relaxed);
        let (slot, slot_lock) =
            crate::slot::claim("inet", 250, start)?.context("every test internet is in use")?;
        let n = slot + 2;
        let netns = format!("warren-inet-{n}");
        let host_veth = format!("wi{n}");
        let host_ip = Ipv4Addr::new(198, 18, n as u8, 1);
        let dir = tempfile::tempdir()?;
        // A leftover of a crashed test that held the slot goes first.
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &host_veth])
            .output();
        let mut me = Self {
            netns: netns.clone(),
            host_veth: host_veth.clone(),
            host_ip,
            dns: SocketAddr::from((host_ip, 53)),
            names: names
                .iter()
                .map(|(name, last)| (name.to_string(), Ipv4Addr::new(198, 18, n as u8, *last)))
                .collect(),
            ca_cert: dir.path().join("ca.pem"),
            queries: Arc::default(),
            server: None,
            dns_task: tokio::spawn(async {}),
            _dir: dir,
            _slot: slot_lock,
        };
        run("ip", &["netns", "add", &netns])?;
        run(
            "ip",
            &[
                "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ],
        )?;
        run(
            "ip",
            &["addr", "add", &format!("{host_ip}/24"), "dev", &host_veth],
        )?;
        run("ip", &["link", "set", &host_veth, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", netns.as_str()];
            all.extend_from_slice(args);
            run("ip", &all)
        };
        inside(&["ip", "link", "set", "lo", "up"])?;
        for last in 2..=9 {
            inside(&[
                "ip",
                "addr",
                "add",
                &format!("198.18.{n}.{last}/24"),
                "dev",
                "eth0",
            ])?;
        }
        inside(&["ip", "link", "set", "eth0", "up"])?;
        inside(&["ip", "route", "add", "default", "via", &host_ip.to_string()])?;

        let (cert, key) = me.certificates()?;
        let script = me._dir.path().join("server.py");
        std::fs::write(&script, SERVER)?;
        let mut server = Command::new("ip")
            .args(["netns", "exec", &netns, "python3"])
            .arg(&script)
            .arg(&cert)
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the test servers")?;
        let mut out = server.stdout.take().context("server stdout")?;
        me.server = Some(server);
        let ready = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut buf = [0u8; 6];
            out.read_exact(&mut buf).map(|_| buf == *b"ready\n")
        });
        if !tokio::time::timeout(Duration::from_secs(20), ready).await??? {
            bail!("the test servers did not start");
        }
        me.dns_task = me.serve_dns().await?;
        Ok(me)
    }

    /// Makes the test CA and, signed by it, the servers' certificate for
    /// every test name; returns the certificate and key paths.
    fn certificates(&self) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
        let dir = self._dir.path();
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        run(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=warren-test-ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &path("ca.key"),
                "-out",
                &path("ca.pem"),
            ],
        )?;
        run(
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=warren-test",
                "-keyout",
                &path("key.pem"),
                "-out",
                &path("server.csr"),
            ],
        )?;
        let mut names: Vec<&String> = self.names.keys().collect();
        names.sort();
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        std::fs::write(
            dir.join("server.ext"),
            format!(
                "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                sans.join(",")
            ),
        )?;
        run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &path("server.csr"),
                "-CA",
                &path("ca.pem"),
                "-CAkey",
                &path("ca.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &path("server.ext"),
                "-out",
                &path("cert.pem"),
            ],
        )?;
        Ok((dir.join("cert.pem"), dir.join("key.pem")))
    }

    /// The address `name` resolves to.
    pub fn addr(&self, name: &str) -> Ipv4Addr {
        self.names[name]
    }

    /// Address `.last` of the namespace's /24 (served, but named by nothing).
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        let o = self.host_ip.octets();
        Ipv4Addr::new(o[0], o[1], o[2], last)
    }

    /// Every (name, type) the upstream DNS server was asked.
    pub fn queries(&self) -> Vec<(String, RecordType)> {
        self.queries.lock().unwrap().clone()
    }

    async fn serve_dns(&self) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let socket = tokio::net::UdpSocket::bind(self.dns).await?;
        let names = self.names.clone();
        let queries = self.queries.clone();
        Ok(tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let Some(query) = q.queries.first().cloned() else {
                    continue;
                };
                let name = query.name().to_ascii().trim_end_matches('.').to_lowercase();
                queries
                    .lock()
                    .unwrap()
                    .push((name.clone(), query.query_type()));
                let mut r = Message::response(q.metadata.id, OpCode::Query);
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                r.metadata.recursion_available = true;
                r.queries = q.queries.clone();
                match (names.get(&name), query.query_type()) {
                    (_, RecordType::TXT) => {
                        let txt = TXT::new(vec!["exfiltrated".into()]);
                        r.add_answer(Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::TXT(txt),
                        ));
                    }
                    (Some(ip), RecordType::A) => {
                        r.add_answer(Record::from_rdata(
                            query.name().clone(),
                            60,
                            RData::A(A(*ip)),
                        ));
                    }
                    (Some(_), _) => {}
                    (None, _) => r.metadata.response_code = ResponseCode::NXDomain,
                }
                if let Ok(bytes) = r.to_vec() {
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        }))
    }

    /// Waits until the HTTP server answers from the host (it starts in the
    /// background).
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from((self.ip(2), 80));
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                bail!("the test HTTP server at {addr} does not answer");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        self.dns_task.abort();
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}
