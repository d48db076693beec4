//! Shared helpers: a store in a fresh temporary directory and sample rows.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use warren_core::{KeyId, Limits, Persistence, Role, SandboxId, SandboxState, TeamId, UserId};
use warren_store::{
    KeyRecord, NewSandbox, SandboxRecord, SqliteConfig, SqliteStore, Store, TeamRecord, UserRecord,
};

/// A store whose database lives in its own temporary directory, removed
/// when this is dropped.
pub struct TestDb {
    pub dir: TempDir,
    pub store: SqliteStore,
}

impl TestDb {
    pub async fn new() -> Self {
        Self::with_config(SqliteConfig::default()).await
    }

    pub async fn with_config(config: SqliteConfig) -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        let store = SqliteStore::open_with(dir.path().join("warren.db"), config)
            .await
            .expect("open store");
        seed(&store).await;
        Self { dir, store }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("warren.db")
    }

    /// A second, independent store on the same file (as another process
    /// would open it).
    pub async fn reopen(&self) -> SqliteStore {
        SqliteStore::open(self.path()).await.expect("reopen store")
    }

    /// A raw connection for writing rows the store would never write.
    pub async fn raw(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(self.path()),
        )
        .await
        .expect("raw connection")
    }
}

/// The team and user that [`key`] and [`new_sandbox`] belong to.
pub fn team_id() -> TeamId {
    "tfixture0000".parse().unwrap()
}

pub fn user_id() -> UserId {
    "ufixture0000".parse().unwrap()
}

/// Creates the fixture team with its user and an admin key.
pub async fn seed(store: &SqliteStore) {
    let now = millis(OffsetDateTime::now_utc());
    store
        .create_team(
            TeamRecord {
                id: team_id(),
                name: "fixture".into(),
                operator: true,
                created_at: now,
            },
            UserRecord {
                id: user_id(),
                team: team_id(),
                name: "alice".into(),
                created_at: now,
            },
            key("seed"),
        )
        .await
        .expect("seed team");
}

pub fn new_sandbox() -> NewSandbox {
    NewSandbox {
        id: SandboxId::generate(),
        template: "base".to_owned(),
        template_version: Some("0123456789abcdef".into()),
        limits: Limits::default(),
        env: BTreeMap::new(),
        metadata: BTreeMap::new(),
        team: team_id(),
        owner: user_id(),
        created_by: KeyId::generate(),
        expires_at: OffsetDateTime::now_utc() + Duration::minutes(5),
        persistence: Persistence::default(),
        source_snapshot: None,
        network: Default::default(),
        inbox: Default::default(),
    }
}

pub fn with_metadata(pairs: &[(&str, &str)]) -> NewSandbox {
    let mut new = new_sandbox();
    new.metadata = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    new
}

pub fn key(name: &str) -> KeyRecord {
    KeyRecord {
        id: KeyId::generate(),
        team: team_id(),
        user: user_id(),
        name: name.to_owned(),
        hash: vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0xff],
        role: Role::Member,
        scopes: None,
        created_at: millis(OffsetDateTime::now_utc()),
        expires_at: None,
        revoked_at: None,
    }
}

/// `t` truncated to the store's millisecond precision.
pub fn millis(t: OffsetDateTime) -> OffsetDateTime {
    let ns = t.unix_timestamp_nanos();
    OffsetDateTime::from_unix_timestamp_nanos(ns - ns.rem_euclid(1_000_000)).expect("valid time")
}

/// Creates a sandbox and moves it to running.
pub async fn running(store: &SqliteStore, new: NewSandbox) -> SandboxRecord {
    let created = store.create_sandbox(new).await.expect("create");
    store
        .transition(&created.id, SandboxState::Creating, SandboxState::Running)
        .await
        .expect("start")
}
