//! Teams, users, keys that belong to them, and the upgrade of a data
//! directory from before tenancy.

use crate::common;

use common::{TestDb, key, millis, new_sandbox, team_id};
use time::OffsetDateTime;
use warren_core::{KeyId, Role, Scope, TeamId, UserId};
use warren_store::{SandboxFilter, SqliteStore, Store, StoreError, TeamRecord, UserRecord};

fn team(name: &str, operator: bool) -> TeamRecord {
    TeamRecord {
        id: TeamId::generate(),
        name: name.into(),
        operator,
        created_at: millis(OffsetDateTime::now_utc()),
    }
}

fn user(team: &TeamId, name: &str) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        team: team.clone(),
        name: name.into(),
        created_at: millis(OffsetDateTime::now_utc()),
    }
}

#[tokio::test]
async fn a_team_comes_with_its_admin_and_key() {
    let db = TestDb::new().await;
    let t = team("acme", false);
    let u = user(&t.id, "bob");
    let mut k = key("bob's admin key");
    (k.team, k.user, k.role) = (t.id.clone(), u.id.clone(), Role::Admin);
    k.scopes = Some(vec![Scope::SandboxesRead, Scope::KeysManage]);
    k.expires_at = Some(millis(OffsetDateTime::now_utc() + time::Duration::days(1)));
    db.store
        .create_team(t.clone(), u.clone(), k.clone())
        .await
        .unwrap();

    assert_eq!(db.store.get_team(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(db.store.get_user(&u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(db.store.get_key(&k.id).await.unwrap(), Some(k.clone()));
    assert_eq!(db.store.list_users(&t.id).await.unwrap(), vec![u]);
    assert_eq!(db.store.list_keys(Some(&t.id)).await.unwrap(), vec![k]);
    let names: Vec<String> = db
        .store
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["fixture", "acme"]);
}

#[tokio::test]
async fn a_failed_team_creation_leaves_nothing_behind() {
    let db = TestDb::new().await;
    // The name is taken: neither the user nor the key may stay.
    let t = team("fixture", false);
    let u = user(&t.id, "eve");
    let mut k = key("eve");
    (k.team, k.user) = (t.id.clone(), u.id.clone());
    let err = db
        .store
        .create_team(t, u.clone(), k.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(db.store.get_user(&u.id).await.unwrap(), None);
    assert_eq!(db.store.get_key(&k.id).await.unwrap(), None);

    // There is one operator team at most.
    let t = team("second-operator", true);
    let u = user(&t.id, "mallory");
    let mut k = key("mallory");
    (k.team, k.user) = (t.id.clone(), u.id.clone());
    let err = db.store.create_team(t.clone(), u, k).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(db.store.get_team(&t.id).await.unwrap(), None);
}

#[tokio::test]
async fn users_and_keys_need_their_team_and_user() {
    let db = TestDb::new().await;
    let err = db
        .store
        .insert_user(user(&TeamId::generate(), "ghost"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let bob = user(&team_id(), "bob");
    db.store.insert_user(bob.clone()).await.unwrap();
    let err = db
        .store
        .insert_user(user(&team_id(), "bob"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");

    let mut k = key("orphan");
    k.user = UserId::generate();
    let err = db.store.insert_key(k).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let mut k = key("bob");
    k.user = bob.id;
    db.store.insert_key(k).await.unwrap();
}

#[tokio::test]
async fn listings_are_per_team() {
    let db = TestDb::new().await;
    let other = team("other", false);
    let u = user(&other.id, "olga");
    let mut k = key("olga");
    (k.team, k.user) = (other.id.clone(), u.id.clone());
    db.store
        .create_team(other.clone(), u.clone(), k.clone())
        .await
        .unwrap();

    let mine = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let mut theirs = new_sandbox();
    (theirs.team, theirs.owner) = (other.id.clone(), u.id.clone());
    let theirs = db.store.create_sandbox(theirs).await.unwrap();

    let list = |team: Option<TeamId>| {
        let store = &db.store;
        async move {
            let filter = SandboxFilter {
                team,
                ..SandboxFilter::default()
            };
            let ids: Vec<_> = store
                .list_sandboxes(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.id)
                .collect();
            ids
        }
    };
    assert_eq!(list(Some(team_id())).await, vec![mine.id.clone()]);
    assert_eq!(list(Some(other.id.clone())).await, vec![theirs.id.clone()]);
    assert_eq!(list(None).await, vec![mine.id, theirs.id.clone()]);
    assert_eq!(theirs.owner, u.id);
    assert_eq!(db.store.list_keys(Some(&other.id)).await.unwrap(), vec![k]);
    assert_eq!(db.store.list_keys(None).await.unwrap().len(), 2);
}

/// A database written before tenancy (schema version 1) keeps its keys and
/// sandboxes: they join an operator team `default` and its user `admin`.
#[tokio::test]
async fn a_data_directory_from_before_tenancy_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("v1");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/0001_initial.sql"
        ),
        migrations.join("0001_initial.sql"),
    )
    .unwrap();
    let path = dir.path().join("warren.db");
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    let key_id = KeyId::generate();
    sqlx::query("INSERT INTO api_keys VALUES (?1, 'admin', x'0102', 1700000000000, NULL)")
        .bind(key_id.as_str())
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO sandboxes (id, template, state, cpus, memory_mb, pids, env, metadata,
             net_slot, created_by, created_at, state_changed_at, expires_at)
         VALUES ('sbxupgrade0000000000', 'base', 'running', 1, 512, 512, '{}', '{}', 0, ?1,
             1700000000000, 1700000000000, 1800000000000)",
    )
    .bind(key_id.as_str())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = SqliteStore::open(&path).await.unwrap();
    let k = store.get_key(&key_id).await.unwrap().expect("key kept");
    assert_eq!(k.role, Role::Admin);
    assert_eq!(k.hash, vec![1, 2]);
    let t = store.get_team(&k.team).await.unwrap().expect("team made");
    assert!(t.operator);
    assert_eq!(t.name, "default");
    let u = store.get_user(&k.user).await.unwrap().expect("user made");
    assert_eq!((u.name.as_str(), &u.team), ("admin", &t.id));
    let s = store
        .get_sandbox(&"sbxupgrade0000000000".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.team, s.owner), (t.id, u.id));
}
