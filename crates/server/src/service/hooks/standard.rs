//! What a Standard Webhooks delivery is about: its payload's `type` (the
//! convention is `{type, timestamp, data}`), and which subscriptions want
//! it.

use serde_json::Value;
use warren_store::Subscription;

/// The inbox type of a payload without a `type`.
pub const UNTYPED: &str = "webhook";

/// The payload's `type`, or [`UNTYPED`].
pub fn kind(payload: &Value) -> String {
    payload
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or(UNTYPED)
        .to_owned()
}

/// Whether `sub` wants a delivery of type `kind`: it names no types, or
/// this one.
pub fn matches(sub: &Subscription, kind: &str) -> bool {
    sub.events.is_empty() || sub.events.iter().any(|e| e == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_type_decides() {
        let mut sub = Subscription {
            id: 0,
            sandbox: "sbx0000000000000000a".parse().unwrap(),
            repository: None,
            pull_request: None,
            branch: None,
            events: vec![],
        };
        assert_eq!(kind(&json!({"type": "invoice.paid"})), "invoice.paid");
        assert_eq!(kind(&json!({"data": 1})), UNTYPED);
        assert!(matches(&sub, "anything"));
        sub.events = vec!["invoice.paid".into()];
        assert!(matches(&sub, "invoice.paid"));
        assert!(!matches(&sub, "invoice.void"));
    }
}
