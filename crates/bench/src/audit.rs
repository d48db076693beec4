//! Persisted audit log figures: the daemon's audit writer on SQLite in a
//! temporary directory (same WAL + `synchronous=FULL` settings as
//! `warren serve`), no sandboxes involved.
//!
//! - appends/s through `Audit::record` with many concurrent callers (group
//!   commit: one transaction per batch of waiting callers);
//! - the latency of one `Audit::record` by a lone caller, and under that
//!   concurrent load: what an exec waits for (its `process.exec` entry is
//!   committed before the `exit` line is sent; its `api.request` entry is
//!   appended alongside the stream and is not waited for);
//! - inclusion and consistency proof time and size at `entries` persisted
//!   entries (filled directly through the store in batches of 1000);
//! - reading the whole log back (the export) and `verify_log` over it;
//! - with `--through-cli`: `warren audit verify` end to end (HTTP export,
//!   heads, local verification) against a real daemon whose database was
//!   filled to `entries` while it was stopped.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;
use warren_audit::{AuditEntry, Frontier, MerkleLog, Outcome, SigningKey, verify_log};
use warren_core::SandboxId;
use warren_server::audit::{Action, Audit, AuditActor, Event};
use warren_store::{AuditAppend, AuditFilter, SqliteAudit, SqliteStore};

use crate::stats::{Row, ms, percentile};

fn exec_event(sandbox: &SandboxId, i: u64) -> Event {
    Event::sandbox(Action::ProcessExec, sandbox, Outcome::Ok)
        .with(
            "argv",
            vec!["python3".to_owned(), "-c".to_owned(), format!("print({i})")],
        )
        .with("user", "user")
        .with("cwd", "/home/user")
        .with("exit_code", 0)
        .with("duration_ms", 12)
}

fn us(d: Duration) -> f64 {
    ms(d) * 1000.0
}

/// Appends/s with `callers` concurrent callers, `per_caller` appends each.
async fn throughput(audit: &Audit, callers: u64, per_caller: u64) -> anyhow::Result<f64> {
    let sandbox = SandboxId::generate();
    let actor = AuditActor::system("bench");
    let t = Instant::now();
    let results = join_all((0..callers).map(|c| {
        let audit = audit.clone();
        let actor = actor.clone();
        let sandbox = sandbox.clone();
        tokio::spawn(async move {
            for i in 0..per_caller {
                audit
                    .record(&actor, exec_event(&sandbox, c * per_caller + i))
                    .await?;
            }
            Ok::<_, warren_server::audit::AuditError>(())
        })
    }))
    .await;
    for r in results {
        r??;
    }
    Ok((callers * per_caller) as f64 / t.elapsed().as_secs_f64())
}

/// Latencies of `n` sequential appends by one caller.
async fn latencies(audit: &Audit, n: u64) -> anyhow::Result<Vec<Duration>> {
    let sandbox = SandboxId::generate();
    let actor = AuditActor::system("bench");
    let mut samples = Vec::with_capacity(n as usize);
    for i in 0..n {
        let t = Instant::now();
        audit.record(&actor, exec_event(&sandbox, i)).await?;
        samples.push(t.elapsed());
    }
    Ok(samples)
}

/// Fills the log to `total` entries directly through the store.
async fn fill(store: &SqliteAudit, total: u64) -> anyhow::Result<()> {
    let log = MerkleLog::open(store.clone()).await?;
    let mut frontier: Frontier = log.frontier().await?;
    let sandbox = SandboxId::generate().to_string();
    while frontier.len() < total {
        let start = frontier.len();
        let end = (start + 1000).min(total);
        let mut batch = Vec::with_capacity((end - start) as usize);
        for index in start..end {
            let entry = AuditEntry {
                index,
                time_ms: 1_800_000_000_000 + index,
                team: "default".into(),
                actor: vec!["key:abcdefghijkl".into()],
                action: "process.exec".into(),
                target: sandbox.clone(),
                outcome: Outcome::Ok,
                details:
                    json!({"argv": ["python3", "-c", format!("print({index})")], "user": "user",
                    "cwd": "/home/user", "exit_code": 0, "duration_ms": 12})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            };
            let nodes = frontier.push_nodes(entry.leaf_hash()?);
            batch.push(AuditAppend {
                entry,
                sandbox: Some(sandbox.clone()),
                nodes,
            });
        }
        store.append(start, &batch).await?;
    }
    Ok(())
}

