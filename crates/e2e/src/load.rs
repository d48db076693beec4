//! A burst of concurrent creates against a real daemon, with `/v1/health`
//! polled all the while: what the load test asserts on and the load
//! benchmark reports (`warren-bench load`).
//!
//! Every create is sent at once on its own connection and classified by
//! its answer: created (201; the caller then runs `true` in it, as a user
//! would, and times that too), refused with a retry hint (429 or 503 with
//! a `Retry-After` header and `retry_after_s` in the body), or anything
//! else (another status, a transport error, or no answer within
//! [`CALL_BOUND`]), which the callers count as a failure.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Daemon;

/// Longest any call of a burst may take before it counts as hung.
pub const CALL_BOUND: Duration = Duration::from_secs(90);
/// Longest a health call may take before it counts as unanswered.
pub const HEALTH_BOUND: Duration = Duration::from_secs(10);
/// How often health is asked during a burst.
const HEALTH_EVERY: Duration = Duration::from_millis(100);

/// How one create ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created {
        id: String,
        took: Duration,
        /// Create → first exec of `true` done, or why that exec failed.
        ready: Result<Duration, String>,
    },
    /// 429 or 503 with a retry hint in the header and the body.
    Refused {
        status: u16,
        code: String,
        retry_after_s: u32,
        took: Duration,
    },
    /// Anything else: the reason, for the report.
    Failed { reason: String, took: Duration },
}

impl Outcome {
    pub fn took(&self) -> Duration {
        match self {
            Self::Created { took, .. } | Self::Refused { took, .. } | Self::Failed { took, .. } => {
                *took
            }
        }
    }
}

/// What a burst saw.
#[derive(Debug, Clone, Default)]
pub struct Burst {
    pub outcomes: Vec<Outcome>,
    /// Latency of every health call answered 200 during the burst.
    pub health: Vec<Duration>,
    /// Health calls that failed or answered otherwise, with why.
    pub health_failures: Vec<String>,
    pub elapsed: Duration,
}

impl Burst {
    /// Id, create time and ready time (or why its first exec failed) of
    /// every sandbox created.
    pub fn created(&self) -> Vec<(String, Duration, Result<Duration, String>)> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Created { id, took, ready } => Some((id.clone(), *took, ready.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn refused(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Refused { .. }))
            .collect()
    }

    pub fn failed(&self) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed { .. }))
            .collect()
    }
}

/// Sends `n` creates with `body` at once to `d` and waits for all of them,
/// polling health meanwhile.
pub async fn burst(d: &Daemon, n: usize, body: &Value) -> Burst {
    let http = reqwest::Client::builder()
        .timeout(CALL_BOUND)
        .build()
        .expect("http client");
    let started = Instant::now();
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let health = tokio::spawn(poll_health(http.clone(), d.url.clone(), done_rx));
    let creates: Vec<_> = (0..n)
        .map(|_| {
            let (http, url, key) = (http.clone(), d.url.clone(), d.key.clone());
            let body = body.clone();
            tokio::spawn(async move {
                let t = Instant::now();
                let answer = http
                    .post(format!("{url}/v1/sandboxes"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                let mut outcome = classify(answer, t).await;
                if let Outcome::Created { id, ready, .. } = &mut outcome {
                    *ready = first_exec(&http, &url, &key, id)
                        .await
                        .map(|()| t.elapsed());
                }
                outcome
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(n);
    for c in creates {
        outcomes.push(c.await.unwrap_or_else(|e| Outcome::Failed {
            reason: format!("the caller panicked: {e}"),
            took: Duration::ZERO,
        }));
    }
    let elapsed = started.elapsed();
    let _ = done_tx.send(true);
    let (health, health_failures) = health.await.unwrap_or_default();
    Burst {
        outcomes,
        health,
        health_failures,
        elapsed,
    }
}

async fn classify(answer: reqwest::Result<reqwest::Response>, t: Instant) -> Outcome {
    let resp = match answer {
        Ok(resp) => resp,
        Err(e) => {
            return Outcome::Failed {
                reason: format!("no answer: {e}"),
                took: t.elapsed(),
            };
        }
    };
    let status = resp.status().as_u16();
    let header = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse::<u32>().ok());
    let text = resp.text().await.unwrap_or_default();
    let took = t.elapsed();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status == 201
        && let Some(id) = json["id"].as_str()
    {
        return Outcome::Created {
            id: id.to_owned(),
            took,
            ready: Err("not tried".to_owned()),
        };
    }
    let body_hint = json["retry_after_s"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok());
    match (status, header, body_hint) {
        (429 | 503, Some(h), Some(b)) if h == b && h >= 1 => Outcome::Refused {
            status,
            code: json["code"].as_str().unwrap_or_default().to_owned(),
            retry_after_s: h,
            took,
        },
        _ => Outcome::Failed {
            reason: format!("{status} (Retry-After {header:?}): {text}"),
            took,
        },
    }
}

/// Runs `true` in sandbox `id`: `Ok` when it exited 0.
async fn first_exec(http: &reqwest::Client, url: &str, key: &str, id: &str) -> Result<(), String> {
    let resp = http
        .post(format!("{url}/v1/sandboxes/{id}/exec"))
        .bearer_auth(key)
        .json(&serde_json::json!({"cmd": ["true"]}))
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| format!("cut: {e}"))?;
    match crate::decode_exec(&body) {
        Ok(out) if status.is_success() && out.exit_code == Some(0) => Ok(()),
        _ => Err(format!("{status}: {body}")),
    }
}

/// Health latencies (200s) and failures until `done` turns true.
async fn poll_health(
    http: reqwest::Client,
    url: String,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> (Vec<Duration>, Vec<String>) {
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    while !*done.borrow() {
        let t = Instant::now();
        let call = http
            .get(format!("{url}/v1/health"))
            .timeout(HEALTH_BOUND)
            .send();
        match call.await {
            Ok(r) if r.status().is_success() => ok.push(t.elapsed()),
            Ok(r) => failed.push(format!("health answered {}", r.status())),
            Err(e) => failed.push(format!("health did not answer: {e}")),
        }
        let _ = tokio::time::timeout(HEALTH_EVERY, done.changed()).await;
    }
    (ok, failed)
}

/// Lets the default team hold `sandboxes` sandboxes of up to 1 vCPU and
/// 512 MiB each (the default quota holds 32 vCPUs).
pub async fn raise_quota(d: &Daemon, sandboxes: usize) -> anyhow::Result<()> {
    let resp = d
        .put("/v1/teams/default/quota")
        .json(&serde_json::json!({
            "max_sandboxes": sandboxes,
            "max_vcpus": sandboxes,
            "max_memory_mb": sandboxes * 512,
        }))
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "raising the quota failed: {}",
        resp.text().await?
    );
    Ok(())
}
