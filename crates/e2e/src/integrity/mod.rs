//! The integrity suite: a sandbox with known files, a process with known
//! memory and a server goes through pause/resume cycles of both kinds,
//! forks and rollbacks; after every one, not a byte may differ, the
//! process must hold exactly the state expected and the server must answer
//! (see [`fixture`] for what the sandbox holds, [`check`] for the check).
//!
//! Which kind of pause a resume undoes is the daemon's choice
//! (`warren serve --standby`): the first half of the run goes against a
//! daemon with standby on ([`STANDBY_FLAGS`]: every resume thaws the
//! frozen instance), the second half against the same daemon restarted
//! with standby off (every resume restores the image from disk). Forks and
//! rollbacks are spread over both halves in a seeded order. At the end the
//! sandbox's timeline must show exactly that many resumes of each kind.
//!
//! Everything random (file sizes and bytes, the order of the cycles, which
//! files change) follows from one seed, printed first
//! (`WARREN_INTEGRITY_SEED` replays it).

mod check;
mod cycles;
mod fixture;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::Daemon;
use crate::chaos::Rng;
pub use fixture::{Chain, Expected};

/// Flags of the daemon [`run`] starts against.
pub const STANDBY_FLAGS: &[&str] = &["--standby", "1h"];

/// What a run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Pause/resume cycles, half from standby, half from the image.
    pub cycles: usize,
    pub forks: usize,
    pub rollbacks: usize,
    pub files: usize,
    pub seed: u64,
}

impl Config {
    /// The CI version, or what `WARREN_INTEGRITY_CYCLES`, `_FORKS`,
    /// `_ROLLBACKS` and `_SEED` say.
    pub fn from_env() -> anyhow::Result<Self> {
        let num = |var: &str, default: usize| -> anyhow::Result<usize> {
            match std::env::var(var) {
                Ok(v) => v.parse().with_context(|| var.to_owned()),
                Err(_) => Ok(default),
            }
        };
        let seed = match std::env::var("WARREN_INTEGRITY_SEED") {
            Ok(v) => v.parse().context("WARREN_INTEGRITY_SEED")?,
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64,
        };
        Ok(Self {
            cycles: num("WARREN_INTEGRITY_CYCLES", 6)?,
            forks: num("WARREN_INTEGRITY_FORKS", 2)?,
            rollbacks: num("WARREN_INTEGRITY_ROLLBACKS", 2)?,
            files: 200,
            seed,
        })
    }
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub checks: usize,
    pub standby_cycles: usize,
    pub image_cycles: usize,
    pub forks: usize,
    pub rollbacks: usize,
    /// Files and links found missing, extra or different, over all checks.
    pub entries_differing: usize,
    pub bytes_differing: u64,
    /// Every problem, with the cycle it was found after.
    pub problems: Vec<String>,
    /// Durations of each API call, by operation.
    pub timings: BTreeMap<&'static str, Vec<Duration>>,
    /// Size of the file set at the start.
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Report {
    /// The median duration of `op`.
    pub fn p50(&self, op: &str) -> Option<Duration> {
        let mut all = self.timings.get(op)?.clone();
        all.sort();
        all.get(all.len() / 2).copied()
    }
}

/// The state of one run.
struct Run<'a> {
    d: &'a mut Daemon,
    rng: Rng,
    chain: Chain,
    /// The sandbox every cycle starts from, and what it should hold.
    parent: String,
    expected: Expected,
    report: Report,
}

impl Run<'_> {
    fn problem(&mut self, text: String) {
        self.report.problems.push(text);
    }

    fn time(&mut self, op: &'static str, started: Instant) {
        self.report
            .timings
            .entry(op)
            .or_default()
            .push(started.elapsed());
    }

    async fn check(&mut self, label: &str, id: &str, expected: &Expected) -> anyhow::Result<()> {
        let diff = check::check(self.d, id, expected, &self.chain, &mut self.rng).await?;
        self.report.checks += 1;
        self.report.entries_differing += diff.entries;
        self.report.bytes_differing += diff.bytes;
        for p in diff.problems {
            self.problem(format!("{label}: {p}"));
        }
        Ok(())
    }

    /// `cycles` pause cycles, `forks` forks and `rollbacks` rollbacks in a
    /// seeded order.
    async fn phase(
        &mut self,
        kind: &str,
        cycles: usize,
        forks: usize,
        rollbacks: usize,
    ) -> anyhow::Result<()> {
        let mut ops: Vec<u8> = [(0, cycles), (1, forks), (2, rollbacks)]
            .iter()
            .flat_map(|&(op, n)| std::iter::repeat_n(op, n))
            .collect();
        for i in (1..ops.len()).rev() {
            ops.swap(i, self.rng.below(i + 1));
        }
        for (i, op) in ops.into_iter().enumerate() {
            if i.is_multiple_of(10) {
                println!(
                    "integrity: {kind} half, step {i}; {} problems so far",
                    self.report.problems.len()
                );
            }
            match op {
                0 => {
                    let n = self.report.standby_cycles + self.report.image_cycles;
                    self.pause_cycle(&format!("{kind} pause {n}"), kind == "standby")
                        .await?;
                    match kind {
                        "standby" => self.report.standby_cycles += 1,
                        _ => self.report.image_cycles += 1,
                    }
                }
                1 => {
                    let n = self.report.forks;
                    self.fork_cycle(&format!("fork {n}")).await?;
                    self.report.forks += 1;
                }
                _ => {
                    let n = self.report.rollbacks;
                    self.rollback_cycle(&format!("rollback {n}"), n).await?;
                    self.report.rollbacks += 1;
                }
            }
        }
        Ok(())
    }
}

