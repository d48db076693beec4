//! Webhook signatures, both ways: GitHub's `X-Hub-Signature-256` and the
//! Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`).
//!
//! - GitHub: `sha256=<hex HMAC-SHA256(secret, body)>`.
//! - Standard Webhooks: the secret is `whsec_<base64 key>`; the signed
//!   content is `<id>.<timestamp>.<body>` with the timestamp in unix
//!   seconds; `webhook-signature` is a space-separated list of
//!   `v1,<base64 HMAC-SHA256(key, content)>`, any one of which may match
//!   (a sender rotating its secret signs with both). A timestamp further
//!   than [`TOLERANCE_S`] from now is refused, so a captured delivery
//!   cannot be replayed later; within the window, receivers dedupe by id.
//!
//! Every comparison of a MAC is constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a Standard Webhooks timestamp may be from now, either way.
pub const TOLERANCE_S: i64 = 5 * 60;
/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a signature is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is malformed")]
    Malformed(&'static str),
    #[error("webhook-timestamp is more than {TOLERANCE_S} s from now; the delivery is stale")]
    Stale,
    #[error("the signature does not match the body under the hook's secret")]
    Mismatch,
    #[error("the secret must be whsec_ followed by base64 of 24-64 random bytes")]
    BadSecret,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Checks GitHub's `X-Hub-Signature-256` header value against `body`.
pub fn verify_github(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    const NAME: &str = "X-Hub-Signature-256";
    let header = header.ok_or(SignatureError::Missing(NAME))?;
    let given = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed(NAME))?;
    let expected = mac(secret, &[body]);
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The key inside a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SignatureError> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .ok_or(SignatureError::BadSecret)?;
    if !(24..=64).contains(&key.len()) {
        return Err(SignatureError::BadSecret);
    }
    Ok(key)
}

/// A new random `whsec_` secret.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` value for one delivery.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let sig = mac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(sig))
}

/// The three Standard Webhooks headers of a delivery, as received.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Checks a Standard Webhooks delivery at time `now` (unix seconds).
pub fn verify(
    key: &[u8],
    headers: Received<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let id = headers.id.ok_or(SignatureError::Missing("webhook-id"))?;
    if id.is_empty() || id.len() > 256 {
        return Err(SignatureError::Malformed("webhook-id"));
    }
    let timestamp: i64 = headers
        .timestamp
        .ok_or(SignatureError::Missing("webhook-timestamp"))?
        .parse()
        .map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    if (now - timestamp).abs() > TOLERANCE_S {
        return Err(SignatureError::Stale);
    }
    let given = headers
        .signature
        .ok_or(SignatureError::Missing("webhook-signature"))?;
    let expected = sign(key, id, timestamp, body);
    let matched = given
        .split(' ')
        .filter(|s| s.starts_with("v1,"))
        .fold(subtle::Choice::from(0), |acc, s| {
            acc | s.as_bytes().ct_eq(expected.as_bytes())
        });
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"action":"completed"}"#;

    fn received<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Received<'a> {
        Received {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn a_github_signature_matches_only_its_body_and_secret() {
        let header = format!("sha256={}", hex::encode(mac(b"s3cret", &[BODY])));
        assert_eq!(verify_github(b"s3cret", Some(&header), BODY), Ok(()));
        assert_eq!(
            verify_github(b"other", Some(&header), BODY),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(b"s3cret", Some(&header), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(b"s3cret", Some("sha1=abcd"), BODY),
            Err(SignatureError::Malformed("X-Hub-Signature-256"))
        );
        assert_eq!(
            verify_github(b"s3cret", None, BODY),
            Err(SignatureError::Missing("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn a_signed_delivery_verifies_within_the_window_and_not_after() {
        let key = secret_key(&new_secret()).unwrap();
        let sig = sign(&key, "msg_1", 1_000_000, BODY);
        let ok = received("msg_1", "1000000", &sig);
        assert_eq!(verify(&key, ok, BODY, 1_000_000 + TOLERANCE_S), Ok(()));
        assert_eq!(
            verify(&key, ok, BODY, 1_000_000 + TOLERANCE_S + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&key, received("msg_2", "1000000", &sig), BODY, 1_000_000),
            Err(SignatureError::Mismatch),
            "the id is signed"
        );
        assert_eq!(
            verify(&key, ok, b"{}", 1_000_000),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_listed_signature_may_match() {
        let key = secret_key(&new_secret()).unwrap();
        let good = sign(&key, "m", 5, BODY);
        let listed = format!("v1,AAAA {good}");
        assert_eq!(verify(&key, received("m", "5", &listed), BODY, 5), Ok(()));
        assert_eq!(
            verify(&key, received("m", "5", "v1,AAAA"), BODY, 5),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(secret_key("nope"), Err(SignatureError::BadSecret));
        assert_eq!(secret_key("whsec_AAAA"), Err(SignatureError::BadSecret));
        assert_eq!(secret_key(&new_secret()).unwrap().len(), 32);
    }
}
