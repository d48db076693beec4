//! What survives reopening and crashing, and what happens to damaged or
//! foreign databases.

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::{TestDb, key, new_sandbox, running, with_metadata};
use time::{Duration, OffsetDateTime};
use warren_core::{SandboxId, SandboxState as S};
use warren_store::{SandboxFilter, SqliteStore, Store, StoreError};

#[tokio::test]
async fn everything_is_still_there_after_reopening() {
    let db = TestDb::new().await;
    let a = running(&db.store, with_metadata(&[("team", "red")])).await;
    let b = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let b = db
        .store
        .transition(&b.id, S::Creating, S::Failed)
        .await
        .unwrap();
    let a = db
        .store
        .set_expiry(&a.id, OffsetDateTime::now_utc() + Duration::hours(2))
        .await
        .unwrap();
    let k = key("ci");
    db.store.insert_key(k.clone()).await.unwrap();
    db.store.close().await;

    let store = db.reopen().await;
    assert_eq!(store.get_sandbox(&a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_sandbox(&b.id).await.unwrap(), Some(b.clone()));
    assert_eq!(store.get_key(&k.id).await.unwrap(), Some(k));
    // Both slots are still held: the failed sandbox's teardown was never
    // confirmed, and it is still listed for a retry.
    assert_eq!(
        store.unreleased_sandboxes().await.unwrap(),
        vec![b.id.clone()]
    );
    assert_eq!(
        store.create_sandbox(new_sandbox()).await.unwrap().net_slot,
        2
    );
}

#[tokio::test]
async fn a_released_slot_stays_released_after_reopening() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&s.id, S::Running, S::Killed)
        .await
        .unwrap();
    db.store.release_slot(&s.id).await.unwrap();
    db.store.close().await;

    let store = db.reopen().await;
    assert!(store.unreleased_sandboxes().await.unwrap().is_empty());
    assert_eq!(
        store.create_sandbox(new_sandbox()).await.unwrap().net_slot,
        0
    );
}

const CRASH_TEST: &str = "durability::acknowledged_writes_survive_a_killed_process";
const CRASH_DB_ENV: &str = "WARREN_STORE_TEST_CRASH_DB";

