//! OpenTelemetry traces: a daemon given `--otlp-endpoint` posts a span for
//! each create, exec, pause, resume and fork to a local OTLP/HTTP receiver,
//! with the sandbox and team ids, joining a caller's `traceparent`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use warren_e2e::Daemon;

/// A span as received, flattened from its request.
#[derive(Debug, Clone)]
struct Received {
    name: String,
    trace: String,
    span: String,
    parent: Option<String>,
    attributes: Vec<(String, Value)>,
    status: Value,
    start_ns: u128,
    end_ns: u128,
    service: String,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key)?["stringValue"].as_str()
    }
}

type Spans = Arc<Mutex<Vec<Received>>>;

fn hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Reads one OTLP/HTTP JSON export request, checking the shape the OTLP
/// specification gives it.
async fn receive(State(spans): State<Spans>, headers: HeaderMap, body: Bytes) -> StatusCode {
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-tenant"], "warren-e2e",
        "configured headers are sent"
    );
    let req: Value = serde_json::from_slice(&body).expect("the body is JSON");
    let mut got = Vec::new();
    for rs in req["resourceSpans"].as_array().expect("resourceSpans") {
        let service = rs["resource"]["attributes"]
            .as_array()
            .expect("resource attributes")
            .iter()
            .find(|a| a["key"] == "service.name")
            .and_then(|a| a["value"]["stringValue"].as_str())
            .expect("service.name")
            .to_owned();
        for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
            for s in ss["spans"].as_array().expect("spans") {
                let nanos = |k: &str| -> u128 {
                    s[k].as_str()
                        .unwrap_or_else(|| panic!("{k} is a decimal string: {s}"))
                        .parse()
                        .unwrap()
                };
                let r = Received {
                    name: s["name"].as_str().unwrap().to_owned(),
                    trace: s["traceId"].as_str().unwrap().to_owned(),
                    span: s["spanId"].as_str().unwrap().to_owned(),
                    parent: s["parentSpanId"].as_str().map(str::to_owned),
                    attributes: s["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| (a["key"].as_str().unwrap().to_owned(), a["value"].clone()))
                        .collect(),
                    status: s["status"].clone(),
                    start_ns: nanos("startTimeUnixNano"),
                    end_ns: nanos("endTimeUnixNano"),
                    service: service.clone(),
                };
                assert!(hex_of_len(&r.trace, 32), "{r:?}");
                assert!(hex_of_len(&r.span, 16), "{r:?}");
                assert!(r.start_ns <= r.end_ns, "{r:?}");
                got.push(r);
            }
        }
    }
    spans.lock().unwrap().extend(got);
    StatusCode::OK
}

async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), spans)
}

/// Waits until a span named `name` about `sandbox` arrived.
async fn span_of(spans: &Spans, name: &str, sandbox: &str) -> Received {
    for _ in 0..150 {
        let found = spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.name == name && s.str_attr("sandbox.id") == Some(sandbox))
            .cloned();
        if let Some(s) = found {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<String> = spans
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.name.clone())
        .collect();
    panic!("no {name} span for {sandbox} arrived; got {names:?}");
}

#[tokio::test]
async fn sandbox_traces_reach_an_otlp_receiver() {
    let (endpoint, spans) = receiver().await;
    let d = Daemon::with_base_and(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-header",
        "x-tenant=warren-e2e",
    ])
    .await;
    let me: warren_api_types::WhoAmI = d.get_json("/v1/whoami").await;
    let team = me.team;

    // A create carrying a caller's trace context joins that trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let resp = d
        .post("/v1/sandboxes")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"template": "base"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sbx: Value = resp.json().await.unwrap();
    let id = sbx["id"].as_str().unwrap().to_owned();

    let out = d.sh(&id, "exit 3").await;
    assert_eq!(out.exit_code, Some(3));
    let pause = format!("/v1/sandboxes/{id}/pause");
    assert_eq!(d.call(&d.key, "POST", &pause, None).await.0, 200);
    // A failing operation ends its span failed: this one is paused already.
    assert_eq!(d.call(&d.key, "POST", &pause, None).await.0, 409);
    let resume = format!("/v1/sandboxes/{id}/resume");
    assert_eq!(d.call(&d.key, "POST", &resume, None).await.0, 200);
    let fork = format!("/v1/sandboxes/{id}/fork");
    let (status, forked) = d
        .call(&d.key, "POST", &fork, Some(json!({"count": 1})))
        .await;
    assert_eq!(status, 201, "{forked}");

    let create = span_of(&spans, "sandbox.create", &id).await;
    assert_eq!(create.trace, caller_trace);
    assert_eq!(create.parent.as_deref(), Some(caller_span));
    assert_eq!(create.str_attr("team.id"), Some(team.as_str()));
    assert_eq!(create.str_attr("template"), Some("base"));
    assert_eq!(create.service, "warren");
    assert!(create.status.is_null(), "{create:?}");

    let exec = span_of(&spans, "sandbox.exec", &id).await;
    assert_eq!(exec.attr("exit_code"), Some(&json!({"intValue": "3"})));
    assert_ne!(
        exec.trace, caller_trace,
        "a call without a context starts a trace"
    );
    for name in ["sandbox.resume", "sandbox.fork"] {
        let s = span_of(&spans, name, &id).await;
        assert_eq!(s.str_attr("team.id"), Some(team.as_str()), "{s:?}");
        assert!(s.end_ns > s.start_ns, "{s:?}");
        assert!(s.status.is_null(), "{s:?}");
    }
    let fork = span_of(&spans, "sandbox.fork", &id).await;
    let branch = forked["sandboxes"][0]["id"].as_str().expect("a branch");
    assert_eq!(fork.str_attr("branches"), Some(branch), "{fork:?}");

    // Both pauses were traced, the second one failed with its reason.
    span_of(&spans, "sandbox.pause", &id).await;
    let pauses: Vec<Received> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.name == "sandbox.pause")
        .cloned()
        .collect();
    assert_eq!(pauses.len(), 2, "{pauses:?}");
    assert!(pauses[0].status.is_null(), "{pauses:?}");
    assert_eq!(pauses[1].status["code"], 2, "{pauses:?}");
    let message = pauses[1].status["message"].as_str().unwrap_or_default();
    assert!(message.contains("already paused"), "{message}");
}
