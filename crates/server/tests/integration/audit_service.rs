//! The daemon's audit service on a real SQLite file: concurrent records get
//! distinct, consecutive indexes (group commit), the signer covers them with
//! a signed head, and a restarted service continues the same log.

use std::collections::BTreeSet;

use futures::future::join_all;
use warren_audit::{Outcome, SigningKey, verify_log};
use warren_core::SandboxId;
use warren_server::audit::{Action, Audit, AuditActor, Event};
use warren_store::{AuditFilter, SqliteAudit, SqliteStore};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[3; 32])
}

async fn record_many(audit: &Audit, n: usize) -> Vec<u64> {
    let actor = AuditActor::system("test");
    let sandbox = SandboxId::generate();
    join_all((0..n).map(|i| {
        let event = Event::sandbox(Action::ProcessExec, &sandbox, Outcome::Ok)
            .with("argv", vec!["echo".to_owned(), i.to_string()])
            .with("exit_code", 0);
        let audit = audit.clone();
        let actor = actor.clone();
        async move { audit.record(&actor, event).await.unwrap() }
    }))
    .await
}

async fn verify(store: &SqliteAudit) -> u64 {
    let entries = store
        .entries(&AuditFilter {
            limit: 1 << 40,
            ..Default::default()
        })
        .await
        .unwrap();
    let heads = store.heads().await.unwrap();
    let verified = verify_log(&entries, &heads, &key().verifying_key()).unwrap();
    assert_eq!(
        verified.latest_head.map(|h| h.size),
        Some(verified.size),
        "all signed"
    );
    verified.size
}

#[tokio::test]
async fn concurrent_records_get_consecutive_indexes_signed_and_continued_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("warren.db"))
        .await
        .unwrap();

    let (audit, tasks) = Audit::start(store.audit(), key()).await.unwrap();
    let indexes: BTreeSet<u64> = record_many(&audit, 300).await.into_iter().collect();
    assert_eq!(indexes, (0..300).collect(), "distinct and consecutive");
    tasks.stop().await;
    drop(audit);
    assert_eq!(verify(&store.audit()).await, 300);

    let (audit, tasks) = Audit::start(store.audit(), key()).await.unwrap();
    let more: BTreeSet<u64> = record_many(&audit, 50).await.into_iter().collect();
    assert_eq!(more, (300..350).collect());
    tasks.stop().await;
    assert_eq!(verify(&store.audit()).await, 350);
}

#[tokio::test]
async fn an_unhashable_event_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("warren.db"))
        .await
        .unwrap();
    let (audit, tasks) = Audit::start(store.audit(), key()).await.unwrap();
    let actor = AuditActor::system("test");
    let id = SandboxId::generate();
    let float = Event::sandbox(Action::ProcessExec, &id, Outcome::Ok).with("ratio", 0.5);
    assert!(audit.record(&actor, float).await.is_err());
    let fine = Event::sandbox(Action::ProcessExec, &id, Outcome::Ok);
    assert_eq!(audit.record(&actor, fine).await.unwrap(), 0);
    tasks.stop().await;
    assert_eq!(verify(&store.audit()).await, 1);
}
