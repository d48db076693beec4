//! Throughput of the audit log core at 10^6 entries (in-memory store):
//! appends per second, proof generation time and size, full verification.
//!
//! `cargo run --release -p warren-audit --example audit_bench [ENTRIES]`

use std::time::Instant;

use serde_json::json;
use warren_audit::{
    AuditEntry, ExportedEntry, MemoryStore, MerkleLog, NodeStore as _, Outcome, SigningKey,
    verify_consistency, verify_inclusion, verify_log,
};

fn entry(i: u64) -> AuditEntry {
    AuditEntry {
        index: 0,
        time_ms: 1_700_000_000_000 + i,
        team: "team_bench".into(),
        actor: vec!["user:alice".into(), format!("sandbox:sb_{:016x}", i / 100)],
        action: "process.exec".into(),
        target: format!("sb_{:016x}", i / 100),
        outcome: Outcome::Ok,
        details: json!({"argv": ["python3", "-c", "print(1)"], "pid": i % 32768, "exit": 0})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut log = MerkleLog::open(MemoryStore::new()).await?;

    let entries: Vec<AuditEntry> = (0..n).map(entry).collect();
    let mut exported = Vec::with_capacity(entries.len());
    let mut heads = Vec::new();
    let started = Instant::now();
    for mut e in entries {
        log.append(&mut e).await?;
        exported.push(e);
    }
    let append = started.elapsed();
    println!(
        "append: {n} entries in {:.2} s = {:.0} appends/s ({:.2} µs each, canonical encoding + hashing + store)",
        append.as_secs_f64(),
        n as f64 / append.as_secs_f64(),
        append.as_secs_f64() * 1e6 / n as f64
    );

    let step = (n / 100).max(1);
    let started = Instant::now();
    let mut size = step;
    while size <= n {
        heads.push(log.root(size).await.map(|root| {
            warren_audit::TreeHead {
                size,
                root_hash: root,
                timestamp_ms: 1_800_000_000_000 + size,
            }
            .sign(&key)
        })?);
        size += step;
    }
    println!(
        "signed heads: {} (root + Ed25519 sign) in {:.1} ms",
        heads.len(),
        started.elapsed().as_secs_f64() * 1e3
    );

    let root = log.root(n).await?;
    let samples = 2000u64;
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };

    let (mut gen_ns, mut ver_ns, mut max_len) = (0u128, 0u128, 0usize);
    for _ in 0..samples {
        let index = next(n);
        let t = Instant::now();
        let proof = log.inclusion_proof(index, n).await?;
        gen_ns += t.elapsed().as_nanos();
        max_len = max_len.max(proof.len());
        let leaf = log.store().leaf(index).await?.ok_or("leaf missing")?;
        let t = Instant::now();
        verify_inclusion(&leaf, index, n, &proof, &root)?;
        ver_ns += t.elapsed().as_nanos();
    }
    println!(
        "inclusion proof at {n}: generate {:.1} µs, verify {:.1} µs, at most {} hashes = {} bytes",
        gen_ns as f64 / samples as f64 / 1e3,
        ver_ns as f64 / samples as f64 / 1e3,
        max_len,
        max_len * 32
    );

    let (mut gen_ns, mut ver_ns, mut max_len) = (0u128, 0u128, 0usize);
    for _ in 0..samples {
        let old = 1 + next(n - 1);
        let old_root = log.root(old).await?;
        let t = Instant::now();
        let proof = log.consistency_proof(old, n).await?;
        gen_ns += t.elapsed().as_nanos();
        max_len = max_len.max(proof.len());
        let t = Instant::now();
        verify_consistency(old, n, &old_root, &root, &proof)?;
        ver_ns += t.elapsed().as_nanos();
    }
    println!(
        "consistency proof to {n}: generate {:.1} µs, verify {:.1} µs, at most {} hashes = {} bytes",
        gen_ns as f64 / samples as f64 / 1e3,
        ver_ns as f64 / samples as f64 / 1e3,
        max_len,
        max_len * 32
    );

    let mut lines = Vec::with_capacity(exported.len());
    for e in exported {
        let leaf_hash = log.store().leaf(e.index).await?;
        lines.push(ExportedEntry {
            entry: e,
            leaf_hash,
        });
    }
    let started = Instant::now();
    let report = verify_log(&lines, &heads, &key.verifying_key())?;
    let verify = started.elapsed();
    println!(
        "verify_log: {} entries and {} signed heads in {:.2} s ({:.2} µs per entry)",
        report.size,
        report.heads,
        verify.as_secs_f64(),
        verify.as_secs_f64() * 1e6 / report.size.max(1) as f64
    );
    Ok(())
}
