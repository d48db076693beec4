//! Team secrets: create or replace, per-team names, deletion.

use crate::common;

use common::{TestDb, team_id};
use time::{Duration, OffsetDateTime};
use warren_core::{KeyId, TeamId};
use warren_store::{SecretRecord, SecretWrite, Store, StoreError};

fn secret(team: &TeamId, name: &str, ciphertext: &[u8], at: OffsetDateTime) -> SecretRecord {
    let by = KeyId::generate();
    SecretRecord {
        team: team.clone(),
        name: name.to_owned(),
        ciphertext: ciphertext.to_vec(),
        nonce: vec![7; 24],
        created_at: at,
        created_by: by.clone(),
        updated_at: at,
        updated_by: by,
        version: 0,
    }
}

#[tokio::test]
async fn replacing_a_secret_keeps_its_creation_changes_its_ciphertext_and_counts_a_version() {
    let db = TestDb::new().await;
    let t0 = OffsetDateTime::now_utc();
    let first = db
        .store
        .put_secret(secret(&team_id(), "gh", b"one", t0), SecretWrite::Set)
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!(first.record.version, 1);
    let later = t0 + Duration::seconds(5);
    let second = db
        .store
        .put_secret(secret(&team_id(), "gh", b"two", later), SecretWrite::Set)
        .await
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.record.version, 2, "each replacement counts");
    assert_eq!(second.record.created_at, first.record.created_at);
    assert_eq!(second.record.created_by, first.record.created_by);
    assert_ne!(second.record.updated_by, first.record.updated_by);
    let got = db
        .store
        .get_secret(&team_id(), "gh")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.ciphertext, b"two");
    assert_eq!(got, second.record);
    assert_eq!(db.store.list_secrets(&team_id()).await.unwrap().len(), 1);
}

#[tokio::test]
async fn secrets_belong_to_one_team_and_delete_once() {
    let db = TestDb::new().await;
    let now = OffsetDateTime::now_utc();
    for name in ["b", "a"] {
        db.store
            .put_secret(secret(&team_id(), name, b"x", now), SecretWrite::Set)
            .await
            .unwrap();
    }
    let names: Vec<_> = db
        .store
        .list_secrets(&team_id())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    let other = TeamId::generate();
    assert!(db.store.get_secret(&other, "a").await.unwrap().is_none());
    assert!(db.store.list_secrets(&other).await.unwrap().is_empty());
    assert!(matches!(
        db.store.delete_secret(&other, "a").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        db.store
            .put_secret(secret(&other, "a", b"x", now), SecretWrite::Set)
            .await,
        Err(StoreError::NotFound(_))
    ));

    db.store.delete_secret(&team_id(), "a").await.unwrap();
    assert!(matches!(
        db.store.delete_secret(&team_id(), "a").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        db.store
            .get_secret(&team_id(), "a")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn create_only_and_replace_only_writes_decide_in_their_transaction() {
    let db = TestDb::new().await;
    let now = OffsetDateTime::now_utc();
    let put = |name: &'static str, write| {
        db.store
            .put_secret(secret(&team_id(), name, b"v", now), write)
    };
    assert!(matches!(
        put("gh", SecretWrite::Replace).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        db.store
            .get_secret(&team_id(), "gh")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        put("gh", SecretWrite::Create).await.unwrap().record.version,
        1
    );
    assert!(matches!(
        put("gh", SecretWrite::Create).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let replaced = put("gh", SecretWrite::Replace).await.unwrap();
    assert!(!replaced.created);
    assert_eq!(replaced.record.version, 2);
}