pub async fn run(entries: u64, callers: u64) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path().join("warren.db")).await?;
    let key = SigningKey::from_bytes(&[7; 32]);
    let (audit, tasks) = Audit::start(store.audit(), key.clone()).await?;
    let mut rows = Vec::new();

    let mut lone = latencies(&audit, 500).await?;
    rows.push(Row::new(
        "append latency, lone caller, p50",
        "µs",
        us(percentile(&mut lone, 50.0)),
        None,
    ));
    rows.push(Row::new(
        "append latency, lone caller, p99",
        "µs",
        us(percentile(&mut lone, 99.0)),
        None,
    ));

    let per = 20_000 / callers.max(1);
    let rate = throughput(&audit, callers, per).await?;
    rows.push(Row::new(
        format!("appends/s, {callers} concurrent callers"),
        "/s",
        rate,
        None,
    ));

    // One caller's latency while the others keep the writer busy.
    let busy = {
        let audit = audit.clone();
        tokio::spawn(async move { throughput(&audit, callers, per).await })
    };
    let mut loaded = latencies(&audit, 300).await?;
    busy.await??;
    rows.push(Row::new(
        "append latency under that load, p50",
        "µs",
        us(percentile(&mut loaded, 50.0)),
        None,
    ));
    rows.push(Row::new(
        "append latency under that load, p99",
        "µs",
        us(percentile(&mut loaded, 99.0)),
        None,
    ));
    tasks.stop().await;
    drop(audit);

    let audit_store = store.audit();
    let before = audit_store.size().await?;
    if entries > before {
        let t = Instant::now();
        fill(&audit_store, entries).await?;
        let rate = (entries - before) as f64 / t.elapsed().as_secs_f64();
        rows.push(Row::new(
            format!("bulk fill to {entries} entries, 1000 per transaction"),
            "/s",
            rate,
            None,
        ));
    }

    let log = MerkleLog::open(audit_store.clone()).await?;
    let size = log.size();
    let head = log.tree_head(1).await?;
    audit_store.insert_head(&head.sign(&key)).await?;
    let mut proof_times = Vec::new();
    let mut proof_bytes = 0usize;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let index = seed % size;
        let t = Instant::now();
        let proof = log.inclusion_proof(index, size).await?;
        proof_times.push(t.elapsed());
        proof_bytes = proof_bytes.max(proof.len() * 32);
    }
    rows.push(Row::new(
        format!("inclusion proof at {size} entries, p50"),
        "µs",
        us(percentile(&mut proof_times, 50.0)),
        None,
    ));
    rows.push(Row::new(
        format!("inclusion proof at {size} entries, largest"),
        "bytes",
        proof_bytes as f64,
        None,
    ));
    let mut cons_times = Vec::new();
    let mut cons_bytes = 0usize;
    for old in [1, 1000, size / 3, size / 2 + 1, size - 1] {
        let t = Instant::now();
        let proof = log.consistency_proof(old, size).await?;
        cons_times.push(t.elapsed());
        cons_bytes = cons_bytes.max(proof.len() * 32);
    }
    rows.push(Row::new(
        format!("consistency proof to {size} entries, p50"),
        "µs",
        us(percentile(&mut cons_times, 50.0)),
        None,
    ));
    rows.push(Row::new(
        format!("consistency proof to {size} entries, largest"),
        "bytes",
        cons_bytes as f64,
        None,
    ));

    let t = Instant::now();
    let mut exported = Vec::with_capacity(size as usize);
    let mut after = None;
    loop {
        let page = audit_store
            .entries(&AuditFilter {
                after,
                limit: 5000,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.entry.index);
        exported.extend(page);
    }
    let read = t.elapsed();
    let heads = audit_store.heads().await?;
    let t = Instant::now();
    let verified = verify_log(&exported, &heads, &key.verifying_key())?;
    let verify = t.elapsed();
    anyhow::ensure!(
        verified.size == size,
        "verified {} of {size}",
        verified.size
    );
    rows.push(Row::new(
        format!("read all {size} entries back (export)"),
        "ms",
        ms(read),
        None,
    ));
    rows.push(Row::new(
        format!("verify_log over {size} entries"),
        "ms",
        ms(verify),
        None,
    ));
    store.close().await;
    Ok(rows)
}

/// Times `warren audit verify` against a real daemon holding `entries`
/// entries (filled while it is stopped, signed with its own key).
pub async fn verify_through_cli(entries: u64) -> anyhow::Result<Vec<Row>> {
    let mut d = warren_e2e::Daemon::start().await?;
    d.stop_with(nix::sys::signal::Signal::SIGTERM)?;
    let store = SqliteStore::open(d.data_dir().join("warren.db")).await?;
    let key = warren_audit::keyfile::load(&d.data_dir().join("secrets/audit.key"))?;
    let audit = store.audit();
    fill(&audit, entries).await?;
    let log = MerkleLog::open(audit.clone()).await?;
    let head = log.tree_head(1).await?;
    audit.insert_head(&head.sign(&key)).await?;
    store.close().await;
    d.restart().await?;
    let t = Instant::now();
    let out = d.run_cli(&["audit", "verify", "--json"]);
    let took = t.elapsed();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    anyhow::ensure!(report["ok"] == true, "verify failed: {report}");
    Ok(vec![Row::new(
        format!(
            "`warren audit verify` over {} entries (HTTP export + local check)",
            log.size()
        ),
        "ms",
        ms(took),
        None,
    )])
}
