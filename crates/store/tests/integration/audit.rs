//! The persisted audit log on a real SQLite file: appends in batches verify,
//! proofs check with an independent implementation (`ct-merkle`), appends
//! are all or nothing, and tampering with the database — an edited, deleted
//! or swapped entry, a truncated tree, a rollback — is found at the right
//! index by `warren_audit::verify_log`.

use crate::common;

use common::TestDb;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use serde_json::json;
use sha2::Sha256;
use warren_audit::{
    AuditEntry, ExportedEntry, Frontier, MerkleLog, Outcome, SignedTreeHead, SigningKey,
    VerifyError, verify_log,
};
use warren_store::{AuditAppend, AuditFilter, AuditStoreError, SqliteAudit, SqliteStore};

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9; 32])
}

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        index: 0,
        time_ms: 1_800_000_000_000 + i,
        team: "default".into(),
        actor: vec![format!("key:k{}", i % 3)],
        action: ["sandbox.create", "process.exec", "file.write"][(i % 3) as usize].into(),
        target: format!("sb{:018}", i / 10),
        outcome: if i.is_multiple_of(11) {
            Outcome::Error
        } else {
            Outcome::Ok
        },
        details: json!({"argv": ["echo", i.to_string()], "exit_code": (i % 5) as i64})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

/// Appends entries `from..to` in batches of `batch`, the way the daemon's
/// writer does, continuing `frontier`.
async fn append_range(
    audit: &SqliteAudit,
    frontier: &mut Frontier,
    from: u64,
    to: u64,
    batch: u64,
) {
    let mut next = from;
    while next < to {
        let end = (next + batch).min(to);
        audit
            .append(next, &appends(frontier, next..end))
            .await
            .unwrap();
        next = end;
    }
}

/// Entries `range` with their nodes, continuing `frontier`.
fn appends(frontier: &mut Frontier, range: std::ops::Range<u64>) -> Vec<AuditAppend> {
    range
        .map(|i| {
            let mut e = entry(i);
            e.index = i;
            let nodes = frontier.push_nodes(e.leaf_hash().unwrap());
            AuditAppend {
                sandbox: Some(e.target.clone()),
                entry: e,
                nodes,
            }
        })
        .collect()
}

/// The frontier a restarted writer reads back from the store.
async fn frontier_of(audit: &SqliteAudit) -> Frontier {
    let log = MerkleLog::open(audit.clone()).await.unwrap();
    log.frontier().await.unwrap()
}

/// Signs the log's current head and stores it.
async fn sign(audit: &SqliteAudit) -> SignedTreeHead {
    let log = MerkleLog::open(audit.clone()).await.unwrap();
    let head = log.tree_head(1_900_000_000_000 + log.size()).await.unwrap();
    let sth = head.sign(&key());
    audit.insert_head(&sth).await.unwrap();
    sth
}