/// The child half of the crash test: write, report each acknowledged write
/// on stdout, then wait to be killed without closing anything.
async fn crash_child(path: &str) -> ! {
    let store = SqliteStore::open(path).await.expect("child opens store");
    common::seed(&store).await;
    // Lines start with "ack " to stand apart from the test harness's output.
    let mut out = String::from("\n");
    let mut released = Vec::new();
    for i in 0..12 {
        let s = store.create_sandbox(new_sandbox()).await.expect("create");
        let state = match i % 3 {
            0 => S::Creating,
            1 => {
                store
                    .transition(&s.id, S::Creating, S::Running)
                    .await
                    .expect("start")
                    .state
            }
            _ => {
                let state = store
                    .transition(&s.id, S::Creating, S::Killed)
                    .await
                    .expect("kill")
                    .state;
                if i % 6 == 5 {
                    store.release_slot(&s.id).await.expect("release");
                    released.push(s.id.to_string());
                }
                state
            }
        };
        out.push_str(&format!("ack {} {} {}\n", s.id, state, s.net_slot));
    }
    let k = key("crash");
    store.insert_key(k.clone()).await.expect("insert key");
    store
        .revoke_key(&k.id, OffsetDateTime::now_utc())
        .await
        .expect("revoke key");
    out.push_str(&format!("ack key {}\n", k.id));
    out.push_str(&format!("ack released {}\nack done\n", released.join(" ")));
    // Bypass the test harness's output capture.
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).expect("write to parent");
    stdout.flush().expect("flush to parent");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Never leaves the child sleeping forever if the parent fails early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_a_killed_process() {
    if let Ok(path) = std::env::var(CRASH_DB_ENV) {
        crash_child(&path).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warren.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([CRASH_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_DB_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = Vec::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let Some(ack) = line.strip_prefix("ack ") else {
            continue;
        };
        if ack == "done" {
            break;
        }
        lines.push(ack.to_owned());
    }
    // SIGKILL: no destructor, no close, no WAL checkpoint.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "child was meant to die by SIGKILL");
    assert_eq!(
        lines.len(),
        14,
        "child did not acknowledge every write: {lines:?}"
    );
    assert!(
        path.with_file_name("warren.db-wal").exists(),
        "a crash should leave the WAL behind for recovery"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    let (sandboxes, rest) = lines.split_at(12);
    let released: Vec<&str> = rest[1]
        .strip_prefix("released ")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(released.len(), 2, "{released:?}");
    let mut unreleased = Vec::new();
    for line in sandboxes {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields[1] == "killed" && !released.contains(&fields[0]) {
            unreleased.push(fields[0].parse::<SandboxId>().unwrap());
        }
        let id: SandboxId = fields[0].parse().unwrap();
        let record = store
            .get_sandbox(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged sandbox {id} lost"));
        assert_eq!(record.state.as_str(), fields[1]);
        assert_eq!(record.net_slot.to_string(), fields[2]);
    }
    let key_id = rest[0].strip_prefix("key ").unwrap().parse().unwrap();
    let k = store.get_key(&key_id).await.unwrap().expect("key lost");
    assert!(k.revoked_at.is_some(), "acknowledged revocation lost");
    // Acknowledged releases survive, unconfirmed teardowns are still listed.
    assert_eq!(unreleased.len(), 2);
    assert_eq!(store.unreleased_sandboxes().await.unwrap(), unreleased);
}

#[tokio::test]
async fn a_bad_state_is_reported_as_corrupt() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    sqlx::query("UPDATE sandboxes SET state = 'zombie' WHERE id = ?1")
        .bind(s.id.as_str())
        .execute(&db.raw().await)
        .await
        .unwrap();

    let err = db.store.get_sandbox(&s.id).await.unwrap_err();
    match &err {
        StoreError::Corrupt { table, detail } => {
            assert_eq!(*table, "sandboxes");
            assert!(detail.contains(s.id.as_str()), "{detail}");
            assert!(detail.contains("state"), "{detail}");
            assert!(detail.contains("zombie"), "{detail}");
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
    // An unknown state is not killed or failed: the row still holds its slot,
    // so the default listing of live sandboxes must not hide it.
    let err = db
        .store
        .list_sandboxes(&SandboxFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = db.store.create_sandbox(new_sandbox()).await.unwrap();
    assert_eq!(
        err.net_slot, 1,
        "the damaged row's slot was handed out again"
    );
    let err = db
        .store
        .transition(&s.id, S::Running, S::Killed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = db.store.delete_sandbox(&s.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = db.store.release_slot(&s.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn damaged_columns_are_reported_as_corrupt() {
    let damage = [
        ("metadata", "UPDATE sandboxes SET metadata = '{\"a\": 1'"),
        ("env", "UPDATE sandboxes SET env = '[\"not\", \"a map\"]'"),
        ("cpus", "UPDATE sandboxes SET cpus = -1"),
        ("net_slot", "UPDATE sandboxes SET net_slot = 4294967296"),
        (
            "created_by",
            "UPDATE sandboxes SET created_by = 'Not A Key'",
        ),
        (
            "expires_at",
            "UPDATE sandboxes SET expires_at = 9223372036854775807",
        ),
    ];
    for (column, sql) in damage {
        let db = TestDb::new().await;
        let s = running(&db.store, new_sandbox()).await;
        sqlx::query(sql).execute(&db.raw().await).await.unwrap();
        let err = db.store.get_sandbox(&s.id).await.unwrap_err();
        match &err {
            StoreError::Corrupt { detail, .. } => {
                assert!(detail.contains(column), "{column}: {detail}");
            }
            other => panic!("{column}: expected corrupt, got {other:?}"),
        }
        let listed = db.store.list_sandboxes(&SandboxFilter::default()).await;
        assert!(
            matches!(listed, Err(StoreError::Corrupt { .. })),
            "{column}: {listed:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_sandbox_id_is_corrupt_in_every_listing() {
    let db = TestDb::new().await;
    let s = db.store.create_sandbox(new_sandbox()).await.unwrap();
    db.store
        .set_expiry(&s.id, OffsetDateTime::now_utc() - Duration::seconds(1))
        .await
        .unwrap();
    // Its inbox row names it; drop that so the damage is the id alone.
    sqlx::query("DELETE FROM sandbox_inboxes")
        .execute(&db.raw().await)
        .await
        .unwrap();
    sqlx::query("UPDATE sandboxes SET id = '../../etc'")
        .execute(&db.raw().await)
        .await
        .unwrap();
    let err = db
        .store
        .expired_sandboxes(OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let err = db
        .store
        .list_sandboxes(&SandboxFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn a_damaged_key_is_corrupt() {
    let db = TestDb::new().await;
    let k = key("ci");
    db.store.insert_key(k.clone()).await.unwrap();
    sqlx::query("UPDATE api_keys SET revoked_at = -9223372036854775808")
        .execute(&db.raw().await)
        .await
        .unwrap();
    let err = db.store.get_key(&k.id).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Corrupt {
                table: "api_keys",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(db.store.list_keys(None).await.is_err());
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let db = TestDb::new().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99999999999999, 'from the future', 1, x'00', 0)",
    )
    .execute(&db.raw().await)
    .await
    .unwrap();
    let err = SqliteStore::open(db.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Migrate(_)), "{err:?}");
}

#[tokio::test]
async fn an_unopenable_path_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("warren.db");
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[tokio::test]
async fn the_database_is_private_to_its_owner() {
    let db = TestDb::new().await;
    db.store.create_sandbox(new_sandbox()).await.unwrap();
    for name in ["warren.db", "warren.db-wal"] {
        let mode = std::fs::metadata(db.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} is readable by others: {mode:o}");
    }
}

#[tokio::test]
async fn the_schema_refuses_a_released_slot_on_a_live_sandbox() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    let refused = sqlx::query("UPDATE sandboxes SET slot_released = 1 WHERE id = ?1")
        .bind(s.id.as_str())
        .execute(&db.raw().await)
        .await;
    assert!(refused.is_err(), "a live sandbox lost its slot");
    assert_eq!(
        db.store
            .create_sandbox(new_sandbox())
            .await
            .unwrap()
            .net_slot,
        1
    );
}
