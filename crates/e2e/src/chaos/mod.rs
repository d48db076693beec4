//! The crash-chaos driver: a mixed workload runs against a real daemon
//! while the daemon is killed with SIGKILL at random moments and started
//! again; after every restart the invariants are checked (see
//! [`invariants`]).
//!
//! One round: the workload's clients start ([`workload`]), the daemon is
//! killed after a random delay, the clients are stopped (what they had in
//! flight dies with the daemon: never acknowledged, never checked), the
//! daemon restarts on the same data directory, and once it answers
//! `/v1/health` (start-up reconciliation has run by then) the invariants
//! are checked against what the daemon acknowledged so far ([`Ledger`]).
//!
//! The workload and the invariants serve other drivers too: the soak
//! benchmark (`warren-bench soak`) runs the same clients for an hour
//! without killing the daemon and checks the invariants at its end.
//!
//! Everything random comes from one seed, printed at the start, so a
//! failing run is replayed with `WARREN_CHAOS_SEED`. The timing of a real
//! daemon is not replayed exactly; the choices of delays and operations
//! are.

mod invariants;
mod leaks;
mod ledger;
mod rng;
mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Mutex;

pub use invariants::{Violation, check as check_invariants};
pub use ledger::Ledger;
pub use rng::Rng;
pub use workload::{Target, client};

use crate::Daemon;

/// Kills of the CI version.
pub const CI_KILLS: usize = 8;

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Daemon kills (rounds).
    pub kills: usize,
    pub seed: u64,
    /// Concurrent workload clients.
    pub clients: usize,
    /// Sandboxes alive at most at once (the host has few cores).
    pub max_live: usize,
    /// The workload runs between this and twice this before each kill.
    pub round: Duration,
    /// The create request's body (template and size).
    pub sandbox: serde_json::Value,
}

impl Config {
    /// `WARREN_CHAOS_KILLS` (default [`CI_KILLS`]) and `WARREN_CHAOS_SEED`
    /// (default: from the clock).
    pub fn from_env() -> anyhow::Result<Self> {
        let kills = match std::env::var("WARREN_CHAOS_KILLS") {
            Ok(v) => v.parse().context("WARREN_CHAOS_KILLS")?,
            Err(_) => CI_KILLS,
        };
        let seed = match std::env::var("WARREN_CHAOS_SEED") {
            Ok(v) => v.parse().context("WARREN_CHAOS_SEED")?,
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64,
        };
        Ok(Self {
            kills,
            seed,
            clients: 3,
            max_live: 5,
            round: Duration::from_millis(1500),
            sandbox: serde_json::json!({
                "template": "base",
                "memory_mb": 256,
                "disk_mb": 256,
                "timeout_s": 3600,
            }),
        })
    }
}

/// What a run measured.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub kills: usize,
    /// Acknowledged operations, by kind.
    pub acked: std::collections::BTreeMap<&'static str, usize>,
    /// Acknowledged sandboxes the restart turned `failed` (with an audit
    /// entry saying why: allowed, but counted).
    pub failed_by_restart: usize,
    /// Acknowledged sandboxes no longer listed at all, or listed in a state
    /// the invariants do not allow.
    pub sandboxes_lost: usize,
    /// Bytes of acknowledged uploads that did not read back on a sandbox
    /// that still exists.
    pub bytes_lost: u64,
    /// Ends (kills, failures) the daemon had committed but not recorded
    /// when it was killed, recorded by the next start (its log says so).
    pub recovered_ends: usize,
    /// Every invariant broken, with the round it was found in.
    pub violations: Vec<(usize, Violation)>,
    pub elapsed: Duration,
}

/// Runs `cfg.kills` rounds against `d` (a daemon with the template of
/// `cfg.sandbox` ready). Returns the report; the caller asserts on it.
pub async fn run(d: &mut Daemon, cfg: &Config) -> anyhow::Result<Report> {
    println!(
        "chaos: seed {} ({} kills; replay with WARREN_CHAOS_SEED={} WARREN_CHAOS_KILLS={})",
        cfg.seed, cfg.kills, cfg.seed, cfg.kills
    );
    let started = Instant::now();
    let mut rng = Rng::new(cfg.seed);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut report = Report::default();
    for round in 0..cfg.kills {
        let target = workload::Target::of(d);
        let clients: Vec<_> = (0..cfg.clients)
            .map(|_| {
                tokio::spawn(workload::client(
                    target.clone(),
                    cfg.clone(),
                    rng.fork(),
                    ledger.clone(),
                ))
            })
            .collect();
        let wait = cfg.round.mul_f64(1.0 + rng.unit());
        tokio::time::sleep(wait).await;
        d.stop_with(nix::sys::signal::Signal::SIGKILL)?;
        for c in &clients {
            c.abort();
        }
        for c in clients {
            let _ = c.await;
        }
        report.kills += 1;
        d.restart().await.context("restarting after a kill")?;
        let found = invariants::check(d, &mut *ledger.lock().await, &mut report).await?;
        println!(
            "chaos: round {round}: killed after {wait:?}; {} sandboxes known, {} violations",
            ledger.lock().await.sandboxes.len(),
            found.len()
        );
        report
            .violations
            .extend(found.into_iter().map(|v| (round, v)));
    }
    report.acked = ledger.lock().await.acked.clone();
    report.recovered_ends = d
        .log()
        .matches("recording an end the daemon did not record")
        .count();
    report.elapsed = started.elapsed();
    println!("chaos: {report:#?}");
    Ok(report)
}
