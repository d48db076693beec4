//! What a delivery sends: the body and the signature headers.
//!
//! Warren's body: `{id, type, timestamp, sandbox_id, team, data}`, with
//! Standard Webhooks headers: `webhook-id` (the event's id, the same at
//! every retry), `webhook-timestamp` (the attempt's time, unix seconds)
//! and `webhook-signature` ([`crate::signature::sign`] over
//! `id.timestamp.body`). E2B's body and headers for registrations made
//! through E2B's API: `e2b-signature` is unpadded base64 of
//! SHA-256(secret ‖ body).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use warren_store::{LifecycleEventRecord, SandboxRecord, WebhookFlavor};

use super::names;
use crate::signature;

/// A body and its headers, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// The `data` of a lifecycle event: the sandbox's state, template and
/// metadata, and what the act recorded (snapshot, branches, reason).
pub fn data(rec: &SandboxRecord, details: &Map<String, Value>) -> Value {
    let mut data = details.clone();
    data.insert("state".into(), rec.state.as_str().into());
    data.insert("template".into(), rec.template.clone().into());
    data.insert("metadata".into(), json!(rec.metadata));
    Value::Object(data)
}

/// Warren's body of `event`.
pub fn warren_body(event: &LifecycleEventRecord) -> Value {
    json!({
        "id": event.id,
        "type": event.kind,
        "timestamp": warren_core::rfc3339(event.at),
        "sandbox_id": event.sandbox,
        "team": event.team.as_str(),
        "data": serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null),
    })
}

/// E2B's body of `event` (also the items of `/events/sandboxes/{id}`).
pub fn e2b_body(event: &LifecycleEventRecord, version: &str) -> Value {
    let data = serde_json::from_str::<Value>(&event.data).unwrap_or(Value::Null);
    let mut event_data = data.as_object().cloned().unwrap_or_default();
    let metadata = event_data.remove("metadata").unwrap_or(json!({}));
    let template = event_data.remove("template").unwrap_or(Value::Null);
    event_data.insert("sandbox_metadata".into(), metadata);
    json!({
        "version": version,
        "id": event.id,
        "type": names::to_e2b(&event.kind).unwrap_or(event.kind.as_str()),
        "eventData": event_data,
        "sandboxBuildId": "",
        "sandboxExecutionId": event.sandbox,
        "sandboxId": event.sandbox,
        "sandboxTeamId": event.team.as_str(),
        "sandboxTemplateId": template,
        "timestamp": warren_core::rfc3339(event.at),
    })
}

/// The body and headers of one attempt at `now_s` (unix seconds).
/// `delivery_id` names the attempt (E2B's `e2b-delivery-id`).
pub fn render(
    flavor: WebhookFlavor,
    webhook_id: &str,
    secret: &str,
    event: &LifecycleEventRecord,
    now_s: i64,
    delivery_id: &str,
) -> Result<Rendered, signature::SignatureError> {
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", "warren-webhooks".to_owned()),
    ];
    let body = match flavor {
        WebhookFlavor::Warren => {
            let body = warren_body(event).to_string().into_bytes();
            let key = signature::secret_key(secret)?;
            headers.push(("webhook-id", event.id.clone()));
            headers.push(("webhook-timestamp", now_s.to_string()));
            headers.push((
                "webhook-signature",
                signature::sign(&key, &event.id, now_s, &body),
            ));
            body
        }
        WebhookFlavor::E2b => {
            let body = e2b_body(event, "v2").to_string().into_bytes();
            let digest = Sha256::new()
                .chain_update(secret.as_bytes())
                .chain_update(&body)
                .finalize();
            headers.push(("e2b-webhook-id", webhook_id.to_owned()));
            headers.push(("e2b-delivery-id", delivery_id.to_owned()));
            headers.push(("e2b-signature-version", "v1".to_owned()));
            headers.push(("e2b-signature", STANDARD_NO_PAD.encode(digest)));
            body
        }
    };
    Ok(Rendered { body, headers })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn event() -> LifecycleEventRecord {
        LifecycleEventRecord {
            id: "5b0f9a52-0000-4000-8000-000000000001".into(),
            team: warren_core::TeamId::generate(),
            sandbox: "sbx".into(),
            kind: "sandbox.paused".into(),
            data: r#"{"state":"paused","template":"base","metadata":{"k":"v"},"snapshot":"s1"}"#
                .into(),
            at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        }
    }

    #[test]
    fn a_warren_delivery_verifies_under_its_secret_with_the_event_id() {
        let secret = signature::new_secret();
        let r = render(
            WebhookFlavor::Warren,
            "wh",
            &secret,
            &event(),
            1_800_000_005,
            "d",
        )
        .unwrap();
        let h = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(h("webhook-id"), Some(event().id.as_str()));
        let key = signature::secret_key(&secret).unwrap();
        let received = signature::Received {
            id: h("webhook-id"),
            timestamp: h("webhook-timestamp"),
            signature: h("webhook-signature"),
        };
        assert_eq!(
            signature::verify(&key, received, &r.body, 1_800_000_010),
            Ok(())
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "sandbox.paused");
        assert_eq!(body["sandbox_id"], "sbx");
        assert_eq!(body["timestamp"], "2027-01-15T08:00:00Z");
        assert_eq!(body["data"]["snapshot"], "s1");
        assert_eq!(body["data"]["metadata"]["k"], "v");
        let other = signature::secret_key(&signature::new_secret()).unwrap();
        assert!(signature::verify(&other, received, &r.body, 1_800_000_010).is_err());
    }

    #[test]
    fn an_e2b_delivery_has_e2b_names_and_signature() {
        let r = render(WebhookFlavor::E2b, "wh1", "s3cret", &event(), 1, "d1").unwrap();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["type"], "sandbox.lifecycle.paused");
        assert_eq!(body["sandboxId"], "sbx");
        assert_eq!(body["sandboxTemplateId"], "base");
        assert_eq!(body["eventData"]["sandbox_metadata"]["k"], "v");
        let mut h = Sha256::new();
        h.update(b"s3cret");
        h.update(&r.body);
        let want = STANDARD_NO_PAD.encode(h.finalize());
        assert!(r.headers.contains(&("e2b-signature", want)));
        assert!(r.headers.contains(&("e2b-webhook-id", "wh1".to_owned())));
    }
}
