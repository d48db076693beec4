//! Warm pools: operator settings per template, and the claim that hands a
//! pooled sandbox to a team.
//!
//! A pooled sandbox is an ordinary sandbox row whose team is the reserved
//! [`pool_team`]: no API key belongs to it, so no team lists, reads or
//! counts it, and the expiry scan ([`crate::Store::expired_sandboxes`])
//! skips it. [`crate::Store::claim_pooled_sandbox`] moves one row to the
//! claiming team in one transaction, admitted against that team's quota:
//! a row leaves the pool team at most once and never comes back.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use warren_core::inbox::InboxSettings;
use warren_core::network::NetworkPolicy;
use warren_core::{KeyId, Limits, Persistence, TeamId, UserId};

/// The reserved team pooled sandboxes belong to until claimed. It has no
/// `teams` row, users or keys.
pub fn pool_team() -> TeamId {
    POOL_TEAM.parse().expect("a valid team id")
}

/// The reserved owner and creating key of pooled sandboxes.
pub fn pool_owner() -> (UserId, KeyId) {
    (
        "upool0000000".parse().expect("a valid user id"),
        "kpool0000000".parse().expect("a valid key id"),
    )
}

pub(crate) const POOL_TEAM: &str = "tpool0000000";

/// One pool's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRecord {
    /// The template its sandboxes are started from (one pool per template).
    pub template: String,
    /// The size of its sandboxes: a create is served from the pool only
    /// when it asks for exactly these cpus, memory and disk.
    pub limits: Limits,
    /// Ready sandboxes kept whatever the demand.
    pub min: u32,
    /// Ready sandboxes never exceeded.
    pub max: u32,
    /// Ready sandboxes are kept frozen until claimed.
    pub frozen: bool,
    pub updated_at: OffsetDateTime,
    /// The key that last set it.
    pub updated_by: KeyId,
}

/// What a claim gives a pooled sandbox: everything a cold create would
/// have written into its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolClaim {
    pub team: TeamId,
    pub owner: UserId,
    pub created_by: KeyId,
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub expires_at: OffsetDateTime,
    pub persistence: Persistence,
    pub network: NetworkPolicy,
    pub inbox: InboxSettings,
}
