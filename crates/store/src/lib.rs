//! Durable state behind one trait, [`Store`]. SQLite (WAL) in the data
//! directory is the default ([`SqliteStore`]); every write is committed
//! before the call returns, so an acknowledged state change survives a crash.
//!
//! Invariants:
//! - Sandbox state changes are compare-and-set ([`Store::transition`]): two
//!   racing callers cannot both move a sandbox out of the same state, and
//!   only transitions the warren-core state machine allows are accepted.
//! - A network slot is held by at most one sandbox. A sandbox holds its slot
//!   from creation until [`Store::release_slot`], which only a killed or
//!   failed sandbox accepts: the daemon calls it once the sandbox's network
//!   (whose host-side addresses derive from the slot) is torn down, so a
//!   new sandbox never gets an address an old veth still has. Transitions
//!   never free a slot.
//! - A dead sandbox's row is deleted only after its slot is released, so a
//!   sandbox whose teardown was never confirmed is always found again by
//!   [`Store::unreleased_sandboxes`].
//! - API keys are stored only as a keyed hash; the secret never is.
//! - Every key belongs to a user of a team, and every sandbox to a team;
//!   a team is created together with its first user and key, so no team
//!   exists without a way in, and at most one team is the operator team.
//! - A snapshot row with no `deleted_at` names a complete image in the
//!   snapshot store: rows are inserted only after the image is complete,
//!   a pause's row in the same transaction that makes the sandbox paused
//!   ([`Store::commit_pause`]). Rows outlive their images for lineage.
//! - A secret row holds only the ciphertext of its value (encrypted by the
//!   daemon under a key the database never sees); secrets are per team and
//!   unique by name within it.
//! - A team holds at most its quota of live sandboxes, vCPUs and memory
//!   when every sandbox is added through [`Store::create_sandbox_in_quota`]
//!   and every resume through [`Store::begin_resume_in_quota`] (the daemon
//!   does); the decision is made in the write's own transaction.
//! - A pooled sandbox (team [`pool_team`]) is no team's: it leaves the pool
//!   only through [`Store::claim_pooled_sandbox`], at most once, admitted
//!   against the claiming team's quota in the claim's own transaction.
//! - A webhook delivery exists only with its lifecycle event, inserted in
//!   the event's own transaction ([`Store::record_lifecycle_event`]).
//! - Times are kept with millisecond precision: a record read back carries
//!   the stored (truncated) times, and so does the record a write returns.
//!
//! Each backend has its own migrations (`migrations/sqlite/`; a PostgreSQL
//! backend gets `migrations/postgres/`), applied when the store is opened.

use std::collections::BTreeMap;

use async_trait::async_trait;
use time::OffsetDateTime;
use warren_core::inbox::InboxSettings;
use warren_core::network::NetworkPolicy;
use warren_core::quota::{Quota, Usage};
use warren_core::{
    KeyId, Limits, PauseMode, Persistence, Role, SandboxId, SandboxState, Scope, SnapshotId,
    TeamId, UserId,
};

mod audit;
mod budget;
mod error;
mod event;
mod grant;
mod hook;
mod pool;
mod sqlite;
mod template_snapshot;
mod usage;
mod volume;
mod webhook;

pub use audit::{AuditAppend, AuditFilter, AuditStoreError};
pub use budget::{BudgetMark, BudgetRecord};
pub use error::StoreError;
pub use event::{AppendedEvent, EventRecord, InboxRecord, NewEvent};
pub use grant::{GrantKind, GrantRecord};
pub use hook::{HookKind, HookRecord, Subscription, TimerRecord};
pub use pool::{PoolClaim, PoolRecord, pool_owner, pool_team};
pub use sqlite::{SqliteAudit, SqliteConfig, SqliteStore};
pub use template_snapshot::TemplateSnapshotRecord;
pub use usage::{MeterMark, UsageGroup, UsageQuery, UsageSample};
pub use volume::{VolumeMountRecord, VolumeRecord};
pub use webhook::{
    AttemptNext, AttemptRecord, DeliveryRecord, DeliveryState, EventPage, LifecycleEventRecord,
    WebhookFlavor, WebhookRecord,
};

