//! The exporter against a real HTTP receiver: spans arrive as OTLP JSON,
//! shutdown posts what is queued, and an absent collector costs nothing
//! but the spans.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;
use warren_otlp::{Exporter, ExporterConfig, TARGET};

type Bodies = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

async fn receiver() -> (String, Bodies) {
    let bodies: Bodies = Arc::default();
    let app = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(b): State<Bodies>, h: HeaderMap, body: Bytes| async move {
                    b.lock()
                        .unwrap()
                        .push((h, serde_json::from_slice(&body).unwrap()));
                },
            ),
        )
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

fn span_names(bodies: &Bodies) -> Vec<String> {
    let mut names = Vec::new();
    for (_, body) in bodies.lock().unwrap().iter() {
        for rs in body["resourceSpans"].as_array().unwrap() {
            for ss in rs["scopeSpans"].as_array().unwrap() {
                for s in ss["spans"].as_array().unwrap() {
                    names.push(s["name"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    names
}

#[tokio::test]
async fn spans_are_posted_and_shutdown_flushes_the_rest() {
    let (url, bodies) = receiver().await;
    let config =
        ExporterConfig::new(&url, &["authorization=Bearer t0k".into()], "warren-test").unwrap();
    let (exporter, layer) = Exporter::start(config).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    let _guard = tracing::subscriber::set_default(subscriber);
    for i in 0..700 {
        let span = tracing::info_span!(target: TARGET, "sandbox.exec", n = i);
        drop(span.enter());
    }
    // Not exported: another target.
    drop(tracing::info_span!("internal.work").entered());
    exporter.shutdown().await;
    let names = span_names(&bodies);
    assert_eq!(names.len(), 700, "every span arrives once");
    assert!(names.iter().all(|n| n == "sandbox.exec"));
    let posts = bodies.lock().unwrap();
    assert!(posts.len() >= 2, "at most 512 spans a post");
    let (headers, body) = &posts[0];
    assert_eq!(headers["authorization"], "Bearer t0k");
    let service = &body["resourceSpans"][0]["resource"]["attributes"][0];
    assert_eq!(service["value"]["stringValue"], "warren-test");
}

#[tokio::test]
async fn an_absent_collector_costs_only_the_spans() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let (exporter, layer) = Exporter::start(ExporterConfig::new(&url, &[], "w").unwrap()).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    let _guard = tracing::subscriber::set_default(subscriber);
    for _ in 0..20_000 {
        drop(tracing::info_span!(target: TARGET, "sandbox.create").entered());
    }
    assert!(
        exporter.dropped() > 0,
        "a full queue drops instead of growing"
    );
    let shutdown = tokio::time::timeout(Duration::from_secs(30), exporter.shutdown());
    assert!(shutdown.await.is_ok(), "shutdown does not hang");
}
