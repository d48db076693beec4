//! One workload client: picks operations at random (create, streaming
//! exec, upload, pause, resume, snapshot, fork, kill) on the sandboxes the
//! ledger knows, and records each acknowledged one. Errors are expected
//! (the daemon dies under it; concurrent clients pause what another one
//! execs in) and only end the operation, except an exec that completed
//! with the wrong output, which is recorded as a violation of its own.
//!
//! Not exercised: an exec running across a snapshot or fork of its
//! sandbox. The checkpoint resets the agent's connections and the stream
//! re-attaches to the process after it; output written in between is not
//! delivered (a documented limit, `crates/server/src/service/exec.rs`, and
//! an open finding in docs/reliability.md). Execs hold their sandbox's
//! checkpoint lock shared, snapshots and forks exclusively. A pause or a
//! kill ends a running exec's stream with exit code -1 and an error, as
//! the exec contract says: such a stream is counted as interrupted.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::Mutex;

use super::{Config, Ledger, Rng};
use crate::Daemon;

/// Where the clients send their calls (the daemon itself is owned by the
/// driver, which kills it).
#[derive(Clone)]
pub struct Target {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Target {
    pub fn of(d: &Daemon) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            url: d.url.clone(),
            key: d.key.clone(),
        }
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key)
    }

    /// The answer's JSON when the call was acknowledged.
    async fn acked(&self, req: reqwest::RequestBuilder) -> Option<Value> {
        let resp = req.send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let text = resp.text().await.ok()?;
        Some(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Runs until aborted.
pub async fn client(t: Target, cfg: Config, mut rng: Rng, ledger: Arc<Mutex<Ledger>>) {
    loop {
        let live = ledger.lock().await.live();
        let pick = if live.is_empty() { 0 } else { rng.below(100) };
        let id = (!live.is_empty()).then(|| live[rng.below(live.len())].clone());
        match (pick, id) {
            (0..15, _) | (_, None) => {
                if live.len() >= cfg.max_live {
                    if let Some(id) = live.first() {
                        kill(&t, id, &ledger).await;
                    }
                } else {
                    create(&t, &cfg, &ledger).await;
                }
            }
            (15..40, Some(id)) => exec(&t, &id, &ledger).await,
            (40..62, Some(id)) => upload(&t, &id, &mut rng, &ledger).await,
            (62..72, Some(id)) => pause(&t, &id, &ledger).await,
            (72..82, Some(id)) => resume(&t, &id, &ledger).await,
            (82..90, Some(id)) => snapshot(&t, &id, &mut rng, &ledger).await,
            (90..95, Some(id)) if live.len() < cfg.max_live => fork(&t, &id, &ledger).await,
            (_, Some(id)) => kill(&t, &id, &ledger).await,
        }
        tokio::time::sleep(Duration::from_millis(rng.below(100) as u64)).await;
    }
}

async fn create(t: &Target, cfg: &Config, ledger: &Mutex<Ledger>) {
    let req = t
        .req(reqwest::Method::POST, "/v1/sandboxes")
        .json(&cfg.sandbox);
    if let Some(sb) = t.acked(req).await
        && let Some(id) = sb["id"].as_str()
    {
        let mut l = ledger.lock().await;
        l.sandboxes.entry(id.to_owned()).or_default();
        l.ack("create");
    }
}

async fn exec(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let lock = ledger.lock().await.checkpoint_lock(id);
    let _shared = lock.read().await;
    let req = t
        .req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["bash", "-c", "for i in 1 2 3; do echo line$i; sleep 0.05; done"]}));
    let Ok(resp) = req.send().await else { return };
    if !resp.status().is_success() {
        return;
    }
    let Ok(body) = resp.text().await else { return };
    let Ok(out) = crate::decode_exec(&body) else {
        return;
    };
    // A stream cut by the daemon's death has no exit event; one that has
    // it is complete and must be right.
    if out.exit_code == Some(-1) {
        ledger.lock().await.ack("exec_interrupted");
    } else if out.exit_code.is_some() {
        let mut l = ledger.lock().await;
        l.ack("exec");
        if out.exit_code != Some(0) || out.stdout_str() != "line1\nline2\nline3\n" {
            l.wrong_execs.push(format!(
                "{id}: exit {:?}, stdout {:?}, stderr {:?}",
                out.exit_code,
                out.stdout_str(),
                out.stderr_str()
            ));
        }
    }
}

async fn upload(t: &Target, id: &str, rng: &mut Rng, ledger: &Mutex<Ledger>) {
    let path = ledger.lock().await.new_path();
    let size = 1 + rng.below(256 * 1024);
    let data = rng.bytes(size);
    let sha = hex::encode(sha2::Sha256::digest(&data));
    let req = t
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path={path}"),
        )
        .body(data);
    if t.acked(req).await.is_some() {
        let mut l = ledger.lock().await;
        if let Some(tracked) = l.sandboxes.get_mut(id) {
            tracked.files.insert(path, (sha, size as u64));
        }
        l.ack("upload");
    }
}

async fn pause(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/pause"));
    if t.acked(req).await.is_some() {
        ledger.lock().await.ack("pause");
    }
}

async fn resume(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/resume"));
    if t.acked(req).await.is_some() {
        ledger.lock().await.ack("resume");
    }
}

async fn snapshot(t: &Target, id: &str, rng: &mut Rng, ledger: &Mutex<Ledger>) {
    let lock = ledger.lock().await.checkpoint_lock(id);
    let _exclusive = lock.write().await;
    let name = format!("s{:x}", rng.next_u64());
    let req = t
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/snapshots"),
        )
        .json(&json!({ "name": name }));
    if let Some(snap) = t.acked(req).await
        && let Some(snap_id) = snap["id"].as_str()
    {
        let mut l = ledger.lock().await;
        if let Some(tracked) = l.sandboxes.get_mut(id) {
            tracked.snapshots.insert(snap_id.to_owned());
        }
        l.ack("snapshot");
    }
}

async fn fork(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let lock = ledger.lock().await.checkpoint_lock(id);
    let _exclusive = lock.write().await;
    // Uploads acknowledged before the fork was asked for are in its branch.
    let inherited = match ledger.lock().await.sandboxes.get(id) {
        Some(tracked) => tracked.files.clone(),
        None => return,
    };
    let req = t
        .req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/fork"))
        .json(&json!({"count": 1}));
    let Some(answer) = t.acked(req).await else {
        return;
    };
    let mut l = ledger.lock().await;
    if let Some(snap_id) = answer["snapshot"].as_str()
        && let Some(tracked) = l.sandboxes.get_mut(id)
    {
        tracked.snapshots.insert(snap_id.to_owned());
    }
    for branch in answer["sandboxes"].as_array().into_iter().flatten() {
        if let Some(branch) = branch["id"].as_str() {
            l.sandboxes.entry(branch.to_owned()).or_default().files = inherited.clone();
        }
    }
    l.ack("fork");
}

async fn kill(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::DELETE, &format!("/v1/sandboxes/{id}"));
    let Ok(resp) = req.send().await else { return };
    if resp.status().is_success() {
        let mut l = ledger.lock().await;
        if let Some(tracked) = l.sandboxes.get_mut(id) {
            tracked.gone = true;
        }
        l.ack("kill");
    }
}