/// One sandbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxRecord {
    pub id: SandboxId,
    pub template: String,
    /// The template version it runs on (`None` only on rows older than
    /// template versions, until the daemon fills them in).
    pub template_version: Option<String>,
    pub state: SandboxState,
    pub limits: Limits,
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    /// Network slot, unique among sandboxes that still hold theirs (every
    /// live one, and dead ones until [`Store::release_slot`]).
    pub net_slot: u32,
    /// The team it belongs to; only that team's keys see it.
    pub team: TeamId,
    /// The user who dispatched it: its sandbox token acts for them.
    pub owner: UserId,
    /// The key that created it.
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
    /// When the sandbox entered its current state (for a killed or failed
    /// sandbox: when it ended).
    pub state_changed_at: OffsetDateTime,
    /// When the sandbox is killed unless extended.
    pub expires_at: OffsetDateTime,
    pub persistence: Persistence,
    /// The last API call naming it (its creation until the first call).
    pub last_activity: OffsetDateTime,
    /// The snapshot it was started from (fork, create from snapshot).
    pub source_snapshot: Option<SnapshotId>,
    /// The image it resumes from while pausing, paused or resuming.
    pub paused_snapshot: Option<SnapshotId>,
    /// What its pause kept, while paused or resuming (`None` otherwise,
    /// and on rows paused before it was recorded: those were full pauses).
    pub pause_mode: Option<PauseMode>,
    /// Its effective network policy.
    pub network: NetworkPolicy,
}

/// A new sandbox; the store assigns its network slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSandbox {
    pub id: SandboxId,
    pub template: String,
    pub template_version: Option<String>,
    pub limits: Limits,
    pub env: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
    pub team: TeamId,
    pub owner: UserId,
    pub created_by: KeyId,
    pub expires_at: OffsetDateTime,
    pub persistence: Persistence,
    pub source_snapshot: Option<SnapshotId>,
    /// Its effective network policy (the daemon resolves defaults).
    pub network: NetworkPolicy,
    /// How its inbox takes events.
    pub inbox: warren_core::inbox::InboxSettings,
}

/// Why a snapshot exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// The image of a paused sandbox.
    Pause,
    /// Taken on request under a name, while the sandbox kept running.
    Named,
    /// Taken to fork a sandbox.
    Fork,
}

impl SnapshotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Named => "named",
            Self::Fork => "fork",
        }
    }
}

impl std::str::FromStr for SnapshotKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pause" => Ok(Self::Pause),
            "named" => Ok(Self::Named),
            "fork" => Ok(Self::Fork),
            other => Err(format!("unknown snapshot kind '{other}'")),
        }
    }
}

/// A complete snapshot image about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSnapshot {
    pub id: SnapshotId,
    /// The sandbox it was taken from.
    pub sandbox_id: SandboxId,
    /// That sandbox's team; only its keys see the snapshot.
    pub team: TeamId,
    pub kind: SnapshotKind,
    /// Set for [`SnapshotKind::Named`] only.
    pub name: Option<String>,
    /// What a sandbox started from it is given.
    pub template: String,
    pub template_version: Option<String>,
    pub limits: Limits,
    pub env: BTreeMap<String, String>,
    /// The snapshot the source sandbox was itself started from.
    pub parent_snapshot: Option<SnapshotId>,
    pub size_bytes: u64,
    /// Who took it.
    pub created_by: KeyId,
    /// The source sandbox's network policy, which branches inherit.
    pub network: NetworkPolicy,
}

/// One snapshot row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub id: SnapshotId,
    pub sandbox_id: SandboxId,
    pub team: TeamId,
    pub kind: SnapshotKind,
    pub name: Option<String>,
    pub template: String,
    pub template_version: Option<String>,
    pub limits: Limits,
    pub env: BTreeMap<String, String>,
    pub parent_snapshot: Option<SnapshotId>,
    pub size_bytes: u64,
    pub created_by: KeyId,
    pub created_at: OffsetDateTime,
    /// When its image was deleted; the row then only records lineage.
    pub deleted_at: Option<OffsetDateTime>,
    pub network: NetworkPolicy,
}

/// Most network events kept per sandbox; older ones are dropped as new
/// ones arrive.
pub const MAX_NETWORK_EVENTS: usize = 1000;

/// A network decision about a sandbox's traffic, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNetEvent {
    pub sandbox_id: SandboxId,
    pub at: OffsetDateTime,
    /// `dns`, `connect`, `http`, `tls` or `packet`.
    pub kind: String,
    pub dest: Option<std::net::IpAddr>,
    pub port: Option<u16>,
    pub name: Option<String>,
    /// `allow` or `deny`.
    pub verdict: String,
    /// Why it was denied.
    pub reason: Option<String>,
    pub bytes_out: u64,
    pub bytes_in: u64,
}

