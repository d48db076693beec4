//! [`Store`] on one SQLite file: the embedded, single-node default.
//!
//! Connections:
//! - one writer connection (a pool of exactly one): writers queue for it in
//!   the pool instead of spinning on SQLite's busy handler, and every
//!   read-then-write runs in a `BEGIN IMMEDIATE` transaction on it;
//! - a few reader connections with `query_only` on, which in WAL mode read
//!   the last committed state without blocking the writer.
//!
//! Durability: WAL journal with `synchronous=FULL`. In WAL mode `NORMAL`
//! already keeps every committed transaction across a crash of the daemon
//! process (the WAL is written before the commit returns; only the fsync is
//! deferred), but an OS crash or power loss could roll back the last
//! acknowledged transactions. `FULL` fsyncs the WAL at every commit, so an
//! acknowledged state change also survives power loss. State changes happen
//! at lifecycle pace (create, pause, kill), not per request, so one fsync
//! per commit is cheap (measured on this project's build hosts: ~0.5 ms per
//! commit with `FULL` against ~0.09 ms with `NORMAL`), and the state they
//! record (a checkpoint written, a sandbox killed) must not be forgotten
//! after a reboot.
//!
//! Migrations in `migrations/sqlite/` are embedded and applied at open. They
//! are append-only: sqlx keeps a checksum of every applied file and refuses
//! a database whose applied migration was edited, and it refuses a database
//! written by a newer Warren (a migration this build does not know).
//!
//! The database file is created with mode 0600: sandbox environments may
//! carry secrets.

mod audit;
mod budgets;
mod codec;
mod events;
mod grants;
mod hooks;
mod keys;
mod network;
mod pools;
mod quotas;
mod rules;
mod sandboxes;
mod secrets;
mod snapshots;
mod teams;
mod template_snapshots;
mod template_versions;
mod usage;
mod volumes;
mod webhooks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use warren_core::quota::{Quota, Usage};
use warren_core::{KeyId, PauseMode, SandboxId, SandboxState, SnapshotId, TeamId, UserId};

pub use audit::SqliteAudit;

use warren_core::inbox::InboxSettings;
use warren_core::network::NetworkPolicy;

