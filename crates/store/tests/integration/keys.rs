//! API key rows.

use crate::common;

use common::{TestDb, key, millis};
use time::{Duration, OffsetDateTime};
use warren_core::KeyId;
use warren_store::{Store, StoreError};

#[tokio::test]
async fn keys_round_trip_and_list_oldest_first() {
    let db = TestDb::new().await;
    let mut first = key("ci");
    first.created_at = millis(OffsetDateTime::now_utc() - Duration::hours(1));
    let second = key("laptop");
    db.store.insert_key(second.clone()).await.unwrap();
    db.store.insert_key(first.clone()).await.unwrap();

    assert_eq!(
        db.store.get_key(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(db.store.get_key(&KeyId::generate()).await.unwrap(), None);
    assert_eq!(
        db.store
            .list_keys(Some(&common::team_id()))
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.name != "seed")
            .collect::<Vec<_>>(),
        vec![first, second]
    );
}

#[tokio::test]
async fn duplicate_key_id_is_already_exists() {
    let db = TestDb::new().await;
    let k = key("ci");
    db.store.insert_key(k.clone()).await.unwrap();
    let mut again = k.clone();
    again.hash = vec![1, 2, 3];
    let err = db.store.insert_key(again).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    assert_eq!(db.store.get_key(&k.id).await.unwrap(), Some(k));
}

#[tokio::test]
async fn revoke_marks_the_key_once() {
    let db = TestDb::new().await;
    let k = key("ci");
    let other = key("other");
    db.store.insert_key(k.clone()).await.unwrap();
    db.store.insert_key(other.clone()).await.unwrap();

    let at = OffsetDateTime::now_utc();
    db.store.revoke_key(&k.id, at).await.unwrap();
    let revoked = db.store.get_key(&k.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(millis(at)));
    assert_eq!(revoked.hash, k.hash);

    // A second revocation keeps the first time.
    db.store
        .revoke_key(&k.id, at + Duration::hours(1))
        .await
        .unwrap();
    let again = db.store.get_key(&k.id).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(millis(at)));

    assert_eq!(db.store.get_key(&other.id).await.unwrap(), Some(other));
}

#[tokio::test]
async fn revoking_an_unknown_key_is_not_found() {
    let db = TestDb::new().await;
    let err = db
        .store
        .revoke_key(&KeyId::generate(), OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}
