//! The check after every cycle: one exec hashes every file under
//! [`ROOT`], lists the links and asks the state process for its state;
//! the file server is asked for one file through the daemon's port proxy.
//! What differs from [`Expected`] is counted in files and bytes (a file
//! whose hash differs is downloaded and compared byte by byte).

use std::collections::BTreeMap;

use sha2::Digest;

use super::fixture::{Chain, Expected, FILES_PORT, ProcessState, ROOT, STATE_PORT};
use crate::Daemon;
use crate::chaos::Rng;

/// What one check found wrong.
#[derive(Debug, Default)]
pub struct Diff {
    /// Files missing, extra or with other bytes; links missing, extra or
    /// pointing elsewhere.
    pub entries: usize,
    /// Bytes that differ (a missing or extra file counts whole).
    pub bytes: u64,
    pub problems: Vec<String>,
}

impl Diff {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }
}

/// What the sandbox holds now.
struct Observed {
    files: BTreeMap<String, String>,
    links: BTreeMap<String, String>,
    state: Result<ProcessState, String>,
}

async fn observe(d: &Daemon, id: &str) -> anyhow::Result<Observed> {
    let script = format!(
        "cd {ROOT} || exit 1\n\
         find . -type f -print0 | sort -z | xargs -0 -r sha256sum | sed 's/^/F /'\n\
         find . -type l -printf 'L %P %l\\n'\n\
         printf 'S '; curl -sf --max-time 10 localhost:{STATE_PORT}/state; echo"
    );
    let out = d.sh(id, &script).await;
    anyhow::ensure!(
        out.exit_code == Some(0),
        "hashing the files of {id}: {} {}",
        out.stdout_str(),
        out.stderr_str()
    );
    let mut seen = Observed {
        files: BTreeMap::new(),
        links: BTreeMap::new(),
        state: Err("no answer".to_owned()),
    };
    for line in out.stdout_str().lines() {
        if let Some(rest) = line.strip_prefix("F ") {
            let (sha, path) = rest.split_once("  ").unwrap_or((rest, ""));
            let path = path.strip_prefix("./").unwrap_or(path);
            seen.files.insert(path.to_owned(), sha.to_owned());
        } else if let Some(rest) = line.strip_prefix("L ") {
            let (link, target) = rest.split_once(' ').unwrap_or((rest, ""));
            seen.links.insert(link.to_owned(), target.to_owned());
        } else if let Some(rest) = line.strip_prefix("S ") {
            seen.state = serde_json::from_str(rest).map_err(|e| format!("{e}: {rest:?}"));
        }
    }
    Ok(seen)
}

fn sha(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// Bytes by which `a` and `b` differ (position by position, plus the
/// length difference).
fn bytes_differing(a: &[u8], b: &[u8]) -> u64 {
    let common = a.iter().zip(b).filter(|(x, y)| x != y).count();
    (common + a.len().abs_diff(b.len())) as u64
}

async fn download(d: &Daemon, id: &str, path: &str) -> anyhow::Result<Vec<u8>> {
    let resp = d
        .get(&format!("/v1/sandboxes/{id}/files?path={ROOT}/{path}"))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "download {path}: {}",
        resp.status()
    );
    Ok(resp.bytes().await?.to_vec())
}

/// Compares `id` with `expected`; the state process must be at
/// `expected.counter` with the chain's hash for it.
pub async fn check(
    d: &Daemon,
    id: &str,
    expected: &Expected,
    chain: &Chain,
    rng: &mut Rng,
) -> anyhow::Result<Diff> {
    let seen = observe(d, id).await?;
    let mut diff = Diff::default();
    for (path, data) in &expected.files {
        match seen.files.get(path) {
            None => {
                diff.entries += 1;
                diff.bytes += data.len() as u64;
                diff.problem(format!("{path}: missing"));
            }
            Some(got) if *got != sha(data) => {
                let now = download(d, id, path).await.unwrap_or_default();
                let n = bytes_differing(data, &now);
                diff.entries += 1;
                diff.bytes += n;
                diff.problem(format!("{path}: {n} bytes differ"));
            }
            Some(_) => {}
        }
    }
    for path in seen.files.keys() {
        if !expected.files.contains_key(path) {
            let extra = download(d, id, path).await.unwrap_or_default();
            diff.entries += 1;
            diff.bytes += extra.len() as u64;
            diff.problem(format!("{path}: not expected ({} bytes)", extra.len()));
        }
    }
    if seen.links != expected.links {
        diff.entries += 1;
        diff.problem(format!(
            "links: expected {:?}, found {:?}",
            expected.links, seen.links
        ));
    }
    match &seen.state {
        Ok(state) => {
            let want = chain.get(&expected.counter);
            if state.pid != expected.pid
                || state.counter != expected.counter
                || Some(&state.sha256) != want
            {
                diff.problem(format!(
                    "process: expected pid {} counter {} sha256 {want:?}, found {state:?}",
                    expected.pid, expected.counter
                ));
            }
        }
        Err(e) => diff.problem(format!("process: {e}")),
    }
    if let Err(e) = served(d, id, expected, rng).await {
        diff.problem(format!("file server: {e:#}"));
    }
    Ok(diff)
}

/// Asks the file server for a random file through the port proxy.
async fn served(d: &Daemon, id: &str, expected: &Expected, rng: &mut Rng) -> anyhow::Result<()> {
    let Some((path, data)) = expected.files.iter().nth(rng.below(expected.files.len())) else {
        return Ok(());
    };
    let resp = d
        .get(&format!("/v1/sandboxes/{id}/ports/{FILES_PORT}/{path}"))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "{path}: {}", resp.status());
    let body = resp.bytes().await?;
    anyhow::ensure!(
        body.as_ref() == data.as_slice(),
        "{path}: {} bytes differ",
        bytes_differing(data, &body)
    );
    Ok(())
}