use crate::{
    AppendedEvent, EventRecord, GrantKind, GrantRecord, HookRecord, InboxRecord, KeyRecord,
    NetEventRecord, NewEvent, NewNetEvent, NewSandbox, NewSnapshot, SandboxFilter, SandboxRecord,
    SecretRecord, SecretWrite, SnapshotRecord, Store, StoreError, StoredSecret, Subscription,
    TeamRecord, TimerRecord, UserRecord,
};
use crate::{AttemptNext, AttemptRecord, DeliveryRecord, LifecycleEventRecord, WebhookRecord};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Tunables of a [`SqliteStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    /// Network slots are `0..max_net_slots`; creating a sandbox when all are
    /// held (by live sandboxes or by dead ones not yet released) fails with
    /// [`StoreError::SlotsExhausted`]. Set it to what the network layer can
    /// address.
    pub max_net_slots: u32,
    /// Reader connections (at least one is used).
    pub readers: u32,
    /// How long a connection waits for a lock held by another process
    /// before failing.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            max_net_slots: 1024,
            readers: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The SQLite store. Cheap to clone: clones share the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    max_net_slots: u32,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` with the default
    /// [`SqliteConfig`] and applies pending migrations.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens (creating if missing) the database at `path` and applies
    /// pending migrations.
    pub async fn open_with(
        path: impl AsRef<Path>,
        config: SqliteConfig,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let open_error = |source| StoreError::Open {
            path: PathBuf::from(path),
            source,
        };
        create_private(path)
            .await
            .map_err(|e| open_error(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .before_acquire(|conn, _| Box::pin(outside_transaction(conn)))
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&writer).await?;
        tracing::debug!(path = %path.display(), "store opened and migrated");
        let reader = SqlitePoolOptions::new()
            .max_connections(config.readers.max(1))
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(open_error)?;
        Ok(Self {
            writer,
            reader,
            max_net_slots: config.max_net_slots,
        })
    }

    /// Closes every connection, waiting for queries in flight. Not needed
    /// for durability (every commit is already on disk); it folds the WAL
    /// back into the main file for a tidy shutdown.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Creates an empty database file readable by its owner only, unless it
/// exists already: rows hold sandbox environments, which may carry secrets.
/// SQLite gives the `-wal` and `-shm` files the same mode.
async fn create_private(path: &Path) -> std::io::Result<()> {
    match tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_sandbox(&self, new: NewSandbox) -> Result<SandboxRecord, StoreError> {
        sandboxes::create(&self.writer, self.max_net_slots, new, false).await
    }

    async fn create_sandbox_in_quota(&self, new: NewSandbox) -> Result<SandboxRecord, StoreError> {
        sandboxes::create(&self.writer, self.max_net_slots, new, true).await
    }

    async fn begin_resume_in_quota(&self, id: &SandboxId) -> Result<SandboxRecord, StoreError> {
        quotas::begin_resume(&self.writer, id).await
    }

    async fn get_quota(&self, team: &TeamId) -> Result<Option<Quota>, StoreError> {
        quotas::get(&self.reader, team).await
    }

    async fn set_quota(&self, team: &TeamId, quota: &Quota, by: &KeyId) -> Result<(), StoreError> {
        quotas::set(&self.writer, team, quota, by).await
    }

    async fn team_usage(&self, team: &TeamId) -> Result<Usage, StoreError> {
        quotas::usage_now(&self.reader, team).await
    }

    async fn get_sandbox(&self, id: &SandboxId) -> Result<Option<SandboxRecord>, StoreError> {
        sandboxes::get(&self.reader, id).await
    }

    async fn list_sandboxes(
        &self,
        filter: &SandboxFilter,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        sandboxes::list(&self.reader, filter).await
    }

    async fn transition(
        &self,
        id: &SandboxId,
        from: SandboxState,
        to: SandboxState,
    ) -> Result<SandboxRecord, StoreError> {
        sandboxes::transition(&self.writer, id, from, to).await
    }

    async fn set_expiry(
        &self,
        id: &SandboxId,
        expires_at: OffsetDateTime,
    ) -> Result<SandboxRecord, StoreError> {
        sandboxes::set_expiry(&self.writer, id, expires_at).await
    }

    async fn expired_sandboxes(&self, now: OffsetDateTime) -> Result<Vec<SandboxId>, StoreError> {
        sandboxes::expired(&self.reader, now).await
    }

    async fn release_slot(&self, id: &SandboxId) -> Result<(), StoreError> {
        sandboxes::release(&self.writer, id).await
    }

    async fn unreleased_sandboxes(&self) -> Result<Vec<SandboxId>, StoreError> {
        sandboxes::unreleased(&self.reader).await
    }

    async fn delete_sandbox(&self, id: &SandboxId) -> Result<(), StoreError> {
        sandboxes::delete(&self.writer, id).await
    }

    async fn purge_sandboxes(&self, ended_before: OffsetDateTime) -> Result<u64, StoreError> {
        sandboxes::purge(&self.writer, ended_before).await
    }

    async fn insert_key(&self, key: KeyRecord) -> Result<(), StoreError> {
        keys::insert(&self.writer, &key).await
    }

    async fn get_key(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        keys::get(&self.reader, id).await
    }

    async fn list_keys(&self, team: Option<&TeamId>) -> Result<Vec<KeyRecord>, StoreError> {
        keys::list(&self.reader, team).await
    }

    async fn revoke_key(&self, id: &KeyId, at: OffsetDateTime) -> Result<(), StoreError> {
        keys::revoke(&self.writer, id, at).await
    }

    async fn create_team(
        &self,
        team: TeamRecord,
        admin: UserRecord,
        key: KeyRecord,
    ) -> Result<(), StoreError> {
        teams::create(&self.writer, &team, &admin, &key).await
    }

    async fn get_team(&self, id: &TeamId) -> Result<Option<TeamRecord>, StoreError> {
        teams::get(&self.reader, id).await
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>, StoreError> {
        teams::list(&self.reader).await
    }

    async fn insert_user(&self, user: UserRecord) -> Result<(), StoreError> {
        teams::add_user(&self.writer, &user).await
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        teams::get_user(&self.reader, id).await
    }

    async fn list_users(&self, team: &TeamId) -> Result<Vec<UserRecord>, StoreError> {
        teams::list_users(&self.reader, team).await
    }

    async fn commit_pause(
        &self,
        id: &SandboxId,
        snapshot: NewSnapshot,
        mode: PauseMode,
    ) -> Result<SandboxRecord, StoreError> {
        snapshots::commit_pause(&self.writer, id, snapshot, mode).await
    }

    async fn finish_resume(&self, id: &SandboxId) -> Result<SandboxRecord, StoreError> {
        snapshots::finish_resume(&self.writer, id).await
    }

    async fn insert_snapshot(&self, snapshot: NewSnapshot) -> Result<SnapshotRecord, StoreError> {
        snapshots::insert_one(&self.writer, snapshot).await
    }

    async fn get_snapshot(&self, id: &SnapshotId) -> Result<Option<SnapshotRecord>, StoreError> {
        snapshots::get(&self.reader, id).await
    }

    async fn list_snapshots(&self, sandbox: &SandboxId) -> Result<Vec<SnapshotRecord>, StoreError> {
        snapshots::list(&self.reader, sandbox).await
    }

    async fn sandboxes_from_snapshot(
        &self,
        snapshot: &SnapshotId,
    ) -> Result<Vec<SandboxId>, StoreError> {
        snapshots::children(&self.reader, snapshot).await
    }

    async fn mark_snapshot_deleted(&self, id: &SnapshotId) -> Result<(), StoreError> {
        snapshots::mark_deleted(&self.writer, id).await
    }

    async fn unreferenced_snapshots(&self) -> Result<Vec<SnapshotRecord>, StoreError> {
        snapshots::unreferenced(&self.reader).await
    }

    async fn live_snapshot_ids(&self) -> Result<Vec<SnapshotId>, StoreError> {
        snapshots::live_ids(&self.reader).await
    }

    async fn template_versions_in_use(&self) -> Result<Vec<(String, Option<String>)>, StoreError> {
        template_versions::in_use(&self.reader).await
    }

    async fn pin_template_version(&self, template: &str, version: &str) -> Result<u64, StoreError> {
        template_versions::pin(&self.writer, template, version).await
    }

    async fn put_template_snapshot(
        &self,
        rec: &crate::TemplateSnapshotRecord,
    ) -> Result<Option<crate::TemplateSnapshotRecord>, StoreError> {
        template_snapshots::put(&self.writer, rec).await
    }

    async fn template_snapshot(
        &self,
        template: &str,
    ) -> Result<Option<crate::TemplateSnapshotRecord>, StoreError> {
        template_snapshots::get(&self.reader, template).await
    }

    async fn template_snapshots(&self) -> Result<Vec<crate::TemplateSnapshotRecord>, StoreError> {
        template_snapshots::list(&self.reader).await
    }

    async fn delete_template_snapshot(
        &self,
        template: &str,
        snapshot: &SnapshotId,
    ) -> Result<bool, StoreError> {
        template_snapshots::delete(&self.writer, template, snapshot).await
    }

    async fn touch_sandbox(&self, id: &SandboxId, at: OffsetDateTime) -> Result<(), StoreError> {
        snapshots::touch(&self.writer, id, at).await
    }

    async fn idle_sandboxes(&self, now: OffsetDateTime) -> Result<Vec<SandboxRecord>, StoreError> {
        snapshots::idle(&self.reader, now).await
    }

    async fn expired_paused(&self, now: OffsetDateTime) -> Result<Vec<SandboxId>, StoreError> {
        snapshots::expired_paused(&self.reader, now).await
    }

    async fn set_network(
        &self,
        id: &SandboxId,
        policy: &NetworkPolicy,
    ) -> Result<SandboxRecord, StoreError> {
        network::set_policy(&self.writer, id, policy).await
    }

    async fn append_network_events(&self, events: &[NewNetEvent]) -> Result<(), StoreError> {
        network::append(&self.writer, events).await
    }

    async fn network_events(
        &self,
        id: &SandboxId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<NetEventRecord>, StoreError> {
        network::list(&self.reader, id, before, limit).await
    }

    async fn put_secret(
        &self,
        secret: SecretRecord,
        write: SecretWrite,
    ) -> Result<StoredSecret, StoreError> {
        secrets::put(&self.writer, &secret, write).await
    }

    async fn get_secret(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<Option<SecretRecord>, StoreError> {
        secrets::get(&self.reader, team, name).await
    }

    async fn list_secrets(&self, team: &TeamId) -> Result<Vec<SecretRecord>, StoreError> {
        secrets::list(&self.reader, team).await
    }

    async fn delete_secret(&self, team: &TeamId, name: &str) -> Result<(), StoreError> {
        secrets::delete(&self.writer, team, name).await
    }

    async fn issue_grant(
        &self,
        new: GrantRecord,
        reuse_until: OffsetDateTime,
    ) -> Result<GrantRecord, StoreError> {
        grants::issue(&self.writer, &new, reuse_until).await
    }

    async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        grants::get(&self.reader, id).await
    }

    async fn live_grants(
        &self,
        kind: GrantKind,
        now: OffsetDateTime,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        grants::live(&self.reader, kind, now).await
    }

    async fn delete_grants(&self, sandbox: &SandboxId) -> Result<u64, StoreError> {
        grants::delete_for_sandbox(&self.writer, sandbox).await
    }

    async fn append_event(
        &self,
        new: NewEvent,
        max_events: u64,
    ) -> Result<AppendedEvent, StoreError> {
        events::append(&self.writer, &new, max_events).await
    }

    async fn list_events(
        &self,
        sandbox: &SandboxId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        events::list(&self.reader, sandbox, after, limit).await
    }

    async fn inbox(&self, sandbox: &SandboxId) -> Result<Option<InboxRecord>, StoreError> {
        events::inbox(&self.reader, sandbox).await
    }

    async fn set_inbox_settings(
        &self,
        sandbox: &SandboxId,
        settings: &InboxSettings,
    ) -> Result<InboxRecord, StoreError> {
        events::set_settings(&self.writer, sandbox, settings).await
    }

    async fn take_events(
        &self,
        sandbox: &SandboxId,
        after: u64,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<EventRecord>, StoreError> {
        events::take(&self.writer, sandbox, after, limit, now).await
    }

    async fn ack_events(
        &self,
        sandbox: &SandboxId,
        seq: u64,
        now: OffsetDateTime,
    ) -> Result<(InboxRecord, InboxRecord), StoreError> {
        events::ack(&self.writer, sandbox, seq, now).await
    }

    async fn fork_inbox(
        &self,
        parent: &SandboxId,
        branch: &SandboxId,
        upto: u64,
    ) -> Result<(), StoreError> {
        events::fork(&self.writer, parent, branch, upto).await
    }

    async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        events::prune(&self.writer, before).await
    }

    async fn pending_handlers(&self) -> Result<Vec<InboxRecord>, StoreError> {
        events::pending_handlers(&self.reader).await
    }

    async fn insert_hook(&self, hook: HookRecord) -> Result<(), StoreError> {
        hooks::insert(&self.writer, &hook).await
    }

    async fn add_hook_subscription(
        &self,
        team: &TeamId,
        hook: &str,
        sub: Subscription,
        max: u32,
    ) -> Result<u32, StoreError> {
        hooks::subscribe(&self.writer, team, hook, &sub, max).await
    }

    async fn remove_hook_subscription(
        &self,
        team: &TeamId,
        hook: &str,
        id: u32,
    ) -> Result<(), StoreError> {
        hooks::unsubscribe(&self.writer, team, hook, id).await
    }

    async fn get_hook(&self, id: &str) -> Result<Option<HookRecord>, StoreError> {
        hooks::get_hook(&self.reader, id).await
    }

    async fn list_hooks(&self, team: &TeamId) -> Result<Vec<HookRecord>, StoreError> {
        hooks::list_hooks(&self.reader, team).await
    }

    async fn delete_hook(&self, team: &TeamId, id: &str) -> Result<(), StoreError> {
        hooks::delete_hook(&self.writer, team, id).await
    }

    async fn count_hook_delivery(
        &self,
        id: &str,
        accepted: bool,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        hooks::count_delivery(&self.writer, id, accepted, at).await
    }

    async fn hook_delivery_seen(&self, hook: &str, delivery: &str) -> Result<bool, StoreError> {
        hooks::delivery_seen(&self.reader, hook, delivery).await
    }

    async fn note_hook_delivery(
        &self,
        hook: &str,
        delivery: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        hooks::note_delivery(&self.writer, hook, delivery, at).await
    }

    async fn forget_hook_deliveries(&self, seen_before: OffsetDateTime) -> Result<u64, StoreError> {
        hooks::forget_deliveries(&self.writer, seen_before).await
    }

    async fn insert_timer(&self, timer: TimerRecord, max_pending: u64) -> Result<(), StoreError> {
        hooks::insert_timer(&self.writer, &timer, max_pending).await
    }

    async fn list_timers(&self, sandbox: &SandboxId) -> Result<Vec<TimerRecord>, StoreError> {
        hooks::list_timers(&self.reader, sandbox).await
    }

    async fn due_timers(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<TimerRecord>, StoreError> {
        hooks::due_timers(&self.reader, now, limit).await
    }

    async fn delete_timer(&self, sandbox: &SandboxId, id: &str) -> Result<(), StoreError> {
        hooks::delete_timer(&self.writer, sandbox, id).await
    }

    async fn insert_webhook(
        &self,
        webhook: WebhookRecord,
        max_per_team: u32,
    ) -> Result<(), StoreError> {
        webhooks::insert(&self.writer, &webhook, max_per_team).await
    }

    async fn get_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        webhooks::get(&self.reader, id).await
    }

    async fn list_webhooks(&self, team: &TeamId) -> Result<Vec<WebhookRecord>, StoreError> {
        webhooks::list(&self.reader, team).await
    }

    async fn update_webhook(&self, webhook: &WebhookRecord) -> Result<(), StoreError> {
        webhooks::update(&self.writer, webhook).await
    }

    async fn delete_webhook(&self, id: &str) -> Result<(), StoreError> {
        webhooks::delete(&self.writer, id).await
    }

    async fn record_lifecycle_event(&self, event: LifecycleEventRecord) -> Result<u64, StoreError> {
        webhooks::record_event(&self.writer, &event).await
    }

    async fn sandbox_lifecycle_events(
        &self,
        sandbox: &str,
        page: &crate::EventPage,
    ) -> Result<Vec<LifecycleEventRecord>, StoreError> {
        webhooks::sandbox_events(&self.reader, sandbox, page).await
    }

    async fn due_deliveries(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        webhooks::due(&self.reader, now, limit).await
    }

    async fn record_delivery_attempt(
        &self,
        webhook: &str,
        event: &str,
        attempt: AttemptRecord,
        next: AttemptNext,
    ) -> Result<(), StoreError> {
        webhooks::record_attempt(&self.writer, webhook, event, &attempt, next).await
    }

    async fn webhook_deliveries(
        &self,
        webhook: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        webhooks::deliveries(&self.reader, webhook, limit).await
    }

    async fn prune_lifecycle_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        webhooks::prune(&self.writer, before).await
    }

    async fn create_volume(
        &self,
        volume: &crate::VolumeRecord,
    ) -> Result<crate::VolumeRecord, StoreError> {
        volumes::create(&self.writer, volume).await
    }

    async fn get_volume(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<Option<crate::VolumeRecord>, StoreError> {
        volumes::get(&self.reader, team, name).await
    }

    async fn list_volumes(&self, team: &TeamId) -> Result<Vec<crate::VolumeRecord>, StoreError> {
        volumes::list(&self.reader, team).await
    }

    async fn delete_volume(
        &self,
        team: &TeamId,
        name: &str,
    ) -> Result<crate::VolumeRecord, StoreError> {
        volumes::delete(&self.writer, team, name).await
    }

    async fn attach_volumes(
        &self,
        sandbox: &SandboxId,
        mounts: &[(warren_core::VolumeId, String)],
    ) -> Result<(), StoreError> {
        volumes::attach(&self.writer, sandbox, mounts).await
    }

    async fn sandbox_volumes(
        &self,
        sandbox: &SandboxId,
    ) -> Result<Vec<crate::VolumeMountRecord>, StoreError> {
        volumes::of_sandbox(&self.reader, sandbox).await
    }

    async fn list_pools(&self) -> Result<Vec<crate::PoolRecord>, StoreError> {
        pools::list(&self.reader).await
    }

    async fn put_pool(&self, pool: &crate::PoolRecord) -> Result<crate::PoolRecord, StoreError> {
        pools::put(&self.writer, pool).await
    }

    async fn delete_pool(&self, template: &str) -> Result<(), StoreError> {
        pools::delete(&self.writer, template).await
    }

    async fn claim_pooled_sandbox(
        &self,
        id: &SandboxId,
        claim: &crate::PoolClaim,
    ) -> Result<Option<SandboxRecord>, StoreError> {
        pools::claim(&self.writer, id, claim).await
    }

    async fn record_usage(
        &self,
        samples: &[crate::UsageSample],
        marks: &[crate::MeterMark],
        forget: &[SandboxId],
    ) -> Result<(), StoreError> {
        usage::record(&self.writer, samples, marks, forget).await
    }

    async fn meter_marks(&self) -> Result<Vec<crate::MeterMark>, StoreError> {
        usage::marks(&self.reader).await
    }

    async fn snapshot_bytes_by_sandbox(&self) -> Result<Vec<(SandboxId, u64)>, StoreError> {
        usage::snapshot_bytes(&self.reader).await
    }

    async fn usage_report(
        &self,
        query: &crate::UsageQuery,
    ) -> Result<Vec<crate::UsageGroup>, StoreError> {
        usage::report(&self.reader, query).await
    }

    async fn usage_minutes(
        &self,
        id: &SandboxId,
        since: i64,
    ) -> Result<Vec<crate::UsageSample>, StoreError> {
        usage::minutes(&self.reader, id, since).await
    }

    async fn put_budget(
        &self,
        budget: &crate::BudgetRecord,
    ) -> Result<crate::BudgetRecord, StoreError> {
        budgets::put(&self.writer, budget).await
    }

    async fn get_budget(&self, id: &str) -> Result<Option<crate::BudgetRecord>, StoreError> {
        budgets::get(&self.reader, id).await
    }

    async fn list_budgets(
        &self,
        team: Option<&TeamId>,
    ) -> Result<Vec<crate::BudgetRecord>, StoreError> {
        budgets::list(&self.reader, team).await
    }

    async fn delete_budget(&self, team: &TeamId, id: &str) -> Result<(), StoreError> {
        budgets::delete(&self.writer, team, id).await
    }

    async fn mark_budget(
        &self,
        id: &str,
        which: crate::BudgetMark,
        period: &str,
    ) -> Result<bool, StoreError> {
        budgets::mark(&self.writer, id, which, period).await
    }

    async fn rules(&self) -> Result<Vec<(String, warren_core::rules::Rule)>, StoreError> {
        rules::all(&self.reader).await
    }

    async fn replace_rules(
        &self,
        scope: &str,
        rules: &[warren_core::rules::Rule],
        by: &KeyId,
    ) -> Result<(), StoreError> {
        rules::replace(&self.writer, scope, rules, by).await
    }
}

/// Whether a pooled connection is fit to hand out: not stuck inside a
/// transaction. A transaction whose commit fails and whose rollback then
/// fails too (SQLite rolls back by itself on `SQLITE_FULL`, so the explicit
/// `ROLLBACK` finds none) leaves the driver counting an open transaction
/// forever, and every later `BEGIN` on that connection is refused. Such a
/// connection is discarded; the pool opens a fresh one. A rollback queued
/// by a dropped transaction is waited for first (one round trip, only when
/// a transaction is still counted).
async fn outside_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    sqlx::query("SELECT 1").execute(&mut *conn).await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("discarding a store connection left inside a failed transaction");
    }
    Ok(clean)
}
