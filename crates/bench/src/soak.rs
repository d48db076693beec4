//! The soak: the crash-chaos workload's clients (`warren_e2e::chaos`:
//! create, streaming exec, upload, pause, resume, snapshot, fork, kill)
//! run against one daemon for `minutes`, without kills. Every `interval`
//! the daemon process is sampled (resident memory, open descriptors,
//! threads), with the host's runsc processes and the operations'
//! latencies in that interval. At the end the clients stop after their
//! operation under way, the chaos invariants are checked (every sandbox
//! answers, nothing leaked on the host, uploads read back, the audit log
//! verifies), every sandbox is killed, and the daemon is sampled once more
//! against its sample before the first sandbox.
//!
//! Printed: a table of the intervals, then the drift rows (last interval
//! against the first; after the end against before the start).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::Mutex;
use warren_e2e::Daemon;
use warren_e2e::chaos::{self, Ledger, Rng};

use crate::host;
use crate::stats::{Row, ms, percentile};

/// The operations reported, in the table's order.
const OPS: [&str; 8] = [
    "create", "exec", "upload", "pause", "resume", "snapshot", "fork", "kill",
];

/// One look at the daemon process and the host.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kb: u64,
    fds: usize,
    threads: u64,
    /// Processes of the daemon's sandboxes (runsc's, naming its data
    /// directory).
    runsc: usize,
    /// Sandboxes the daemon lists (running and paused).
    sandboxes: usize,
}

/// One interval's sample and operations.
#[derive(Debug, Clone)]
struct Interval {
    at: Duration,
    sample: Sample,
    latencies: BTreeMap<&'static str, Vec<Duration>>,
}

impl Interval {
    fn ops(&self) -> usize {
        self.latencies.values().map(Vec::len).sum()
    }

    fn p50(&self, op: &str) -> Option<f64> {
        let mut l = self.latencies.get(op)?.clone();
        (!l.is_empty()).then(|| ms(percentile(&mut l, 50.0)))
    }

    fn p99_all(&self) -> f64 {
        let mut all: Vec<Duration> = self.latencies.values().flatten().copied().collect();
        ms(percentile(&mut all, 99.0))
    }
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn sample(d: &Daemon, pid: u32) -> anyhow::Result<Sample> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).context("the daemon is gone")?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    let list: warren_api_types::SandboxList = d
        .get("/v1/sandboxes?state=running&state=paused")
        .send()
        .await?
        .json()
        .await?;
    Ok(Sample {
        rss_kb: status_field(&status, "VmRSS").unwrap_or(0),
        fds,
        threads: status_field(&status, "Threads").unwrap_or(0),
        runsc: host::processes_naming(d.data_dir()),
        sandboxes: list.sandboxes.len(),
    })
}

