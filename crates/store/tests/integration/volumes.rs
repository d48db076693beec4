//! Volumes: per-team names, mounts recorded per sandbox, and no delete of
//! a volume a live sandbox mounts (nor a mount of a deleted one).

use crate::common;

use common::{TestDb, new_sandbox, running, team_id};
use time::OffsetDateTime;
use warren_core::{KeyId, SandboxState, TeamId, VolumeId};
use warren_store::{Store, StoreError, VolumeRecord};

fn volume(team: &TeamId, name: &str) -> VolumeRecord {
    VolumeRecord {
        id: VolumeId::generate(),
        team: team.clone(),
        name: name.to_owned(),
        created_at: OffsetDateTime::now_utc(),
        created_by: KeyId::generate(),
    }
}

#[tokio::test]
async fn a_mounted_volume_stays_until_its_sandboxes_are_dead() {
    let db = TestDb::new().await;
    let store = &db.store;
    let v = store
        .create_volume(&volume(&team_id(), "data"))
        .await
        .unwrap();
    assert!(matches!(
        store.create_volume(&volume(&team_id(), "data")).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_volume(&volume(&TeamId::generate(), "x")).await,
        Err(StoreError::NotFound(_))
    ));
    let sb = running(store, new_sandbox()).await;
    store
        .attach_volumes(
            &sb.id,
            &[(v.id.clone(), "/data".into()), (v.id.clone(), "/b".into())],
        )
        .await
        .unwrap();
    let mounts = store.sandbox_volumes(&sb.id).await.unwrap();
    let paths: Vec<&str> = mounts.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(paths, ["/b", "/data"]);
    assert_eq!(mounts[0].volume, v);

    let err = store.delete_volume(&team_id(), "data").await.unwrap_err();
    assert!(
        matches!(&err, StoreError::InUse(m) if m.contains(sb.id.as_str())),
        "{err}"
    );
    assert!(matches!(
        store.delete_volume(&TeamId::generate(), "data").await,
        Err(StoreError::NotFound(_))
    ));

    store
        .transition(&sb.id, SandboxState::Running, SandboxState::Killed)
        .await
        .unwrap();
    let gone = store.delete_volume(&team_id(), "data").await.unwrap();
    assert_eq!(gone.id, v.id);
    assert!(
        store
            .get_volume(&team_id(), "data")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.sandbox_volumes(&sb.id).await.unwrap().is_empty());

    // A sandbox cannot be given a volume that is gone.
    let other = running(store, new_sandbox()).await;
    assert!(matches!(
        store
            .attach_volumes(&other.id, &[(v.id.clone(), "/data".into())])
            .await,
        Err(StoreError::NotFound(_))
    ));
}
