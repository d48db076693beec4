//! The crash-chaos suite: a mixed workload (creates, streaming execs,
//! uploads, pauses, resumes, snapshots, forks, kills) against a daemon
//! killed with SIGKILL at random moments and restarted each time; after
//! every restart nothing acknowledged is lost and nothing is leaked (see
//! `warren_e2e::chaos`).
//!
//! CI runs `CI_KILLS` kills; `WARREN_CHAOS_KILLS=50` runs the full
//! version, `WARREN_CHAOS_SEED` replays a run's choices.

use warren_e2e::Daemon;
use warren_e2e::chaos::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_chaos_daemon_kills_lose_nothing() {
    let cfg = Config::from_env().unwrap();
    let mut d = Daemon::with_base().await;
    let report = chaos::run(&mut d, &cfg).await.unwrap();
    assert_eq!(report.kills, cfg.kills);
    assert!(
        report.violations.is_empty(),
        "seed {}: {:#?}\n{}",
        cfg.seed,
        report.violations,
        d.log()
    );
    assert_eq!(report.sandboxes_lost, 0);
    assert_eq!(report.bytes_lost, 0);
    // The workload did reach the daemon (a host short of disk refuses
    // every create with 507: the log's end says so).
    for kind in ["create", "exec", "upload"] {
        if report.acked.get(kind).copied().unwrap_or(0) == 0 {
            let log = d.log();
            let tail: Vec<_> = log.lines().rev().take(30).collect();
            panic!(
                "seed {}: no {kind} acknowledged: {:?}\n{}",
                cfg.seed,
                report.acked,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}