pub async fn run(
    minutes: u64,
    interval_s: u64,
    clients: usize,
    max_live: usize,
    seed: Option<u64>,
) -> anyhow::Result<Vec<Row>> {
    let mut d = Daemon::start().await?;
    d.ensure_template("base").await?;
    let pid = d.pid().context("daemon pid")?;
    let seed = match seed {
        Some(s) => s,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    eprintln!("soak: seed {seed}, {minutes} min, {clients} clients, at most {max_live} sandboxes");
    let before = sample(&d, pid).await?;
    let cfg = chaos::Config {
        kills: 0,
        seed,
        clients,
        max_live,
        round: Duration::ZERO,
        sandbox: json!({"template": "base", "memory_mb": 256, "disk_mb": 256, "timeout_s": 7200}),
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng::new(seed);
    let target = chaos::Target::of(&d);
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(chaos::client(
                target.clone(),
                cfg.clone(),
                rng.fork(),
                ledger.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    let end = started + Duration::from_secs(minutes * 60);
    let every = Duration::from_secs(interval_s.max(1));
    let mut intervals = Vec::new();
    println!(
        "| min | sandboxes | daemon RSS | fds | threads | runsc procs | ops | create p50 | exec p50 | upload p50 | pause p50 | resume p50 | fork p50 | p99 all ops |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    while Instant::now() < end {
        tokio::time::sleep(every.min(end.saturating_duration_since(Instant::now()))).await;
        let s = sample(&d, pid).await?;
        let latencies = ledger.lock().await.take_latencies();
        let i = Interval {
            at: started.elapsed(),
            sample: s,
            latencies,
        };
        print_interval(&i);
        intervals.push(i);
    }
    ledger.lock().await.stop = true;
    for w in workers {
        if tokio::time::timeout(Duration::from_secs(180), w)
            .await
            .is_err()
        {
            eprintln!("soak: a client did not stop within 3 min");
        }
    }
    let mut report = chaos::Report::default();
    let violations = {
        let mut l = ledger.lock().await;
        chaos::check_invariants(&d, &mut l, &mut report).await?
    };
    for v in &violations {
        eprintln!("soak: violation: {v:?}");
    }
    let (acked, missed) = {
        let l = ledger.lock().await;
        (l.acked.clone(), l.missed.clone())
    };
    eprintln!("soak: acknowledged {acked:?}");
    eprintln!("soak: not acknowledged {missed:?}");

    // Everything killed: the daemon back where it started?
    kill_everything(&d).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = sample(&d, pid).await?;
    let log = d.log();
    let panics = log.matches("panicked").count();
    let internal = log.matches("internal error").count();
    d.stop_with(nix::sys::signal::Signal::SIGTERM)?;

    let mut rows = Vec::new();
    if let (Some(first), Some(last)) = (intervals.first(), intervals.last()) {
        rows.extend(drift(first, last));
    }
    rows.extend([
        Row::new(
            "daemon RSS after every sandbox is killed / before the first",
            "MiB",
            after.rss_kb as f64 / 1024.0,
            Some(before.rss_kb as f64 / 1024.0),
        ),
        Row::new(
            "daemon open fds after / before",
            "fds",
            after.fds as f64,
            Some(before.fds as f64),
        ),
        Row::new(
            "daemon threads after / before",
            "threads",
            after.threads as f64,
            Some(before.threads as f64),
        ),
        Row::new(
            "processes of its sandboxes (runsc) after / before",
            "procs",
            after.runsc as f64,
            Some(before.runsc as f64),
        ),
        Row::new(
            format!(
                "operations acknowledged ({} not: {})",
                missed.values().sum::<usize>(),
                missed
                    .iter()
                    .map(|((op, why), n)| format!("{op} {why} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "ops",
            acked.values().sum::<usize>() as f64,
            None,
        ),
        Row::new(
            "invariant violations at the end",
            "violations",
            violations.len() as f64,
            None,
        ),
        Row::new(
            format!("daemon log: panics ({internal} internal errors)"),
            "lines",
            panics as f64,
            None,
        ),
    ]);
    Ok(rows)
}

fn print_interval(i: &Interval) {
    let p = |op: &str| i.p50(op).map_or("—".to_owned(), |v| format!("{v:.0} ms"));
    println!(
        "| {:.0} | {} | {:.1} MiB | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} ms |",
        i.at.as_secs_f64() / 60.0,
        i.sample.sandboxes,
        i.sample.rss_kb as f64 / 1024.0,
        i.sample.fds,
        i.sample.threads,
        i.sample.runsc,
        i.ops(),
        p("create"),
        p("exec"),
        p("upload"),
        p("pause"),
        p("resume"),
        p("fork"),
        i.p99_all()
    );
}

/// The last interval against the first.
fn drift(first: &Interval, last: &Interval) -> Vec<Row> {
    let mut rows = vec![
        Row::new(
            "daemon RSS, last interval / first",
            "MiB",
            last.sample.rss_kb as f64 / 1024.0,
            Some(first.sample.rss_kb as f64 / 1024.0),
        ),
        Row::new(
            "daemon open fds, last / first",
            "fds",
            last.sample.fds as f64,
            Some(first.sample.fds as f64),
        ),
        Row::new(
            "daemon threads, last / first",
            "threads",
            last.sample.threads as f64,
            Some(first.sample.threads as f64),
        ),
        Row::new(
            "operations per interval, last / first",
            "ops",
            last.ops() as f64,
            Some(first.ops() as f64),
        ),
        Row::new(
            "p99 of all operations, last / first",
            "ms",
            last.p99_all(),
            Some(first.p99_all()),
        ),
    ];
    for op in OPS {
        if let (Some(l), Some(f)) = (last.p50(op), first.p50(op)) {
            rows.push(Row::new(
                format!("{op} p50, last / first"),
                "ms",
                l,
                Some(f),
            ));
        }
    }
    rows
}

/// Kills every sandbox the daemon lists and waits until none is left.
async fn kill_everything(d: &Daemon) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let list: warren_api_types::SandboxList = d
            .get("/v1/sandboxes?state=creating&state=running&state=pausing&state=paused&state=resuming")
            .send()
            .await?
            .json()
            .await?;
        if list.sandboxes.is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} sandboxes still alive after 5 min",
            list.sandboxes.len()
        );
        for sb in list.sandboxes {
            d.delete(&format!("/v1/sandboxes/{}", sb.id)).send().await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    host::wait_for_teardown(d, Duration::from_secs(300)).await
}
