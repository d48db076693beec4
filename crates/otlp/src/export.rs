//! The exporter: a bounded queue the layer fills, and a task that posts
//! what gathered every second (or every [`BATCH`] spans) to the
//! collector's `/v1/traces`.
//!
//! A post that fails (the collector away, a non-2xx answer) is logged,
//! rate-limited, and its spans are dropped: traces are a diagnostic, never
//! worth slowing the daemon for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use url::Url;

use crate::encode::{Attribute, SpanRecord, encode};
use crate::error::OtlpError;
use crate::layer::OtlpLayer;

/// Spans waiting for export at most; more are dropped.
const QUEUE: usize = 8192;
/// Spans in one post at most.
pub const BATCH: usize = 512;
/// How long spans wait for a post at most.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How long one post may take.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// The layer's side of the queue.
#[derive(Clone)]
pub(crate) struct Queue {
    tx: mpsc::Sender<SpanRecord>,
    dropped: Arc<AtomicU64>,
}

impl Queue {
    pub(crate) fn new(tx: mpsc::Sender<SpanRecord>) -> Self {
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    pub(crate) fn push(&self, span: SpanRecord) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where and how spans are sent.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// The full URL spans are posted to.
    pub url: Url,
    pub headers: HeaderMap,
    /// `service.name` of the resource.
    pub service_name: String,
}

impl ExporterConfig {
    /// `endpoint` is the collector's base URL (`http://host:4318`); spans
    /// go to its `/v1/traces` unless it names that path already.
    /// `headers` are `NAME=VALUE` pairs sent with every post (e.g. an
    /// authorization header).
    pub fn new(endpoint: &str, headers: &[String], service_name: &str) -> Result<Self, OtlpError> {
        let mut url = Url::parse(endpoint.trim())
            .ok()
            .filter(|u| u.scheme() == "http" && u.host().is_some())
            .ok_or_else(|| OtlpError::Endpoint(endpoint.to_owned()))?;
        if !url.path().ends_with("/v1/traces") {
            let base = url.path().trim_end_matches('/').to_owned();
            url.set_path(&format!("{base}/v1/traces"));
        }
        let mut map = HeaderMap::new();
        for pair in headers {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| OtlpError::Header(pair.clone()))?;
            let name =
                HeaderName::try_from(name.trim()).map_err(|_| OtlpError::Header(pair.clone()))?;
            let value =
                HeaderValue::try_from(value.trim()).map_err(|_| OtlpError::Header(pair.clone()))?;
            map.insert(name, value);
        }
        Ok(Self {
            url,
            headers: map,
            service_name: service_name.to_owned(),
        })
    }
}

/// The running exporter.
pub struct Exporter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    /// Starts exporting (on the current tokio runtime) what the returned
    /// layer collects.
    pub fn start(config: ExporterConfig) -> Result<(Self, OtlpLayer), OtlpError> {
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .map_err(OtlpError::Client)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let queue = Queue::new(tx);
        let dropped = queue.dropped.clone();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(client, config, rx, stopped));
        Ok((
            Self {
                stop,
                task,
                dropped,
            },
            OtlpLayer::new(queue),
        ))
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Posts what is queued and stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run(
    client: reqwest::Client,
    config: ExporterConfig,
    mut rx: mpsc::Receiver<SpanRecord>,
    mut stopped: oneshot::Receiver<()>,
) {
    let resource = vec![
        (
            "service.name".to_owned(),
            Attribute::Str(config.service_name.clone()),
        ),
        (
            "service.version".to_owned(),
            Attribute::Str(env!("CARGO_PKG_VERSION").to_owned()),
        ),
    ];
    let mut failures = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let stop = tokio::select! {
            _ = &mut stopped => true,
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
            n = rx.recv_many(&mut batch, BATCH) => n == 0,
        };
        // Take what else is queued, then post in batches.
        while batch.len() < BATCH
            && let Ok(span) = rx.try_recv()
        {
            batch.push(span);
        }
        if !batch.is_empty() {
            if let Err(e) = post(&client, &config, &resource, &batch).await {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(error = %e, url = %config.url, failures, "could not export traces");
                }
            }
            batch.clear();
        }
        if stop {
            while let Ok(span) = rx.try_recv() {
                batch.push(span);
                if batch.len() == BATCH {
                    let _ = post(&client, &config, &resource, &batch).await;
                    batch.clear();
                }
            }
            if !batch.is_empty() {
                let _ = post(&client, &config, &resource, &batch).await;
            }
            return;
        }
    }
}

async fn post(
    client: &reqwest::Client,
    config: &ExporterConfig,
    resource: &[(String, Attribute)],
    spans: &[SpanRecord],
) -> Result<(), String> {
    let body = encode(resource, spans).to_string();
    let resp = client
        .post(config.url.clone())
        .headers(config.headers.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("the collector answered {}", resp.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_headers_are_checked() {
        let c = ExporterConfig::new("http://127.0.0.1:4318", &[], "warren").unwrap();
        assert_eq!(c.url.as_str(), "http://127.0.0.1:4318/v1/traces");
        let c = ExporterConfig::new(
            "http://collector/otlp/",
            &["authorization=Bearer x".into()],
            "w",
        )
        .unwrap();
        assert_eq!(c.url.as_str(), "http://collector/otlp/v1/traces");
        assert_eq!(c.headers["authorization"], "Bearer x");
        let c = ExporterConfig::new("http://c:4318/v1/traces", &[], "w").unwrap();
        assert_eq!(c.url.path(), "/v1/traces");
        for bad in ["https://c:4318", "c:4318", "", "file:///tmp/x"] {
            assert!(ExporterConfig::new(bad, &[], "w").is_err(), "{bad}");
        }
        for bad in ["novalue", "bad name=x", "x=line\nbreak"] {
            assert!(
                ExporterConfig::new("http://c", &[bad.into()], "w").is_err(),
                "{bad}"
            );
        }
    }
}