async fn export(audit: &SqliteAudit) -> Vec<ExportedEntry> {
    audit
        .entries(&AuditFilter {
            limit: u64::MAX >> 1,
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn verify(audit: &SqliteAudit, extra: &[SignedTreeHead]) -> Result<u64, VerifyError> {
    let mut heads = audit.heads().await.unwrap();
    heads.extend_from_slice(extra);
    verify_log(&export(audit).await, &heads, &key().verifying_key()).map(|v| v.size)
}

/// A log of `n` entries with a head signed every `every` entries.
async fn signed_log(n: u64, every: u64) -> (TestDb, SqliteAudit) {
    let db = TestDb::new().await;
    let audit = db.store.audit();
    let mut frontier = Frontier::new();
    let mut size = 0;
    while size < n {
        let end = (size + every).min(n);
        append_range(&audit, &mut frontier, size, end, 37).await;
        sign(&audit).await;
        size = end;
    }
    (db, audit)
}

/// Runs SQL on the database file the way a tamperer would: another
/// connection, no Warren code involved.
async fn sql(db: &TestDb, statements: &str) {
    let url = format!("sqlite://{}", db.path().display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// Verifies a signed log of 500 entries (heads every 100) after `statements`.
async fn tampered(statements: &str) -> VerifyError {
    let (db, audit) = signed_log(500, 100).await;
    sql(&db, statements).await;
    verify(&audit, &[]).await.unwrap_err()
}

#[tokio::test]
async fn ten_thousand_entries_verify_and_survive_a_reopen() {
    let (db, audit) = signed_log(10_000, 1_000).await;
    assert_eq!(verify(&audit, &[]).await, Ok(10_000));
    assert_eq!(audit.heads().await.unwrap().len(), 10);

    // A restarted writer continues from the frontier it reads back.
    let reopened = SqliteStore::open(db.path()).await.unwrap().audit();
    let mut frontier = frontier_of(&reopened).await;
    assert_eq!(frontier.len(), 10_000);
    append_range(&reopened, &mut frontier, 10_000, 10_100, 10).await;
    sign(&reopened).await;
    assert_eq!(verify(&reopened, &[]).await, Ok(10_100));
}

#[tokio::test]
async fn random_inclusion_proofs_check_with_ct_merkle_against_the_signed_head() {
    let (_db, audit) = signed_log(3_000, 3_000).await;
    let log = MerkleLog::open(audit.clone()).await.unwrap();
    let sth = audit.latest_head().await.unwrap().unwrap();
    let head = sth.verify(&key().verifying_key()).unwrap();
    let root = RootHash::<Sha256>::new((*head.root_hash.as_bytes()).into(), head.size);
    let entries = export(&audit).await;
    let mut rng = rand::rng();
    for _ in 0..200 {
        let index = rand::Rng::random_range(&mut rng, 0..head.size);
        let proof = log.inclusion_proof(index, head.size).await.unwrap();
        assert!(proof.len() * 32 <= 1024);
        let bytes: Vec<u8> = proof.iter().flat_map(|h| h.0).collect();
        let canonical = entries[index as usize].entry.canonical_bytes().unwrap();
        root.verify_inclusion(&canonical, index, &InclusionProof::from_bytes(bytes))
            .unwrap_or_else(|e| panic!("entry {index}: {e:?}"));
    }
}

#[tokio::test]
async fn consistency_proofs_between_signed_sizes_check_with_ct_merkle() {
    let (_db, audit) = signed_log(2_000, 250).await;
    let log = MerkleLog::open(audit.clone()).await.unwrap();
    let heads = audit.heads().await.unwrap();
    for old in &heads {
        for new in heads.iter().filter(|h| h.size >= old.size) {
            let proof = log.consistency_proof(old.size, new.size).await.unwrap();
            warren_audit::verify_consistency(
                old.size,
                new.size,
                &old.root_hash,
                &new.root_hash,
                &proof,
            )
            .unwrap();
            if old.size == new.size {
                continue;
            }
            let bytes: Vec<u8> = proof.iter().flat_map(|h| h.0).collect();
            let old_root = RootHash::<Sha256>::new((*old.root_hash.as_bytes()).into(), old.size);
            let new_root = RootHash::<Sha256>::new((*new.root_hash.as_bytes()).into(), new.size);
            new_root
                .verify_consistency(&old_root, &ConsistencyProof::try_from_bytes(bytes).unwrap())
                .unwrap_or_else(|e| panic!("{} -> {}: {e:?}", old.size, new.size));
        }
    }
}

#[tokio::test]
async fn an_edited_entry_is_found_at_its_index() {
    let err =
        tampered("UPDATE audit_entries SET details = '{\"argv\":[\"true\"]}' WHERE idx = 321")
            .await;
    assert_eq!(err, VerifyError::LeafHashMismatch { index: 321 });
    assert_eq!(err.first_bad_index(), Some(321));
}

#[tokio::test]
async fn an_entry_edited_together_with_its_leaf_is_found_by_the_signed_head() {
    let err = tampered(
        "UPDATE audit_entries SET outcome = 'ok' WHERE idx = 231;
         DELETE FROM audit_nodes WHERE level = 0 AND idx = 231;",
    )
    .await;
    assert_eq!(err.first_bad_index(), Some(200), "{err}");
}

#[tokio::test]
async fn a_deleted_entry_is_found_at_its_index() {
    let err = tampered("DELETE FROM audit_entries WHERE idx = 77").await;
    assert_eq!(err.first_bad_index(), Some(77), "{err}");
}

#[tokio::test]
async fn two_swapped_entries_are_found_at_the_first() {
    let err = tampered(
        "UPDATE audit_entries SET idx = -1 WHERE idx = 120;
         UPDATE audit_entries SET idx = 120 WHERE idx = 340;
         UPDATE audit_entries SET idx = 340 WHERE idx = -1;",
    )
    .await;
    assert_eq!(err.first_bad_index(), Some(120), "{err}");
}

#[tokio::test]
async fn a_truncated_tree_is_found_where_the_entries_stop() {
    let err = tampered(
        "DELETE FROM audit_entries WHERE idx >= 420;
         DELETE FROM audit_nodes WHERE (idx + 1) * (1 << level) > 420;
         UPDATE audit_size SET size = 420;",
    )
    .await;
    assert!(matches!(err, VerifyError::Truncated { .. }), "{err}");
    assert_eq!(err.first_bad_index(), Some(420));
}

#[tokio::test]
async fn a_rollback_of_the_whole_database_fails_against_a_later_checkpoint() {
    let (db, audit) = signed_log(300, 100).await;
    let saved = db.dir.path().join("before.db");
    sql(&db, &format!("VACUUM INTO '{}'", saved.display())).await;
    let mut frontier = frontier_of(&audit).await;
    append_range(&audit, &mut frontier, 300, 400, 7).await;
    let checkpoint = sign(&audit).await;

    // The database goes back to its earlier copy, heads and all: it is
    // consistent with itself, only the checkpoint saved outside shows it.
    let rolled_back = SqliteStore::open(&saved).await.unwrap().audit();
    assert_eq!(verify(&rolled_back, &[]).await, Ok(300));
    let err = verify(&rolled_back, &[checkpoint]).await.unwrap_err();
    assert!(matches!(err, VerifyError::Truncated { .. }), "{err}");
    assert_eq!(err.first_bad_index(), Some(300));
}

#[tokio::test]
async fn an_append_is_all_or_nothing() {
    let (_db, audit) = signed_log(10, 10).await;
    let mut frontier = frontier_of(&audit).await;
    let mut good = entry(10);
    good.index = 10;
    let good_nodes = frontier.push_nodes(good.leaf_hash().unwrap());
    let mut bad = entry(11);
    bad.index = 11;
    let batch = vec![
        AuditAppend {
            entry: good,
            sandbox: None,
            nodes: good_nodes,
        },
        AuditAppend {
            entry: bad,
            sandbox: None,
            // Wrong: leaf 11 completes nodes at levels 1 and 2 as well.
            nodes: vec![warren_audit::Node {
                level: 0,
                index: 11,
                hash: warren_audit::Hash::default(),
            }],
        },
    ];
    let err = audit.append(10, &batch).await.unwrap_err();
    assert!(matches!(err, AuditStoreError::BadAppend(_)), "{err}");
    assert_eq!(audit.size().await.unwrap(), 10);
    assert_eq!(
        export(&audit).await.len(),
        10,
        "the first entry of the batch is not kept"
    );

    // A writer that believes the log has 9 entries.
    let mut stale = Frontier::new();
    appends(&mut stale, 0..9);
    let err = audit
        .append(9, &appends(&mut stale, 9..10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AuditStoreError::Conflict {
                expected: 9,
                actual: 10
            }
        ),
        "{err}"
    );
    assert_eq!(verify(&audit, &[]).await, Ok(10));
}

#[tokio::test]
async fn a_transaction_failing_halfway_leaves_nothing() {
    let (db, audit) = signed_log(10, 10).await;
    // A stray row makes the second entry's node insert fail inside the
    // transaction, after the entry rows were written.
    sql(
        &db,
        "INSERT INTO audit_nodes (level, idx, hash) VALUES (0, 11, zeroblob(32))",
    )
    .await;
    let batch = appends(&mut frontier_of(&audit).await, 10..12);
    let err = audit.append(10, &batch).await.unwrap_err();
    assert!(matches!(err, AuditStoreError::Database(_)), "{err}");
    assert_eq!(audit.size().await.unwrap(), 10);
    assert_eq!(
        export(&audit).await.len(),
        10,
        "no entry row of the batch is kept"
    );
}

#[tokio::test]
async fn filters_select_by_sandbox_actor_action_time_and_page() {
    let (_db, audit) = signed_log(100, 100).await;
    let page = |f: AuditFilter| {
        let audit = audit.clone();
        async move {
            audit
                .entries(&AuditFilter { limit: 1000, ..f })
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.entry.index)
                .collect::<Vec<_>>()
        }
    };
    let sandbox = format!("sb{:018}", 4);
    assert_eq!(
        page(AuditFilter {
            sandbox: Some(sandbox),
            ..Default::default()
        })
        .await,
        (40..50).collect::<Vec<_>>()
    );
    let by_actor = page(AuditFilter {
        actor: Some("key:k1".into()),
        ..Default::default()
    })
    .await;
    assert!(by_actor.len() == 33 && by_actor.iter().all(|i| i % 3 == 1));
    let execs = page(AuditFilter {
        action: Some("process.exec".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(execs, by_actor);
    let window = AuditFilter {
        since_ms: Some(1_800_000_000_010),
        until_ms: Some(1_800_000_000_020),
        ..Default::default()
    };
    assert_eq!(page(window).await, (10..20).collect::<Vec<_>>());
    let after = AuditFilter {
        after: Some(95),
        limit: 3,
        ..Default::default()
    };
    assert_eq!(
        audit
            .entries(&after)
            .await
            .unwrap()
            .iter()
            .map(|e| e.entry.index)
            .collect::<Vec<_>>(),
        [96, 97, 98]
    );
}