/// Runs the suite against `d`, a daemon started with [`STANDBY_FLAGS`] and
/// the `base` template ready; restarts it once, with standby off. The
/// caller asserts on the report.
pub async fn run(d: &mut Daemon, cfg: &Config) -> anyhow::Result<Report> {
    println!(
        "integrity: seed {} ({} cycles, {} forks, {} rollbacks; replay with WARREN_INTEGRITY_SEED={})",
        cfg.seed, cfg.cycles, cfg.forks, cfg.rollbacks, cfg.seed
    );
    let started = Instant::now();
    let mut rng = Rng::new(cfg.seed);
    let mut expected = Expected::generate(&mut rng, cfg.files);
    let mut chain = Chain::new();
    let sandbox = d
        .create_sandbox(serde_json::json!({
            "template": "base",
            "memory_mb": 512,
            "disk_mb": 1024,
            "timeout_s": 86_400,
        }))
        .await;
    fixture::populate(d, &sandbox.id, &mut expected, &mut chain).await?;
    let bytes = expected.bytes();
    println!(
        "integrity: {} files, {} bytes in {}",
        expected.files.len(),
        bytes,
        sandbox.id
    );

    let (standby, image) = (cfg.cycles / 2, cfg.cycles - cfg.cycles / 2);
    let (forks_a, rollbacks_a) = (cfg.forks / 2, cfg.rollbacks / 2);
    let mut run = Run {
        d,
        rng,
        chain,
        parent: sandbox.id.clone(),
        expected,
        report: Report {
            bytes,
            ..Report::default()
        },
    };
    let baseline = run.expected.clone();
    run.check("after setup", &sandbox.id, &baseline).await?;
    run.phase("standby", standby, forks_a, rollbacks_a).await?;

    // The second half: the same sandbox, standby off.
    run.d.stop_with(nix::sys::signal::Signal::SIGTERM)?;
    run.d.set_serve_args(&["--standby", "0"]);
    run.d
        .restart()
        .await
        .context("restarting with standby off")?;
    let now = run.expected.clone();
    run.check("after the restart", &sandbox.id, &now).await?;
    run.phase(
        "image",
        image,
        cfg.forks - forks_a,
        cfg.rollbacks - rollbacks_a,
    )
    .await?;
    let mut report = run.report;

    let resumes = resumes_from_standby(run.d, &sandbox.id).await?;
    let want: Vec<bool> = std::iter::repeat_n(true, standby)
        .chain(std::iter::repeat_n(false, image))
        .collect();
    if resumes != want {
        report.problems.push(format!(
            "resumes from standby in the timeline: expected {want:?}, found {resumes:?}"
        ));
    }
    report.elapsed = started.elapsed();
    println!("integrity: {}", summary(&report));
    Ok(report)
}

/// Whether each resume of `id` thawed a frozen instance, from its timeline.
async fn resumes_from_standby(d: &Daemon, id: &str) -> anyhow::Result<Vec<bool>> {
    let resp = d
        .get(&format!("/v1/sandboxes/{id}/timeline"))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "timeline: {}", resp.status());
    let t: warren_api_types::Timeline = resp.json().await?;
    Ok(t.events
        .iter()
        .filter_map(|e| e.details.get("from_standby").and_then(Value::as_bool))
        .collect())
}

/// One line with every figure of the run.
pub fn summary(r: &Report) -> String {
    let p50 = |op| {
        r.p50(op)
            .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".to_owned())
    };
    format!(
        "{} standby + {} image pause cycles, {} forks, {} rollbacks, {} checks of {} bytes; \
         {} entries and {} bytes differing, {} problems; p50 pause {} (standby) {} (image), \
         resume {} (standby) {} (image), fork {}, snapshot {}, rollback {}; {:.0} s",
        r.standby_cycles,
        r.image_cycles,
        r.forks,
        r.rollbacks,
        r.checks,
        r.bytes,
        r.entries_differing,
        r.bytes_differing,
        r.problems.len(),
        p50("pause (standby)"),
        p50("pause (image)"),
        p50("resume (standby)"),
        p50("resume (image)"),
        p50("fork"),
        p50("snapshot"),
        p50("rollback"),
        r.elapsed.as_secs_f64()
    )
}
