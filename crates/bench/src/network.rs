//! Egress figures: a 100 MB download, 200 small HTTPS requests (a new
//! connection each) and DNS answers, from inside a sandbox whose policy
//! allows the test name (every TCP connection through the egress proxy,
//! every query through the resolver), against the same clients in a plain
//! network namespace routed by the host (no gVisor, no proxy, queries
//! straight to the upstream). Both sides talk to the test internet of the
//! e2e suite (`warren_e2e::internet`) on this machine, in the same run.
//!
//! The baseline has no gVisor netstack either, so the ratios bound the
//! proxy's cost from above: they include what gVisor itself costs.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use warren_api_types::Sandbox;
use warren_e2e::Daemon;
use warren_e2e::internet::Internet;

use crate::stats::{Row, ms, percentile};

const NAME: &str = "bench.example.test";

/// 200 (or N) HTTPS GETs, each on a new connection; prints the latencies
/// in ms as JSON. Arguments: host name, address ('' resolves the name), N.
const HTTPS_REQUESTS: &str = r#"
import json, socket, ssl, sys, time
host, ip, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ip = ip or socket.gethostbyname(host)
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = []
for _ in range(n):
    t = time.perf_counter()
    raw = socket.create_connection((ip, 443))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s = ctx.wrap_socket(raw, server_hostname=host)
    s.sendall(b"GET / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    out.append((time.perf_counter() - t) * 1000)
print(json.dumps(out))
"#;

/// N A queries for a name to a server ('' = the configured nameserver);
/// prints the latencies in ms as JSON.
const DNS_QUERIES: &str = r#"
import json, random, socket, struct, sys, time
name, server, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not server:
    server = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
out = []
for _ in range(n):
    qid = random.randint(0, 65535)
    pkt = struct.pack('>HHHHHH', qid, 0x0100, 1, 0, 0, 0)
    pkt += b''.join(bytes([len(p)]) + p.encode() for p in name.split('.')) + b'\0'
    pkt += struct.pack('>HH', 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    t = time.perf_counter()
    s.sendto(pkt, (server, 53))
    r = s.recv(4096)
    out.append((time.perf_counter() - t) * 1000)
    if r[3] & 15:
        sys.exit('rcode %d' % (r[3] & 15))
print(json.dumps(out))
"#;

/// Exempts the sandbox's TCP to `addr` from the proxy redirect while
/// the returned guard lives.
async fn bypass_proxy(d: &Daemon, id: &str, addr: &str) -> anyhow::Result<Bypass> {
    let own_addr = "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.connect(('192.0.2.1',9));print(s.getsockname()[0])";
    let source = in_sandbox(d, id, &["python3", "-c", own_addr]).await?;
    let state = d.data_dir().join("runtime").canonicalize()?;
    let pool: warren_net::AddressPool = d.cidr.parse()?;
    let table = warren_net::Firewall::new(&state, pool).table().to_owned();
    let rule = format!(
        "ip saddr {} ip daddr {addr} tcp dport {{ 80, 443 }} accept",
        source.trim()
    );
    let out = Command::new("nft")
        .args(["insert", "rule", "inet", &table, "prerouting"])
        .args(rule.split_whitespace())
        .output()?;
    if !out.status.success() {
        bail!("nft insert: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(Bypass { table })
}

/// Removes the bypass rule again.
struct Bypass {
    table: String,
}

impl Drop for Bypass {
    fn drop(&mut self) {
        let listing = Command::new("nft")
            .args(["-a", "list", "chain", "inet", &self.table, "prerouting"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let handle = listing
            .lines()
            .find(|l| l.contains("dport { 80, 443 } accept"))
            .and_then(|l| l.rsplit("handle ").next())
            .map(|h| h.trim().to_owned());
        if let Some(h) = handle {
            let _ = Command::new("nft")
                .args([
                    "delete",
                    "rule",
                    "inet",
                    &self.table,
                    "prerouting",
                    "handle",
                    &h,
                ])
                .output();
        }
    }
}

/// A namespace routed by the host to the test internet, with nothing of
/// Warren's on the way; removed on drop.
struct Plain {
    netns: String,
    veth: String,
}

impl Plain {
    fn start() -> anyhow::Result<Self> {
        let id = std::process::id() % 10_000;
        let me = Self {
            netns: format!("warren-bench-plain-{id}"),
            veth: format!("wbp{id}"),
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &me.netns])
            .output();
        let _ = Command::new("ip").args(["link", "del", &me.veth]).output();
        let steps: [&[&str]; 8] = [
            &["netns", "add", &me.netns],
            &[
                "link", "add", &me.veth, "type", "veth", "peer", "name", "eth0", "netns", &me.netns,
            ],
            &["addr", "add", "198.19.250.1/30", "dev", &me.veth],
            &["link", "set", &me.veth, "up"],
            &["-n", &me.netns, "link", "set", "lo", "up"],
            &[
                "-n",
                &me.netns,
                "addr",
                "add",
                "198.19.250.2/30",
                "dev",
                "eth0",
            ],
            &["-n", &me.netns, "link", "set", "eth0", "up"],
            &[
                "-n",
                &me.netns,
                "route",
                "add",
                "default",
                "via",
                "198.19.250.1",
            ],
        ];
        for args in steps {
            let out = Command::new("ip").args(args).output()?;
            if !out.status.success() {
                bail!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(me)
    }

    fn run(&self, argv: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(argv)
            .output()?;
        if !out.status.success() {
            bail!(
                "{}: {}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

async fn in_sandbox(d: &Daemon, id: &str, argv: &[&str]) -> anyhow::Result<String> {
    let out = d.exec(id, json!({"cmd": argv})).await;
    if out.exit_code != Some(0) {
        bail!("{}: {}", argv.join(" "), out.stderr_str());
    }
    Ok(out.stdout_str())
}

fn latencies(json_text: &str) -> anyhow::Result<Vec<Duration>> {
    let ms: Vec<f64> = serde_json::from_str(json_text.trim())
        .with_context(|| format!("latencies: {json_text}"))?;
    Ok(ms
        .into_iter()
        .map(|m| Duration::from_secs_f64(m / 1000.0))
        .collect())
}

/// The middle value (the upper one of an even count).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// `size time` from curl's `-w` into MB/s.
fn throughput(curl_out: &str) -> anyhow::Result<f64> {
    let mut parts = curl_out.split_whitespace();
    let bytes: f64 = parts.next().context("size")?.parse()?;
    let secs: f64 = parts.next().context("time")?.parse()?;
    if bytes < 1.0 {
        bail!("nothing downloaded: {curl_out}");
    }
    Ok(bytes / secs / 1e6)
}

pub async fn run(
    download_mb: u64,
    downloads: usize,
    requests: usize,
    queries: usize,
) -> anyhow::Result<Vec<Row>> {
    let net = Internet::start(&[(NAME, 2)]).await?;
    net.wait_ready().await?;
    let upstream = net.dns.to_string();
    let d = Daemon::start_with(&["--dns-upstream", &upstream]).await?;
    d.ensure_template("base").await?;
    let resp = d
        .post("/v1/sandboxes")
        .json(&json!({"timeout_s": 3600, "memory_mb": 1024, "network": {"allow": [NAME]}}))
        .send()
        .await?;
    if resp.status() != 201 {
        bail!("create: {}", resp.text().await?);
    }
    let sb: Sandbox = resp.json().await?;
    let plain = Plain::start()?;
    let addr = net.addr(NAME).to_string();
    let bytes = download_mb * 1_000_000;
    let fmt = "%{size_download} %{time_total}";
    let n = requests.to_string();
    let q = queries.to_string();
    let upstream_ip = net.host_ip.to_string();

    // Warm both paths up (first DNS answer, page cache of the server).
    let url = format!("http://{NAME}/bytes/{bytes}");
    in_sandbox(
        &d,
        &sb.id,
        &["curl", "-s", "-o", "/dev/null", &format!("http://{NAME}/")],
    )
    .await?;
    let plain_url = format!("http://{addr}/bytes/{bytes}");
    plain.run(&["curl", "-s", "-o", "/dev/null", &format!("http://{addr}/")])?;

    let sandbox_download = || async {
        throughput(
            &in_sandbox(
                &d,
                &sb.id,
                &["curl", "-s", "-o", "/dev/null", "-w", fmt, &url],
            )
            .await?,
        )
    };
    let sandbox_https = || async {
        latencies(&in_sandbox(&d, &sb.id, &["python3", "-c", HTTPS_REQUESTS, NAME, "", &n]).await?)
    };
    let mut proxied_https = sandbox_https().await?;
    let mut plain_https =
        latencies(&plain.run(&["python3", "-c", HTTPS_REQUESTS, NAME, &addr, &n])?)?;
    // The same sandbox with its connections to the server exempted from
    // the redirect: forwarded by nftables (the resolved-address set
    // allows them), no proxy.
    let bypass = bypass_proxy(&d, &sb.id, &addr).await?;
    let mut direct_https = sandbox_https().await?;
    drop(bypass);
    // Downloads alternate between the three paths, so a drift in the
    // machine's load reaches all of them alike; medians are compared.
    let (mut proxied, mut direct, mut plain_mbs) = (vec![], vec![], vec![]);
    for _ in 0..downloads.max(1) {
        proxied.push(sandbox_download().await?);
        let bypass = bypass_proxy(&d, &sb.id, &addr).await?;
        direct.push(sandbox_download().await?);
        drop(bypass);
        plain_mbs.push(throughput(&plain.run(&[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            fmt,
            &plain_url,
        ])?)?);
    }
    let (proxied, direct, plain_mbs) = (median(proxied), median(direct), median(plain_mbs));

    let mut rows = vec![
        Row::new(
            format!("{download_mb} MB download (median of {downloads}), vs direct in the sandbox"),
            "MB/s",
            proxied,
            Some(direct),
        ),
        Row::new(
            format!("{download_mb} MB download (median of {downloads}), vs a plain namespace"),
            "MB/s",
            proxied,
            Some(plain_mbs),
        ),
    ];
    let mean = |s: &[Duration]| ms(s.iter().sum::<Duration>() / s.len().max(1) as u32);
    for (against, base) in [
        ("direct in the sandbox", &mut direct_https),
        ("a plain namespace", &mut plain_https),
    ] {
        rows.push(Row::new(
            format!("{requests} HTTPS requests (new connection each) mean, vs {against}"),
            "ms",
            mean(&proxied_https),
            Some(mean(base)),
        ));
        for p in [50.0, 99.0] {
            rows.push(Row::new(
                format!("{requests} HTTPS requests (new connection each) p{p}, vs {against}"),
                "ms",
                ms(percentile(&mut proxied_https, p)),
                Some(ms(percentile(base, p))),
            ));
        }
    }

    let mut resolved =
        latencies(&in_sandbox(&d, &sb.id, &["python3", "-c", DNS_QUERIES, NAME, "", &q]).await?)?;
    let mut upstream_only =
        latencies(&plain.run(&["python3", "-c", DNS_QUERIES, NAME, &upstream_ip, &q])?)?;
    for p in [50.0, 99.0] {
        rows.push(Row::new(
            format!("DNS answer (allowed name), p{p}"),
            "ms",
            ms(percentile(&mut resolved, p)),
            Some(ms(percentile(&mut upstream_only, p))),
        ));
    }
    let _ = d.delete(&format!("/v1/sandboxes/{}", sb.id)).send().await;
    Ok(rows)
}