/// A stored network event; `seq` orders them (and pages them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEventRecord {
    pub seq: i64,
    pub event: NewNetEvent,
}

/// Which sandboxes to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxFilter {
    /// Only this team's sandboxes; `None` lists every team's (the daemon's
    /// own bookkeeping, never an API caller).
    pub team: Option<TeamId>,
    /// Only these states; empty means every non-terminal state.
    pub states: Vec<SandboxState>,
    /// Every pair must match exactly.
    pub metadata: BTreeMap<String, String>,
}

/// One API key row (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: KeyId,
    pub team: TeamId,
    /// The user the key acts for.
    pub user: UserId,
    pub name: String,
    /// HMAC-SHA256(pepper, secret).
    pub hash: Vec<u8>,
    pub role: Role,
    /// Restricts the role's grant; `None` is the whole grant.
    pub scopes: Option<Vec<Scope>>,
    pub created_at: OffsetDateTime,
    /// The key stops working at this time.
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// One team row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRecord {
    pub id: TeamId,
    /// Unique among teams.
    pub name: String,
    /// The operator team's admins create teams; there is at most one.
    pub operator: bool,
    pub created_at: OffsetDateTime,
}

/// One user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub team: TeamId,
    /// Unique within the team.
    pub name: String,
    pub created_at: OffsetDateTime,
}

/// One team secret: the ciphertext of its value, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub team: TeamId,
    /// Unique within the team.
    pub name: String,
    /// AEAD ciphertext with its tag.
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub created_by: KeyId,
    pub updated_at: OffsetDateTime,
    pub updated_by: KeyId,
    /// How many values it has had: 1 when created, one more at every
    /// replacement (set by the store; ignored in [`Store::put_secret`]).
    pub version: u64,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("team", &self.team)
            .field("name", &self.name)
            .field("ciphertext_len", &self.ciphertext.len())
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// What [`Store::put_secret`] may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretWrite {
    /// Create the secret or replace its value.
    Set,
    /// Create it; `AlreadyExists` if the team has one of that name.
    Create,
    /// Replace its value; `NotFound` if the team has none of that name.
    Replace,
}

