//! The integrity suite: 200 files, a process's memory and a server survive
//! pause/resume from standby and from the image, forks and rollbacks with
//! not a byte changed (see `warren_e2e::integrity`).
//!
//! CI runs 6 cycles, 2 forks and 2 rollbacks; `WARREN_INTEGRITY_CYCLES=100
//! WARREN_INTEGRITY_FORKS=20 WARREN_INTEGRITY_ROLLBACKS=20` the full
//! version; `WARREN_INTEGRITY_SEED` replays a run.

use warren_e2e::Daemon;
use warren_e2e::integrity::{self, Config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_integrity_pause_fork_rollback_change_no_byte() {
    let cfg = Config::from_env().unwrap();
    let mut d = Daemon::with_base_and(integrity::STANDBY_FLAGS).await;
    let report = integrity::run(&mut d, &cfg).await.unwrap_or_else(|e| {
        panic!("seed {}: {e:#}\n{}", cfg.seed, d.log());
    });
    assert!(
        report.problems.is_empty(),
        "seed {}: {:#?}",
        cfg.seed,
        report.problems
    );
    assert_eq!(report.bytes_differing, 0);
    assert_eq!(report.entries_differing, 0);
    assert_eq!(
        (
            report.standby_cycles + report.image_cycles,
            report.forks,
            report.rollbacks
        ),
        (cfg.cycles, cfg.forks, cfg.rollbacks)
    );
    assert_eq!(
        report.checks,
        2 + cfg.cycles + 4 * cfg.forks + 2 * cfg.rollbacks
    );
}
