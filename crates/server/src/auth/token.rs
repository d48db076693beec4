//! Sandbox tokens: short-lived credentials a sandbox uses to call Warren's
//! API for its dispatcher.
//!
//! Format: `wst_<claims>.<mac>`, both base64url without padding; `claims` is
//! JSON naming the sandbox (the actor), the dispatching user (the subject),
//! the key that dispatched it, the team, and issue and expiry times in unix
//! milliseconds; `mac` is HMAC-SHA256 over `wst_<claims>` under a daemon
//! secret kept in the data directory. Nothing is stored per token: what a
//! token may do is decided at each use from the live store (the sandbox must
//! still be live, the dispatcher's key unrevoked and unexpired), so killing a
//! sandbox or revoking its dispatcher's key ends every token minted for it at
//! once. Tokens are accepted only on the sandbox listener and only from the
//! sandbox's own address, so a token copied out of a snapshot, or restored
//! into a fork (which has another address), is of no use.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use warren_core::{KeyId, SandboxId, TeamId, UserId};

use super::keys::Pepper;
use crate::clock::Clock;

const PREFIX: &str = "wst_";

/// Shortest and longest lifetime a deployment may configure, in seconds.
pub const TOKEN_TTL_RANGE_S: std::ops::RangeInclusive<u64> = 15 * 60..=60 * 60;
/// Lifetime when none is configured.
pub const DEFAULT_TOKEN_TTL_S: u64 = 30 * 60;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The sandbox acting.
    pub sbx: SandboxId,
    /// The user it acts for.
    pub sub: UserId,
    /// The key that dispatched the sandbox.
    pub key: KeyId,
    pub team: TeamId,
    /// Issued at, unix milliseconds.
    pub iat: i64,
    /// Expires at, unix milliseconds.
    pub exp: i64,
}

/// Why a presented token is not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed sandbox token")]
    Malformed,
    #[error("sandbox token signature does not match")]
    BadSignature,
    #[error("sandbox token expired; read the current one from WARREN_SANDBOX_TOKEN_FILE")]
    Expired,
}

/// A freshly minted token and the times it names.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub text: String,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Mints and checks sandbox tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    secret: Pepper,
    ttl: time::Duration,
    clock: Clock,
}

impl TokenIssuer {
    pub fn new(secret: Pepper, ttl_s: u64) -> Self {
        Self {
            secret,
            ttl: time::Duration::seconds(ttl_s as i64),
            clock: Clock::system(),
        }
    }

    /// The same issuer, minting against `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    pub fn ttl(&self) -> time::Duration {
        self.ttl
    }

    /// A token for sandbox `sbx` acting for user `sub` (dispatched with
    /// `key`, in `team`), valid from now for the configured lifetime.
    pub fn mint(&self, sbx: &SandboxId, sub: &UserId, key: &KeyId, team: &TeamId) -> MintedToken {
        let now = self.clock.now();
        let claims = Claims {
            sbx: sbx.clone(),
            sub: sub.clone(),
            key: key.clone(),
            team: team.clone(),
            iat: millis(now),
            exp: millis(now + self.ttl),
        };
        let body = serde_json::to_vec(&claims).expect("claims always serialize");
        let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body));
        let mac = URL_SAFE_NO_PAD.encode(self.secret.mac(signed.as_bytes()));
        MintedToken {
            text: format!("{signed}.{mac}"),
            issued_at: now,
            expires_at: now + self.ttl,
        }
    }

    /// The claims of an authentic, unexpired token.
    pub fn verify(&self, text: &str, now: OffsetDateTime) -> Result<Claims, TokenError> {
        let (signed, mac) = text.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let body = signed.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Malformed)?;
        let expected = self.secret.mac(signed.as_bytes());
        if !bool::from(expected.ct_eq(&mac)) {
            return Err(TokenError::BadSignature);
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= millis(now) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Whether `text` looks like a sandbox token rather than an API key.
pub fn is_sandbox_token(text: &str) -> bool {
    text.starts_with(PREFIX)
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(dir: &tempfile::TempDir, ttl_s: u64) -> TokenIssuer {
        TokenIssuer::new(
            Pepper::load_or_create(&dir.path().join("token-secret")).unwrap(),
            ttl_s,
        )
    }

    fn ids() -> (SandboxId, UserId, KeyId, TeamId) {
        (
            SandboxId::generate(),
            UserId::generate(),
            KeyId::generate(),
            TeamId::generate(),
        )
    }

    #[test]
    fn minted_tokens_verify_and_name_actor_and_subject() {
        let dir = tempfile::tempdir().unwrap();
        let t = issuer(&dir, 1800);
        let (s, u, k, team) = ids();
        let token = t.mint(&s, &u, &k, &team).text;
        assert!(is_sandbox_token(&token));
        let c = t.verify(&token, OffsetDateTime::now_utc()).unwrap();
        assert_eq!((c.sbx, c.sub, c.key, c.team), (s, u, k, team));
        assert_eq!(c.exp - c.iat, 1_800_000);
    }

    #[test]
    fn expired_forged_and_foreign_tokens_fail() {
        let dir = tempfile::tempdir().unwrap();
        let t = issuer(&dir, 900);
        let (s, u, k, team) = ids();
        let token = t.mint(&s, &u, &k, &team).text;
        let later = OffsetDateTime::now_utc() + time::Duration::seconds(901);
        assert_eq!(t.verify(&token, later), Err(TokenError::Expired));

        // Claims edited to name another sandbox: the MAC no longer matches.
        let (signed, mac) = token.rsplit_once('.').unwrap();
        let mut claims: Claims = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(signed.strip_prefix(PREFIX).unwrap())
                .unwrap(),
        )
        .unwrap();
        claims.sbx = SandboxId::generate();
        let forged = format!(
            "{PREFIX}{}.{mac}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let now = OffsetDateTime::now_utc();
        assert_eq!(t.verify(&forged, now), Err(TokenError::BadSignature));

        // Another daemon's secret.
        let other_dir = tempfile::tempdir().unwrap();
        assert_eq!(
            issuer(&other_dir, 900).verify(&token, now),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "wst_", "wst_abc", "wst_!!.??", "wrn_x.y"] {
            assert!(t.verify(bad, now).is_err(), "{bad}");
        }
    }
}