/// What [`Store::put_secret`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The row as stored (on a replace, with its first creation time and
    /// creator).
    pub record: SecretRecord,
    /// Whether the secret did not exist before.
    pub created: bool,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a sandbox in state `creating`, assigning the lowest free
    /// network slot in the same transaction. `AlreadyExists` if the id is
    /// taken (even by a killed sandbox), `SlotsExhausted` if no slot is free.
    async fn create_sandbox(&self, new: NewSandbox) -> Result<SandboxRecord, StoreError>;

    // ---- Team quotas (see `warren_core::quota`) ----

    /// [`Store::create_sandbox`] if one more live sandbox of `new.limits`
    /// fits its team's quota (its own or `Quota::DEFAULT`), decided in the
    /// insert's transaction: two concurrent calls cannot both take the last
    /// slot. `QuotaExceeded` names the limit and the team's usage.
    async fn create_sandbox_in_quota(&self, new: NewSandbox) -> Result<SandboxRecord, StoreError>;

    /// Moves a paused sandbox to resuming if its CPU, memory and disk fit its
    /// team's quota, in one transaction. `Conflict` if it is not paused,
    /// `QuotaExceeded` if it does not fit.
    async fn begin_resume_in_quota(&self, id: &SandboxId) -> Result<SandboxRecord, StoreError>;

    /// The team's own quota; `None` when it has the defaults.
    async fn get_quota(&self, team: &TeamId) -> Result<Option<Quota>, StoreError>;

    /// Sets the team's quota, recording the key that set it. `NotFound` if
    /// the team does not exist.
    async fn set_quota(&self, team: &TeamId, quota: &Quota, by: &KeyId) -> Result<(), StoreError>;

    /// What the team's sandboxes and snapshots hold now.
    async fn team_usage(&self, team: &TeamId) -> Result<Usage, StoreError>;

    async fn get_sandbox(&self, id: &SandboxId) -> Result<Option<SandboxRecord>, StoreError>;

    /// Sandboxes matching `filter`, oldest first.
    async fn list_sandboxes(
        &self,
        filter: &SandboxFilter,
    ) -> Result<Vec<SandboxRecord>, StoreError>;

    /// Moves `id` from `from` to `to` if it is still in `from`; returns the
    /// updated record, `StoreError::Conflict` with the actual state,
    /// `NotFound`, or `IllegalTransition` if warren-core's state machine has
    /// no step from `from` to `to`. Moving to killed or failed does not free
    /// the network slot: see [`Store::release_slot`].
    async fn transition(
        &self,
        id: &SandboxId,
        from: SandboxState,
        to: SandboxState,
    ) -> Result<SandboxRecord, StoreError>;

    async fn set_expiry(
        &self,
        id: &SandboxId,
        expires_at: OffsetDateTime,
    ) -> Result<SandboxRecord, StoreError>;

    /// Non-terminal sandboxes that are not paused and whose expiry is at or
    /// before `now`, soonest expiry first (a paused sandbox does not age by
    /// its running lifetime: see [`Store::expired_paused`]).
    async fn expired_sandboxes(&self, now: OffsetDateTime) -> Result<Vec<SandboxId>, StoreError>;

    /// Frees the network slot of a killed or failed sandbox, once its
    /// network is torn down; the slot may then go to a new sandbox.
    /// Idempotent. `NotTerminal` for any other state, `NotFound` if there
    /// is no such row.
    async fn release_slot(&self, id: &SandboxId) -> Result<(), StoreError>;

    /// Killed or failed sandboxes whose slot is not released (their network
    /// teardown was never confirmed), earliest ended first. The daemon
    /// retries their teardown at start-up.
    async fn unreleased_sandboxes(&self) -> Result<Vec<SandboxId>, StoreError>;

    /// Deletes a killed or failed sandbox's row once its slot is released;
    /// `NotTerminal` for any other state, `SlotNotReleased` while its
    /// teardown is unconfirmed, `NotFound` if there is no such row.
    async fn delete_sandbox(&self, id: &SandboxId) -> Result<(), StoreError>;

    /// Deletes every killed or failed sandbox that ended at or before
    /// `ended_before` and whose slot is released (a row whose teardown is
    /// unconfirmed stays); returns how many rows went.
    async fn purge_sandboxes(&self, ended_before: OffsetDateTime) -> Result<u64, StoreError>;

    /// `AlreadyExists` if the id is taken, `NotFound` if its team or user
    /// does not exist.
    async fn insert_key(&self, key: KeyRecord) -> Result<(), StoreError>;
    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError>;
    /// Every key of `team` (of every team for `None`), revoked ones
    /// included, oldest first.
    async fn list_keys(&self, team: Option<&TeamId>) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks the key revoked at `at` and deletes its grants; revoking again
    /// keeps the first time.
    /// `NotFound` for an unknown id.
    async fn revoke_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Creates a team with its first user and that user's key in one
    /// transaction: a team never exists without a way in. `AlreadyExists`
    /// if the team name (or any id) is taken, or if `team` is an operator
    /// team and one exists.
    async fn create_team(
        &self,
        team: TeamRecord,
        admin: UserRecord,
        key: KeyRecord,
    ) -> Result<(), StoreError>;
    async fn get_team(&self, id: &TeamId) -> Result<Option<TeamRecord>, StoreError>;
    /// Every team, oldest first.
    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError>;
    /// `AlreadyExists` if the name is taken in the team, `NotFound` if the
    /// team does not exist.
    async fn insert_user(&self, user: UserRecord) -> Result<(), StoreError>;
    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    /// The team's users, oldest first.
    async fn list_users(&self, team: &TeamId) -> Result<Vec<UserRecord>, StoreError>;

    // ---- Snapshots, pause/resume and idle handling ----

    /// Records the complete pause image `snapshot` and moves `id` from
    /// pausing to paused with `mode`, in one transaction: either both
    /// happen or neither. `Conflict` if the sandbox is no longer pausing.
    async fn commit_pause(
        &self,
        id: &SandboxId,
        snapshot: NewSnapshot,
        mode: PauseMode,
    ) -> Result<SandboxRecord, StoreError>;

    /// Moves `id` from resuming to running, counting its running lifetime
    /// and its idleness from now, and forgets its pause mode. `Conflict`
    /// if it is no longer resuming.
    async fn finish_resume(&self, id: &SandboxId) -> Result<SandboxRecord, StoreError>;

    /// Records a complete named or fork snapshot. `AlreadyExists` if the
    /// sandbox has a live snapshot of that name.
    async fn insert_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotRecord, StoreError>;

    async fn get_snapshot(&self, id: &SnapshotId) -> Result<Option<SnapshotRecord>, StoreError>;

    /// Every snapshot taken from `sandbox`, deleted ones included, oldest
    /// first.
    async fn list_snapshots(&self, sandbox: &SandboxId) -> Result<Vec<SnapshotRecord>, StoreError>;

    /// Sandboxes started from `snapshot`, oldest first (lineage).
    async fn sandboxes_from_snapshot(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Vec<SandboxId>, StoreError>;

    /// Marks the snapshot's image deleted (the row stays for lineage).
    /// Idempotent; `NotFound` for an unknown id.
    async fn mark_snapshot_deleted(&self, id: &SnapshotId) -> Result<(), StoreError>;

    /// Snapshots whose image nothing refers to any more: pause images of
    /// sandboxes that are no longer pausing, paused or resuming from them;
    /// named snapshots of killed or failed sandboxes; fork images no
    /// sandbox is still being created from.
    async fn unreferenced_snapshots(&self) -> Result<Vec<SnapshotRecord>, StoreError>;

    /// Ids of every image the snapshot store must keep: snapshots not
    /// marked deleted, and template snapshots.
    async fn live_snapshot_ids(&self) -> Result<Vec<SnapshotId>, StoreError>;

    /// The template versions that live sandboxes (not killed or failed)
    /// and snapshots with an image run on: (template, version), the version
    /// `None` for rows older than template versions.
    async fn template_versions_in_use(&self) -> Result<Vec<(String, Option<String>)>, StoreError>;

    /// Records `version` as the template version of every sandbox and
    /// snapshot of `template` that has none (rows older than versions).
    async fn pin_template_version(&self, template: &str, version: &str) -> Result<u64, StoreError>;
    // ---- Template snapshots (see `TemplateSnapshotRecord`) ----

    /// Records the template's image, replacing its previous row, which is
    /// returned (its image is the caller's to delete).
    async fn put_template_snapshot(
        &self,
        rec: &TemplateSnapshotRecord,
    ) -> Result<Option<TemplateSnapshotRecord>, StoreError>;

    async fn template_snapshot(
        &self,
        template: &str,
    ) -> Result<Option<TemplateSnapshotRecord>, StoreError>;

    /// Every template snapshot, by template name.
    async fn template_snapshots(&self) -> Result<Vec<TemplateSnapshotRecord>, StoreError>;

    /// Deletes the template's row if it still names `snapshot`; whether
    /// it did (only then is the image the caller's to delete).
    async fn delete_template_snapshot(
        &self,
        template: &str,
        snapshot: &SnapshotId,
    ) -> Result<bool, StoreError>;

    /// Records API activity on `id` at `at`. `NotFound` for an unknown id.
    async fn touch_sandbox(&self, id: &SandboxId, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Running sandboxes with an idle timeout whose last activity is at
    /// least that long before `now`, longest idle first.
    async fn idle_sandboxes(&self, now: OffsetDateTime) -> Result<Vec<SandboxRecord>, StoreError>;

    /// Paused sandboxes that have been paused for their `paused_ttl_s` at
    /// `now`, earliest first.
    async fn expired_paused(&self, now: OffsetDateTime) -> Result<Vec<SandboxId>, StoreError>;

    // ---- Network ----

    /// Replaces the sandbox's network policy. `NotFound` for an unknown id.
    async fn set_network(
        &self,
        id: &SandboxId,
        policy: &NetworkPolicy,
    ) -> Result<SandboxRecord, StoreError>;

    /// Appends network events in one transaction, keeping at most
    /// [`MAX_NETWORK_EVENTS`] per sandbox.
    async fn append_network_events(&self, events: &[NewNetEvent]) -> Result<(), StoreError>;

    /// The sandbox's events with `seq` below `before` (all for `None`),
    /// newest first, at most `limit`.
    async fn network_events(
        &self,
        id: &SandboxId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NetEventRecord>, StoreError>;
    // ---- Team secrets ----

    /// Creates the secret `(team, name)` at version 1 or replaces its
    /// ciphertext, counting one more version (keeping its creation time and
    /// creator), as `write` allows, in one transaction. `NotFound` if the
    /// team does not exist.
    async fn put_secret(
        &self,
        secret: SecretRecord,
        write: SecretWrite,
    ) -> Result<StoredSecret, StoreError>;

    async fn get_secret(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<Option<SecretRecord>, StoreError>;

    /// The team's secrets, by name.
    async fn list_secrets(&self, team: &TeamId) -> Result<Vec<SecretRecord>, StoreError>;

    /// `NotFound` if the team has no such secret.
    async fn delete_secret(&self, team: &TeamId, name: &str) -> Result<(), StoreError>;

    // ---- Access grants ----

    /// A grant of `kind` to `key` for `sandbox`: the key's existing one if
    /// it is still valid after `reuse_until`, else `new` (inserted). Expired
    /// grants of the sandbox are deleted in the same transaction.
    async fn issue_grant(
        &self,
        new: GrantRecord,
        reuse_until: OffsetDateTime,
    ) -> Result<GrantRecord, StoreError>;

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError>;

    /// Unexpired grants of `kind` for sandboxes that are not dead.
    async fn live_grants(
        &self,
        kind: GrantKind,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRecord>, StoreError>;

    /// Deletes every grant for `sandbox`; returns how many there were.
    async fn delete_grants(&self, sandbox: &SandboxId) -> Result<u64, StoreError>;

    // ---- Sandboxes' inboxes ----

    /// Appends `new` to its sandbox's inbox with the next sequence number,
    /// or finds the event already sent with its `dedupe_key`. `NotFound`
    /// for an unknown sandbox, `QuotaExceeded` once the inbox holds
    /// `max_events`.
    async fn append_event(
        &self,
        new: NewEvent,
        max_events: u64,
    ) -> Result<AppendedEvent, StoreError>;

    /// Up to `limit` events of `sandbox` after sequence number `after`, in
    /// order.
    async fn list_events(
        &self,
        sandbox: &SandboxId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// The sandbox's inbox; `None` for an unknown sandbox.
    async fn inbox(&self, sandbox: &SandboxId) -> Result<Option<InboxRecord>, StoreError>;

    /// Replaces how the sandbox's inbox takes events. `NotFound` for an
    /// unknown sandbox.
    async fn set_inbox_settings(
        &self,
        sandbox: &SandboxId,
        settings: &InboxSettings,
    ) -> Result<InboxRecord, StoreError>;

    /// Hands the sandbox up to `limit` unacknowledged events after
    /// `after` (an `after` beyond the newest event counts from the
    /// acknowledged one), in order, marking first deliveries at `now`.
    async fn take_events(
        &self,
        sandbox: &SandboxId,
        after: u64,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<EventRecord>, StoreError>;

    /// Acknowledges every event of the sandbox up to `seq` at `now`;
    /// returns the inbox before and after. Acknowledging what is already
    /// acknowledged changes nothing. `NotFound` for an unknown sandbox;
    /// `InvalidSeq` for a `seq` beyond the newest event.
    async fn ack_events(
        &self,
        sandbox: &SandboxId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<(InboxRecord, InboxRecord), StoreError>;

    /// Gives the new sandbox `branch` the inbox of `parent` as it stood at
    /// event `upto`: its settings, numbering and acknowledgement, and
    /// copies of the events it had not acknowledged.
    async fn fork_inbox(
        &self,
        parent: &SandboxId,
        branch: &SandboxId,
        upto: u64,
    ) -> Result<(), StoreError>;

    /// Deletes events acknowledged before `before`; returns how many.
    async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Inboxes of running sandboxes that have a handler and events
    /// waiting for it.
    async fn pending_handlers(&self) -> Result<Vec<InboxRecord>, StoreError>;

    // ---- Sources of events: hooks and timers ----

    /// Inserts a hook with its subscriptions in one transaction.
    /// `AlreadyExists` if the id is taken, `NotFound` if its team or a
    /// subscribed sandbox does not exist.
    async fn insert_hook(&self, hook: HookRecord) -> Result<(), StoreError>;

    /// Adds `sub` to the team's hook under the next subscription id (its
    /// `id` is ignored) if the hook has fewer than `max`; returns the id.
    /// `NotFound` if the team has no such hook or the sandbox does not
    /// exist, `QuotaExceeded` at `max`.
    async fn add_hook_subscription(
        &self,
        team: &TeamId,
        hook: &str,
        sub: Subscription,
        max: u32,
    ) -> Result<u32, StoreError>;

    /// Removes subscription `id` of the team's hook. `NotFound` if the team
    /// has no such hook or the hook no such subscription.
    async fn remove_hook_subscription(
        &self,
        team: &TeamId,
        hook: &str,
        id: u32,
    ) -> Result<(), StoreError>;

    /// The hook with its subscriptions, whatever its team.
    async fn get_hook(&self, id: &str) -> Result<Option<HookRecord>, StoreError>;

    /// The team's hooks, oldest first.
    async fn list_hooks(&self, team: &TeamId) -> Result<Vec<HookRecord>, StoreError>;

    /// Deletes the team's hook, its subscriptions and its seen deliveries.
    /// `NotFound` if the team has no such hook.
    async fn delete_hook(&self, team: &TeamId, id: &str) -> Result<(), StoreError>;

    /// Counts one delivery to the hook as accepted or rejected, at `at`.
    async fn count_hook_delivery(
        &self,
        id: &str,
        accepted: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Whether the hook has accepted the delivery id (within the window
    /// kept, see [`Store::forget_hook_deliveries`]).
    async fn hook_delivery_seen(&self, hook: &str, delivery: &str) -> Result<bool, StoreError>;

    /// Remembers that the hook accepted the delivery id at `at`; idempotent,
    /// and a no-op for a hook deleted meanwhile.
    async fn note_hook_delivery(
        &self,
        hook: &str,
        delivery: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Forgets delivery ids seen before `seen_before`; returns how many.
    async fn forget_hook_deliveries(&self, seen_before: OffsetDateTime) -> Result<u64, StoreError>;

    /// Inserts a timer if its sandbox has fewer than `max_pending`, in one
    /// transaction. `QuotaExceeded` past it, `NotFound` for an unknown
    /// sandbox, `AlreadyExists` if the id is taken.
    async fn insert_timer(&self, timer: TimerRecord, max_pending: u64) -> Result<(), StoreError>;

    /// The sandbox's pending timers, soonest first.
    async fn list_timers(&self, sandbox: &SandboxId) -> Result<Vec<TimerRecord>, StoreError>;

    /// Up to `limit` timers of every sandbox due at `now`, soonest first.
    async fn due_timers(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<TimerRecord>, StoreError>;

    /// Deletes the sandbox's timer. `NotFound` if it has no such timer.
    async fn delete_timer(&self, sandbox: &SandboxId, id: &str) -> Result<(), StoreError>;
    // ---- Lifecycle webhooks out ----

    /// Inserts a registration if its team holds fewer than `max_per_team`.
    /// `QuotaExceeded` past it, `NotFound` for an unknown team.
    async fn insert_webhook(
        &self,
        webhook: WebhookRecord,
        max_per_team: u32,
    ) -> Result<(), StoreError>;

    async fn get_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError>;

    /// The team's registrations, oldest first.
    async fn list_webhooks(&self, team: &TeamId) -> Result<Vec<WebhookRecord>, StoreError>;

    /// Replaces a registration's name, URL, events, enabled flag and sealed
    /// secret. `NotFound` for an unknown id.
    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError>;

    /// Deletes a registration with its pending and past deliveries.
    /// `NotFound` for an unknown id.
    async fn delete_webhook(&self, id: &str) -> Result<(), StoreError>;

    /// Records a lifecycle event and, in the same transaction, one pending
    /// delivery (due at the event's time) per enabled registration of its
    /// team that wants its type; returns how many were enqueued.
    async fn record_lifecycle_event(&self, event: LifecycleEventRecord) -> Result<u64, StoreError>;

    /// A sandbox's lifecycle events by time, one page of them.
    async fn sandbox_lifecycle_events(
        &self,
        sandbox: &str,
        page: &EventPage,
    ) -> Result<Vec<LifecycleEventRecord>, StoreError>;

    /// Pending deliveries due at `now`, the most overdue first.
    async fn due_deliveries(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Records one attempt and the delivery's next state in one
    /// transaction; a delivery deleted meanwhile is left alone.
    async fn record_delivery_attempt(
        &self,
        webhook: &str,
        event: &str,
        attempt: AttemptRecord,
        next: AttemptNext,
    ) -> Result<(), StoreError>;

    /// The registration's deliveries, newest event first, each with its
    /// attempts.
    async fn webhook_deliveries(
        &self,
        webhook: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Deletes lifecycle events from before `before` that no pending
    /// delivery still needs (their deliveries and attempts go with them).
    async fn prune_lifecycle_events(&self, before: OffsetDateTime) -> Result<u64, StoreError>;

    // ---- Volumes (see `volume`) ----

    /// Inserts a volume. `AlreadyExists` if the team has one of that name,
    /// `NotFound` if the team does not exist.
    async fn create_volume(&self, volume: &VolumeRecord) -> Result<VolumeRecord, StoreError>;

    async fn get_volume(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<Option<VolumeRecord>, StoreError>;

    /// The team's volumes, by name.
    async fn list_volumes(&self, team: &TeamId) -> Result<Vec<VolumeRecord>, StoreError>;

    /// Deletes the team's volume `name` and returns it. `NotFound` if there
    /// is none, `InUse` while a live sandbox mounts it.
    async fn delete_volume(&self, team: &TeamId, name: &str) -> Result<VolumeRecord, StoreError>;

    /// Records that `sandbox` mounts each `(volume, path)`, in one
    /// transaction. `NotFound` if a volume (or the sandbox) is gone.
    async fn attach_volumes(
        &self,
        sandbox: &SandboxId,
        mounts: &[(warren_core::VolumeId, String)],
    ) -> Result<(), StoreError>;

    /// The volumes `sandbox` mounts, by path.
    async fn sandbox_volumes(
        &self,
        sandbox: &SandboxId,
    ) -> Result<Vec<VolumeMountRecord>, StoreError>;

    // ---- Warm pools (see `pool`) ----

    /// Every pool's settings, by template.
    async fn list_pools(&self) -> Result<Vec<PoolRecord>, StoreError>;

    /// Creates or replaces the pool of `pool.template`; returns it as stored.
    async fn put_pool(&self, pool: &PoolRecord) -> Result<PoolRecord, StoreError>;

    /// Deletes the pool of `template`. `NotFound` if there is none.
    async fn delete_pool(&self, template: &str) -> Result<(), StoreError>;

    /// Hands the pooled sandbox `id` to `claim.team` if it is still running
    /// in the pool team and fits that team's quota, in one transaction:
    /// `Ok(None)` if it is no longer claimable, `QuotaExceeded` if it does
    /// not fit. The row's creation, state and activity times become now.
    async fn claim_pooled_sandbox(
        &self,
        id: &SandboxId,
        claim: &PoolClaim,
    ) -> Result<Option<SandboxRecord>, StoreError>;

    // ---- Metering (see `usage`) ----

    /// Adds `samples` to the sums, stores `marks` (replacing each
    /// sandbox's) and deletes the marks of `forget`, in one transaction.
    async fn record_usage(
        &self,
        samples: &[UsageSample],
        marks: &[MeterMark],
        forget: &[SandboxId],
    ) -> Result<(), StoreError>;

    /// Every stored meter mark.
    async fn meter_marks(&self) -> Result<Vec<MeterMark>, StoreError>;

    /// The stored bytes of live snapshots (pause images included), summed
    /// by the sandbox they were taken of.
    async fn snapshot_bytes_by_sandbox(&self) -> Result<Vec<(SandboxId, u64)>, StoreError>;

    /// Usage summed by `query.group_by`, largest CPU time first.
    async fn usage_report(&self, query: &UsageQuery) -> Result<Vec<UsageGroup>, StoreError>;

    /// The metered minutes of sandbox `id` from Unix minute `since` on,
    /// oldest first (minutes with nothing metered are absent).
    async fn usage_minutes(
        &self,
        id: &SandboxId,
        since: i64,
    ) -> Result<Vec<UsageSample>, StoreError>;

    // ---- Budgets (see `budget`) ----

    /// Inserts `budget`, or replaces its amount, action and marks when its
    /// id exists in its team (`NotFound` when it exists in another).
    async fn put_budget(&self, budget: &BudgetRecord) -> Result<BudgetRecord, StoreError>;

    async fn get_budget(&self, id: &str) -> Result<Option<BudgetRecord>, StoreError>;

    /// The team's budgets, or every team's.
    async fn list_budgets(&self, team: Option<&TeamId>) -> Result<Vec<BudgetRecord>, StoreError>;

    /// `NotFound` unless the team has it.
    async fn delete_budget(&self, team: &TeamId, id: &str) -> Result<(), StoreError>;

    /// Sets one of the budget's once-per-period marks to `period`; whether
    /// this call set it (false: it already named that period).
    async fn mark_budget(
        &self,
        id: &str,
        which: BudgetMark,
        period: &str,
    ) -> Result<bool, StoreError>;

    // ---- Anomaly rules ----

    /// Every stored rule with its scope (a team id, or `*`).
    async fn rules(&self) -> Result<Vec<(String, warren_core::rules::Rule)>, StoreError>;

    /// Replaces the rules of `scope` (one per kind, checked by the caller).
    async fn replace_rules(
        &self,
        scope: &str,
        rules: &[warren_core::rules::Rule],
        by: &KeyId,
    ) -> Result<(), StoreError>;
}
