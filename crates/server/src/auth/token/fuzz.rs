//! Fuzz target for sandbox tokens as a listener reads them: any text, and
//! claims signed with the daemon's secret (so the parser behind the MAC is
//! reached too). Budget and reproduction: see the `warren-fuzz` crate.

use warren_fuzz::{Target, corpus_dir};

use super::*;

fn tokens(issuer: &TokenIssuer, secret: &Pepper, now: OffsetDateTime, bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = is_sandbox_token(text);
        if let Ok(claims) = issuer.verify(text, now) {
            assert!(claims.exp > millis(now));
        }
    }
    // The bytes as claims, signed: whatever parses is what was signed.
    let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let mac = URL_SAFE_NO_PAD.encode(secret.mac(signed.as_bytes()));
    match issuer.verify(&format!("{signed}.{mac}"), now) {
        Ok(claims) => {
            let parsed: Claims = serde_json::from_slice(bytes).unwrap();
            assert_eq!(parsed, claims);
        }
        Err(e) => assert!(
            matches!(e, TokenError::Malformed | TokenError::Expired),
            "{e}"
        ),
    }
}

#[test]
fn fuzz_sandbox_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token-secret");
    let secret = Pepper::load_or_create(&path).unwrap();
    let issuer = TokenIssuer::new(Pepper::load_or_create(&path).unwrap(), 1800);
    let now = OffsetDateTime::now_utc();
    let minted = issuer.mint(
        &SandboxId::generate(),
        &UserId::generate(),
        &KeyId::generate(),
        &TeamId::generate(),
    );
    let (signed, _) = minted.text.rsplit_once('.').unwrap();
    let claims = URL_SAFE_NO_PAD
        .decode(signed.strip_prefix(PREFIX).unwrap())
        .unwrap();
    Target::new(
        "sandbox_tokens",
        corpus_dir(env!("CARGO_MANIFEST_DIR"), "sandbox_tokens"),
    )
    .seed(minted.text.clone())
    .seed(claims)
    .tokens([
        "wst_",
        ".",
        "\"exp\":",
        "\"iat\":",
        "9223372036854775807",
        "-9223372036854775808",
        "\"sbx\":",
        "\"team\":",
        "=",
        "+",
        "/",
    ])
    .run(|bytes| tokens(&issuer, &secret, now, bytes));
}
