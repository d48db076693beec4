//! One workload client: picks operations at random (create, streaming
//! exec, upload, pause, resume, snapshot, fork, kill) on the sandboxes the
//! ledger knows, and records each acknowledged one. Errors are expected
//! (the daemon dies under it; concurrent clients pause what another one
//! execs in) and only end the operation, except an exec that completed
//! with the wrong output, which is recorded as a violation of its own.
//!
//! An exec may run across a snapshot or fork of its sandbox: its stream
//! re-attaches to the process after the checkpoint and must still be
//! whole (`crates/server/src/service/exec.rs`). A pause or a
//! kill ends a running exec's stream with exit code -1 and an error, as
//! the exec contract says: such a stream is counted as interrupted.

use std::sync::Arc;
use std::time::{Duration, Instant};

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

    /// The answer's JSON when the call was acknowledged; otherwise the
    /// answer's status, or `no answer`.
    async fn acked(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let resp = send(req).await?;
        let text = resp.text().await.map_err(|_| NO_ANSWER.to_owned())?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

const NO_ANSWER: &str = "no answer";

/// The answer when it is a 2xx; otherwise its status, or `no answer`.
async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    let resp = req.send().await.map_err(|_| NO_ANSWER.to_owned())?;
    if !resp.status().is_success() {
        return Err(resp.status().as_u16().to_string());
    }
    Ok(resp)
}

/// Records the end of an operation of `kind` started at `t`.
async fn record<T>(
    ledger: &Mutex<Ledger>,
    kind: &'static str,
    t: Instant,
    answer: &Result<T, String>,
) {
    let mut l = ledger.lock().await;
    match answer {
        Ok(_) => l.ack(kind, t.elapsed()),
        Err(why) => l.miss(kind, why.clone()),
    }
}

/// Runs until aborted, or until the ledger says stop (after the operation
/// under way).
pub async fn client(t: Target, cfg: Config, mut rng: Rng, ledger: Arc<Mutex<Ledger>>) {
    loop {
        let (live, stop) = {
            let l = ledger.lock().await;
            (l.live(), l.stop)
        };
        if stop {
            return;
        }
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
    let started = Instant::now();
    let answer = t.acked(req).await;
    if let Ok(sb) = &answer
        && let Some(id) = sb["id"].as_str()
    {
        ledger
            .lock()
            .await
            .sandboxes
            .entry(id.to_owned())
            .or_default();
    }
    record(ledger, "create", started, &answer).await;
}

async fn exec(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t
        .req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/exec"))
        .json(&json!({"cmd": ["bash", "-c", "for i in 1 2 3; do echo line$i; sleep 0.05; done"]}));
    let started = Instant::now();
    let resp = match send(req).await {
        Ok(resp) => resp,
        Err(why) => return ledger.lock().await.miss("exec", why),
    };
    let Ok(body) = resp.text().await else {
        return ledger.lock().await.miss("exec", NO_ANSWER.to_owned());
    };
    let Ok(out) = crate::decode_exec(&body) else {
        return ledger.lock().await.miss("exec", "undecodable".to_owned());
    };
    // A stream cut by the daemon's death has no exit event; one that has
    // it is complete and must be right.
    if out.exit_code == Some(-1) {
        ledger
            .lock()
            .await
            .ack("exec_interrupted", started.elapsed());
    } else if out.exit_code.is_none() {
        ledger.lock().await.miss("exec", "cut".to_owned());
    } else {
        let mut l = ledger.lock().await;
        l.ack("exec", started.elapsed());
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
    let started = Instant::now();
    let answer = t.acked(req).await;
    if answer.is_ok()
        && let Some(tracked) = ledger.lock().await.sandboxes.get_mut(id)
    {
        tracked.files.insert(path, (sha, size as u64));
    }
    record(ledger, "upload", started, &answer).await;
}

async fn pause(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/pause"));
    let started = Instant::now();
    let answer = t.acked(req).await;
    record(ledger, "pause", started, &answer).await;
}

async fn resume(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/resume"));
    let started = Instant::now();
    let answer = t.acked(req).await;
    record(ledger, "resume", started, &answer).await;
}

async fn snapshot(t: &Target, id: &str, rng: &mut Rng, ledger: &Mutex<Ledger>) {
    let name = format!("s{:x}", rng.next_u64());
    let req = t
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{id}/snapshots"),
        )
        .json(&json!({ "name": name }));
    let started = Instant::now();
    let answer = t.acked(req).await;
    if let Ok(snap) = &answer
        && let Some(snap_id) = snap["id"].as_str()
        && let Some(tracked) = ledger.lock().await.sandboxes.get_mut(id)
    {
        tracked.snapshots.insert(snap_id.to_owned());
    }
    record(ledger, "snapshot", started, &answer).await;
}

async fn fork(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    // Uploads acknowledged before the fork was asked for are in its branch.
    let inherited = match ledger.lock().await.sandboxes.get(id) {
        Some(tracked) => tracked.files.clone(),
        None => return,
    };
    let req = t
        .req(reqwest::Method::POST, &format!("/v1/sandboxes/{id}/fork"))
        .json(&json!({"count": 1}));
    let started = Instant::now();
    let answer = t.acked(req).await;
    record(ledger, "fork", started, &answer).await;
    let Ok(answer) = answer else {
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
}

async fn kill(t: &Target, id: &str, ledger: &Mutex<Ledger>) {
    let req = t.req(reqwest::Method::DELETE, &format!("/v1/sandboxes/{id}"));
    let started = Instant::now();
    let answer = send(req).await;
    if answer.is_ok()
        && let Some(tracked) = ledger.lock().await.sandboxes.get_mut(id)
    {
        tracked.gone = true;
    }
    record(ledger, "kill", started, &answer).await;
}
