//! Compare-and-set state changes.

use crate::common;

use common::{TestDb, new_sandbox, running};
use warren_core::{SandboxId, SandboxState as S};
use warren_store::{Store, StoreError};

#[tokio::test]
async fn transition_moves_state_and_stamps_the_time() {
    let db = TestDb::new().await;
    let created = db.store.create_sandbox(new_sandbox()).await.unwrap();
    let started = db
        .store
        .transition(&created.id, S::Creating, S::Running)
        .await
        .unwrap();
    assert_eq!(started.state, S::Running);
    assert!(started.state_changed_at >= created.state_changed_at);
    assert_eq!(started.created_at, created.created_at);
    assert_eq!(
        db.store.get_sandbox(&created.id).await.unwrap(),
        Some(started)
    );
}

#[tokio::test]
async fn stale_expectation_is_a_conflict_naming_the_actual_state() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    let err = db
        .store
        .transition(&s.id, S::Paused, S::Resuming)
        .await
        .unwrap_err();
    match err {
        StoreError::Conflict { expected, actual } => {
            assert_eq!((expected, actual), (S::Paused, S::Running));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        db.store.get_sandbox(&s.id).await.unwrap().unwrap().state,
        S::Running
    );
}

#[tokio::test]
async fn unknown_sandbox_is_not_found() {
    let db = TestDb::new().await;
    let err = db
        .store
        .transition(&SandboxId::generate(), S::Running, S::Killed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn transitions_outside_the_state_machine_are_refused() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    db.store
        .transition(&s.id, S::Running, S::Killed)
        .await
        .unwrap();
    // Bringing a killed sandbox back after its slot is released would let two
    // live sandboxes share a slot.
    let err = db
        .store
        .transition(&s.id, S::Killed, S::Running)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::IllegalTransition {
                from: S::Killed,
                to: S::Running
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        db.store.get_sandbox(&s.id).await.unwrap().unwrap().state,
        S::Killed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_racing_transitions_exactly_one_wins() {
    let db = TestDb::new().await;
    for _ in 0..20 {
        let s = running(&db.store, new_sandbox()).await;
        let pause = {
            let (store, id) = (db.store.clone(), s.id.clone());
            tokio::spawn(async move { store.transition(&id, S::Running, S::Pausing).await })
        };
        let kill = {
            let (store, id) = (db.store.clone(), s.id.clone());
            tokio::spawn(async move { store.transition(&id, S::Running, S::Killed).await })
        };
        let (pause, kill) = (pause.await.unwrap(), kill.await.unwrap());
        let stored = db.store.get_sandbox(&s.id).await.unwrap().unwrap().state;
        match (pause, kill) {
            (Ok(won), Err(StoreError::Conflict { expected, actual })) => {
                assert_eq!(won.state, S::Pausing);
                assert_eq!(
                    (expected, actual, stored),
                    (S::Running, S::Pausing, S::Pausing)
                );
            }
            (Err(StoreError::Conflict { expected, actual }), Ok(won)) => {
                assert_eq!(won.state, S::Killed);
                assert_eq!(
                    (expected, actual, stored),
                    (S::Running, S::Killed, S::Killed)
                );
            }
            other => panic!("expected one winner and one conflict, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_racers_on_one_sandbox_yield_one_winner() {
    let db = TestDb::new().await;
    let s = running(&db.store, new_sandbox()).await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, id) = (db.store.clone(), s.id.clone());
            tokio::spawn(async move { store.transition(&id, S::Running, S::Killed).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict {
                actual: S::Killed, ..
            }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}
