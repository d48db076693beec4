//! What the integrity suite keeps in its sandbox, and what it expects back.
//!
//! - Files under [`ROOT`]: random bytes of random sizes (empty to 1 MiB)
//!   in nested directories, and symbolic links to a file and to a
//!   directory. The suite knows every byte ([`Expected`]).
//! - The state process (Python, port [`STATE_PORT`]): a 4 MiB buffer of
//!   random bytes and a counter, only in memory. `/inc` adds one to the
//!   counter and rewrites 64 bytes of the buffer from its own bytes and
//!   the counter; `/state` answers its pid, counter and the buffer's
//!   SHA-256. The rewrite is deterministic, so every copy of the process
//!   (a fork, a rollback) that reaches counter `n` from the same start
//!   holds the same buffer: one chain of hashes ([`Chain`]) serves every
//!   branch.
//! - A file server (`python3 -m http.server`, port [`FILES_PORT`]) serving
//!   [`ROOT`], reached from the host through the daemon's port proxy.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::Deserialize;

use crate::Daemon;
use crate::chaos::Rng;

/// Where the files live inside the sandbox.
pub const ROOT: &str = "/home/user/integrity";
pub const STATE_PORT: u16 = 7000;
pub const FILES_PORT: u16 = 8080;

const STATE_SERVER: &str = r#"
import hashlib, http.server, json, os
buf = bytearray(os.urandom(4 << 20))
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        global n
        if self.path == "/inc":
            n += 1
            i = (n * 7919) % (len(buf) - 64)
            buf[i:i + 64] = hashlib.sha512(bytes(buf[i:i + 64]) + str(n).encode()).digest()
        elif self.path != "/state":
            self.send_response(404); self.end_headers(); return
        body = json.dumps({"pid": os.getpid(), "counter": n,
                           "sha256": hashlib.sha256(buf).hexdigest()}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("0.0.0.0", 7000), H).serve_forever()
"#;

/// What the state process answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessState {
    pub pid: u64,
    pub counter: u64,
    pub sha256: String,
}

/// The buffer's hash at each counter value, as first seen.
pub type Chain = BTreeMap<u64, String>;

/// One sandbox as the suite expects it.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Path under [`ROOT`] → bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Path under [`ROOT`] → link target.
    pub links: BTreeMap<String, String>,
    /// The state process's pid and counter.
    pub pid: u64,
    pub counter: u64,
}

impl Expected {
    /// `count` files of random sizes in nested directories (a few of
    /// 0.75–1 MiB, one empty) and two links.
    pub fn generate(rng: &mut Rng, count: usize) -> Self {
        let mut files = BTreeMap::new();
        for i in 0..count {
            let dir = match i % 5 {
                0 => String::new(),
                1 => "a/".to_owned(),
                2 => format!("a/b{}/", i % 3),
                3 => "c/d/e/".to_owned(),
                _ => format!("f{}/g/", i % 4),
            };
            let size = if i == 1 { 0 } else { random_size(rng, i) };
            files.insert(format!("{dir}file{i:03}.bin"), rng.bytes(size));
        }
        let links = BTreeMap::from([
            ("link-to-file".to_owned(), "a/file001.bin".to_owned()),
            ("c/link-to-dir".to_owned(), "d/e".to_owned()),
        ]);
        Self {
            files,
            links,
            ..Self::default()
        }
    }

    pub fn bytes(&self) -> u64 {
        self.files.values().map(|f| f.len() as u64).sum()
    }
}

/// Mostly small files, some large; every 50th one 0.75–1 MiB.
fn random_size(rng: &mut Rng, i: usize) -> usize {
    if i.is_multiple_of(50) {
        return 768 * 1024 + rng.below(256 * 1024);
    }
    match rng.below(100) {
        0..60 => rng.below(4096),
        60..90 => 4096 + rng.below(60 * 1024),
        90..97 => 64 * 1024 + rng.below(192 * 1024),
        _ => 256 * 1024 + rng.below(768 * 1024),
    }
}

/// Writes `expected`'s files and links into `id` and starts both servers;
/// fills in the state process's pid and counter, and the chain's start.
pub async fn populate(
    d: &Daemon,
    id: &str,
    expected: &mut Expected,
    chain: &mut Chain,
) -> anyhow::Result<()> {
    let dirs: std::collections::BTreeSet<_> = expected
        .files
        .keys()
        .filter_map(|p| p.rsplit_once('/').map(|(dir, _)| dir.to_owned()))
        .collect();
    let mkdir = dirs
        .iter()
        .map(|dir| format!("{ROOT}/{dir}"))
        .collect::<Vec<_>>()
        .join(" ");
    let out = d.sh(id, &format!("mkdir -p {ROOT} {mkdir}")).await;
    anyhow::ensure!(out.exit_code == Some(0), "mkdir: {}", out.stderr_str());
    let uploads = futures::stream::iter(expected.files.iter())
        .map(|(path, data)| upload(d, id, path, data.clone()))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    uploads.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    for (link, target) in &expected.links {
        set_link(d, id, link, target).await?;
    }
    let script = format!(
        "cat > /tmp/state.py <<'EOF'\n{STATE_SERVER}\nEOF\n\
         (python3 /tmp/state.py >/tmp/state.log 2>&1 &)\n\
         (cd {ROOT} && python3 -m http.server {FILES_PORT} --bind 0.0.0.0 >/tmp/files.log 2>&1 &)\n\
         for i in $(seq 100); do\n\
           curl -sf localhost:{STATE_PORT}/state >/dev/null && curl -sf localhost:{FILES_PORT}/ >/dev/null && exit 0\n\
           sleep 0.1\n\
         done\n\
         cat /tmp/state.log /tmp/files.log; exit 1"
    );
    let out = d.sh(id, &script).await;
    anyhow::ensure!(
        out.exit_code == Some(0),
        "servers did not start: {}",
        out.stdout_str()
    );
    let state = process_state(d, id, "state").await?;
    expected.pid = state.pid;
    expected.counter = state.counter;
    chain.insert(state.counter, state.sha256);
    Ok(())
}

/// Uploads `data` to `path` under [`ROOT`].
pub async fn upload(d: &Daemon, id: &str, path: &str, data: Vec<u8>) -> anyhow::Result<()> {
    let resp = d
        .put(&format!("/v1/sandboxes/{id}/files?path={ROOT}/{path}"))
        .body(data)
        .send()
        .await?;
    let status = resp.status();
    anyhow::ensure!(
        status.is_success(),
        "upload {path}: {status} {}",
        resp.text().await?
    );
    Ok(())
}

/// Points the link `link` under [`ROOT`] at `target`.
pub async fn set_link(d: &Daemon, id: &str, link: &str, target: &str) -> anyhow::Result<()> {
    let out = d.sh(id, &format!("ln -sfn {target} {ROOT}/{link}")).await;
    anyhow::ensure!(out.exit_code == Some(0), "ln: {}", out.stderr_str());
    Ok(())
}

/// Asks the state process for `/inc` or `/state`.
pub async fn process_state(d: &Daemon, id: &str, call: &str) -> anyhow::Result<ProcessState> {
    let out = d
        .sh(
            id,
            &format!("curl -sf --max-time 10 localhost:{STATE_PORT}/{call}"),
        )
        .await;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow::anyhow!(
            "/{call} of {id}: {e}: {} {}",
            out.stdout_str(),
            out.stderr_str()
        )
    })
}
