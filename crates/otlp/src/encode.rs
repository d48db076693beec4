//! Spans in OTLP's JSON encoding (the protobuf JSON mapping of
//! `ExportTraceServiceRequest`, with trace and span ids as lower-case hex
//! and 64-bit integers as decimal strings, as OTLP/HTTP requires).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::context::{SpanId, TraceId};

/// One attribute's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Attribute {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// How a span ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Unset,
    Error(String),
}

/// A finished span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace: TraceId,
    pub span: SpanId,
    pub parent: Option<SpanId>,
    pub name: String,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(String, Attribute)>,
    pub status: Status,
}

fn unix_nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

fn value(a: &Attribute) -> Value {
    match a {
        Attribute::Str(s) => json!({ "stringValue": s }),
        Attribute::Int(i) => json!({ "intValue": i.to_string() }),
        Attribute::Float(f) if f.is_finite() => json!({ "doubleValue": f }),
        // JSON has no NaN or infinity.
        Attribute::Float(f) => json!({ "stringValue": f.to_string() }),
        Attribute::Bool(b) => json!({ "boolValue": b }),
    }
}

fn key_values<'a>(attrs: impl IntoIterator<Item = &'a (String, Attribute)>) -> Value {
    attrs
        .into_iter()
        .map(|(k, v)| json!({ "key": k, "value": value(v) }))
        .collect()
}

/// `spans` as one export request from the service `resource` describes
/// (e.g. `service.name`).
pub fn encode(resource: &[(String, Attribute)], spans: &[SpanRecord]) -> Value {
    const KIND_INTERNAL: u8 = 1;
    const STATUS_ERROR: u8 = 2;
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut span = json!({
                "traceId": s.trace.to_string(),
                "spanId": s.span.to_string(),
                "name": s.name,
                "kind": KIND_INTERNAL,
                "startTimeUnixNano": unix_nanos(s.start),
                "endTimeUnixNano": unix_nanos(s.end.max(s.start)),
                "attributes": key_values(&s.attributes),
            });
            if let Some(parent) = s.parent {
                span["parentSpanId"] = parent.to_string().into();
            }
            if let Status::Error(message) = &s.status {
                span["status"] = json!({ "code": STATUS_ERROR, "message": message });
            }
            span
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": key_values(resource) },
            "scopeSpans": [{
                "scope": { "name": "warren", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn spans_take_otlps_json_shape() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let span = SpanRecord {
            trace: TraceId([0xab; 16]),
            span: SpanId([0x01; 8]),
            parent: Some(SpanId([0x02; 8])),
            name: "sandbox.pause".into(),
            start,
            end: start + Duration::from_millis(5),
            attributes: vec![
                ("sandbox.id".into(), Attribute::Str("sbx".into())),
                ("exit_code".into(), Attribute::Int(-1)),
                ("ratio".into(), Attribute::Float(f64::NAN)),
            ],
            status: Status::Error("gone".into()),
        };
        let resource = [("service.name".to_owned(), Attribute::Str("warren".into()))];
        let body = encode(&resource, &[span]);
        let rs = &body["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "warren"}})
        );
        let s = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "ab".repeat(16));
        assert_eq!(s["spanId"], "01".repeat(8));
        assert_eq!(s["parentSpanId"], "02".repeat(8));
        assert_eq!(s["startTimeUnixNano"], "1700000000123456789");
        assert_eq!(s["endTimeUnixNano"], "1700000000128456789");
        assert_eq!(s["attributes"][1]["value"], json!({"intValue": "-1"}));
        assert_eq!(s["attributes"][2]["value"], json!({"stringValue": "NaN"}));
        assert_eq!(s["status"], json!({"code": 2, "message": "gone"}));
    }

    #[test]
    fn a_root_span_has_no_parent_and_no_status() {
        let now = SystemTime::now();
        let span = SpanRecord {
            trace: TraceId::random(),
            span: SpanId::random(),
            parent: None,
            name: "sandbox.create".into(),
            start: now,
            end: now,
            attributes: Vec::new(),
            status: Status::Unset,
        };
        let s = &encode(&[], &[span])["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert!(s.get("parentSpanId").is_none());
        assert!(s.get("status").is_none());
    }
}
