//! Volume tokens: what a client holds to read and write one volume's
//! files through E2B's volume content API (E2B's `token` of
//! `VolumeAndToken`).
//!
//! A token reads `wvt_<team>_<volume>_<key>_<expiry>.<mac>`: the team, the
//! volume's id, the API key it was handed to and its expiry (unix
//! seconds), with `mac` HMAC-SHA256 over everything before the `.` under
//! the same daemon secret as access grants (`wgr_…`; the prefixes keep the
//! two apart). Nothing is stored: it is accepted only while all of these
//! hold, checked at every use:
//! - the MAC matches, compared in constant time (a forged or altered token
//!   fails, and so does one of another daemon);
//! - it has not expired (the grants' lifetime);
//! - the key it was handed to is of its team and neither revoked nor
//!   expired (revoking the key kills its tokens);
//! - the team still has the volume by that id (a deleted volume's token
//!   is dead, and a new volume of the same name is another id);
//! - it names the volume the request addresses (403 otherwise: a token
//!   never opens another volume, of its team or another).
//!
//! What the holder may do is what the key may do now: reads need
//! `sandboxes:read`, writes `sandboxes:create` (the scope that makes
//! volumes), judged by the caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use warren_core::authz::key_permissions;
use warren_core::{ErrorKind, KeyId, Permissions, TeamId, VolumeId, WarrenError};
use warren_store::{KeyRecord, VolumeRecord};

use super::Grants;
use crate::auth::middleware::usable;

const PREFIX: &str = "wvt_";

/// Why a presented volume token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeTokenError {
    #[error("malformed volume token")]
    Malformed,
    #[error("unknown volume token: get the volume again for a current one")]
    Unknown,
    #[error("the volume token expired: get the volume again for a current one")]
    Expired,
    #[error("the key this volume token was handed to is revoked or expired")]
    KeyRevoked,
    #[error("the volume this token was handed out for no longer exists")]
    VolumeGone,
    #[error("the volume token is not this volume's")]
    OtherVolume,
    #[error("{0}")]
    Store(String),
}

impl From<VolumeTokenError> for WarrenError {
    fn from(e: VolumeTokenError) -> Self {
        let kind = match e {
            VolumeTokenError::Store(_) => ErrorKind::Unavailable,
            VolumeTokenError::OtherVolume => ErrorKind::PermissionDenied,
            _ => ErrorKind::Unauthenticated,
        };
        WarrenError::new(kind, e.to_string())
    }
}

/// Who holds an accepted volume token, and for what.
#[derive(Debug, Clone)]
pub struct VolumeHolder {
    pub volume: VolumeRecord,
    pub key: KeyRecord,
    /// The key's rights now.
    pub permissions: Permissions,
}

/// The signed fields of a token.
struct Claims {
    team: TeamId,
    volume: VolumeId,
    key: KeyId,
    expires: i64,
}

impl Grants {
    /// A token for `volume` of `team` to `key`, valid for the grants'
    /// lifetime.
    pub fn issue_volume(&self, team: &TeamId, volume: &VolumeId, key: &KeyId) -> String {
        let expires = (self.clock.now() + self.ttl).unix_timestamp();
        let signed = format!("{PREFIX}{team}_{volume}_{key}_{expires}");
        let mac = URL_SAFE_NO_PAD.encode(self.secret.mac(signed.as_bytes()));
        format!("{signed}.{mac}")
    }

    /// The holder of `text` if it opens the volume `which` (its id or
    /// name) now. Whether the token is authentic and current is judged
    /// before what it names.
    pub async fn check_volume(
        &self,
        text: &str,
        which: &str,
    ) -> Result<VolumeHolder, VolumeTokenError> {
        let claims = self.volume_claims(text)?;
        if claims.expires <= self.clock.now().unix_timestamp() {
            return Err(VolumeTokenError::Expired);
        }
        let store_err = |e: warren_store::StoreError| VolumeTokenError::Store(e.to_string());
        let key = self
            .store
            .get_key(&claims.key)
            .await
            .map_err(store_err)?
            .filter(|k| k.team == claims.team && usable(k, self.clock.now()).is_ok())
            .ok_or(VolumeTokenError::KeyRevoked)?;
        let volume = self
            .store
            .list_volumes(&claims.team)
            .await
            .map_err(store_err)?
            .into_iter()
            .find(|v| v.id == claims.volume)
            .ok_or(VolumeTokenError::VolumeGone)?;
        if which != volume.id.as_str() && which != volume.name {
            return Err(VolumeTokenError::OtherVolume);
        }
        let team = self
            .store
            .get_team(&claims.team)
            .await
            .map_err(store_err)?
            .ok_or(VolumeTokenError::KeyRevoked)?;
        let permissions = key_permissions(key.role, key.scopes.as_deref(), team.operator);
        Ok(VolumeHolder {
            volume,
            key,
            permissions,
        })
    }

    /// The claims of an authentic token.
    fn volume_claims(&self, text: &str) -> Result<Claims, VolumeTokenError> {
        let (signed, mac) = text.rsplit_once('.').ok_or(VolumeTokenError::Malformed)?;
        let fields = signed
            .strip_prefix(PREFIX)
            .ok_or(VolumeTokenError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| VolumeTokenError::Malformed)?;
        let expected = self.secret.mac(signed.as_bytes());
        if !bool::from(expected.ct_eq(&mac)) {
            return Err(VolumeTokenError::Unknown);
        }
        // Authentic, so written by `issue_volume`: these parse.
        let parts: Vec<&str> = fields.split('_').collect();
        let [team, volume, key, expires] = parts[..] else {
            return Err(VolumeTokenError::Malformed);
        };
        Ok(Claims {
            team: team.parse().map_err(|_| VolumeTokenError::Malformed)?,
            volume: volume.parse().map_err(|_| VolumeTokenError::Malformed)?,
            key: key.parse().map_err(|_| VolumeTokenError::Malformed)?,
            expires: expires.parse().map_err(|_| VolumeTokenError::Malformed)?,
        })
    }
}
