//! The meter: what every sandbox uses, measured, summed per minute and
//! stored (see `warren_core::metering` and `docs/metering.md`).
//!
//! Every interval (15 s by default) the meter visits every sandbox that is
//! not dead, and every dead one that still has snapshots, and adds to its
//! sums what happened since it last counted it: CPU time (the difference of
//! the cgroup counter of its instance), memory in use, the memory limit and
//! its disk's allocated bytes, each times the elapsed time, its traffic
//! beyond the host (the difference of its firewall counters), its
//! snapshots' stored bytes times the elapsed time, and the elapsed time as
//! running, standby (paused, instance kept frozen) or paused.
//!
//! Invariants:
//! - sums and the marks they advance are written in one transaction; a
//!   counter below its mark is a new counter (a new instance after a
//!   restore, a firewall table replaced at start), whose whole value is
//!   new use;
//! - an instance that ends (stop, destroy, pause without standby) is
//!   counted just before, by [`runtime::MeteredRuntime`], so a sandbox
//!   killed between two samples loses nothing; an instance that starts
//!   (create, restore) counts CPU from zero;
//! - traffic marks live in memory only: the firewall's counters start
//!   from zero with the table, which every daemon start replaces;
//! - wall time of a sandbox that ended between two samples is counted up
//!   to its end, in the state it was last seen in.

mod activity;
mod runtime;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Mutex;
use warren_core::metering::{Prices, Usage, mib_ms};
use warren_core::rules::Reading;
use warren_core::{Limits, SandboxId, SandboxState, TeamId, WarrenError};
use warren_net::Traffic;
use warren_runtime::{Runtime, Stats};
use warren_store::{MeterMark, SandboxFilter, Store, UsageSample};

pub use activity::{Activity, ActivityLog};
pub use runtime::MeteredRuntime;

use super::Network;
use crate::clock::Clock;

/// One running sandbox's measurements from a sample, for the anomaly
/// rules.
#[derive(Debug, Clone)]
pub struct Observed {
    pub sandbox: SandboxId,
    pub team: TeamId,
    pub reading: Reading,
}

/// How often the meter samples by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

const MIB: u64 = 1024 * 1024;

/// What the meter counts a sandbox's wall time as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Running,
    Standby,
    Paused,
}

/// Where the meter stands for one sandbox.
#[derive(Debug, Clone)]
struct Mark {
    cpu_ns: u64,
    counted_to: OffsetDateTime,
    sent: u64,
    received: u64,
    /// What it was when last counted live; `None` once its end is counted.
    kind: Option<Kind>,
}

impl Mark {
    fn new(counted_to: OffsetDateTime) -> Self {
        Self {
            cpu_ns: 0,
            counted_to,
            sent: 0,
            received: 0,
            kind: None,
        }
    }
}

#[derive(Default)]
struct State {
    /// `None` until the stored marks are loaded.
    marks: Option<HashMap<SandboxId, Mark>>,
    /// Counted by [`Meter::settle`], written with the next sample.
    pending: Vec<UsageSample>,
    /// The team of each sandbox the meter counts.
    team_of: HashMap<SandboxId, TeamId>,
    /// What each team's sandboxes used since the daemon started (for
    /// `/metrics`).
    team_totals: HashMap<TeamId, Usage>,
    /// What each live sandbox used since the daemon started.
    sandbox_totals: HashMap<SandboxId, Usage>,
}

/// The daemon's meter.
pub struct Meter {
    store: Arc<dyn Store>,
    /// The runtime itself (not the metered one).
    runtime: Arc<dyn Runtime>,
    network: Arc<Network>,
    clock: Clock,
    prices: Prices,
    interval: Duration,
    /// Sandboxes first seen are counted from their creation, but not from
    /// before this daemon started metering.
    since: OffsetDateTime,
    state: Mutex<State>,
    activity: ActivityLog,
}

/// The difference of a counter from its mark; a counter below its mark
/// was started again, and all of it is new.
fn delta(now: u64, mark: u64) -> u64 {
    if now >= mark { now - mark } else { now }
}

fn elapsed_ms(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    u64::try_from((to - from).whole_milliseconds()).unwrap_or(0)
}

fn minute_of(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

impl Meter {
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        network: Arc<Network>,
        clock: Clock,
        prices: Prices,
        interval: Duration,
    ) -> Self {
        let since = clock.now();
        Self {
            store,
            runtime,
            network,
            clock,
            prices,
            interval,
            since,
            state: Mutex::default(),
            activity: ActivityLog::default(),
        }
    }

    pub fn prices(&self) -> &Prices {
        &self.prices
    }

    /// Where what the host's counters miss is noted between samples.
    pub fn activity(&self) -> &ActivityLog {
        &self.activity
    }

    /// The stored marks, loaded once.
    async fn marks<'a>(
        &self,
        state: &'a mut State,
    ) -> Result<&'a mut HashMap<SandboxId, Mark>, WarrenError> {
        if state.marks.is_none() {
            let stored = self.store.meter_marks().await?;
            state.marks = Some(
                stored
                    .into_iter()
                    .map(|m| {
                        let mut mark = Mark::new(m.counted_to);
                        mark.cpu_ns = m.cpu_ns;
                        (m.sandbox, mark)
                    })
                    .collect(),
            );
        }
        Ok(state.marks.get_or_insert_with(HashMap::new))
    }

    /// Adds what an instance's `stats` say over `ms` to `usage`.
    fn count_instance(
        usage: &mut Usage,
        mark: &mut Mark,
        stats: &Stats,
        memory_limit_mb: u32,
        ms: u64,
    ) {
        usage.cpu_ns = usage
            .cpu_ns
            .saturating_add(delta(stats.cpu_usage_ns, mark.cpu_ns));
        mark.cpu_ns = stats.cpu_usage_ns;
        usage.memory_mib_ms += mib_ms(stats.memory_bytes, ms);
        usage.memory_limit_mib_ms += mib_ms(u64::from(memory_limit_mb) * MIB, ms);
        usage.disk_mib_ms += mib_ms(stats.disk_bytes, ms);
    }

    fn count_traffic(usage: &mut Usage, mark: &mut Mark, t: &Traffic) {
        usage.egress_bytes = delta(t.sent_bytes, mark.sent);
        usage.ingress_bytes = delta(t.received_bytes, mark.received);
        mark.sent = t.sent_bytes;
        mark.received = t.received_bytes;
    }

    fn count_wall(usage: &mut Usage, kind: Kind, ms: u64) {
        match kind {
            Kind::Running => usage.running_ms += ms,
            Kind::Standby => usage.standby_ms += ms,
            Kind::Paused => usage.paused_ms += ms,
        }
    }

    /// Counts sandbox `id`'s instance now, before it ends.
    pub(crate) async fn settle(&self, id: &SandboxId, with_traffic: bool) {
        let Ok(stats) = self.runtime.stats(id).await else {
            return;
        };
        let rec = match self.store.get_sandbox(id).await {
            Ok(Some(rec)) => rec,
            _ => return,
        };
        let traffic = if with_traffic {
            self.network.traffic().await.remove(&rec.net_slot)
        } else {
            None
        };
        let now = self.clock.now();
        let mut state = self.state.lock().await;
        state.team_of.insert(id.clone(), rec.team.clone());
        let Ok(marks) = self.marks(&mut state).await else {
            return;
        };
        let mark = marks
            .entry(id.clone())
            .or_insert_with(|| Mark::new(rec.created_at.max(self.since)));
        let ms = elapsed_ms(mark.counted_to, now);
        let kind = if rec.state == SandboxState::Paused {
            Kind::Standby
        } else {
            Kind::Running
        };
        let mut usage = Usage::default();
        Self::count_instance(&mut usage, mark, &stats, rec.limits.memory_mb, ms);
        Self::count_wall(&mut usage, kind, ms);
        if let Some(t) = traffic {
            Self::count_traffic(&mut usage, mark, &t);
        }
        mark.counted_to = mark.counted_to.max(now);
        mark.kind = Some(kind);
        state.pending.push(UsageSample {
            sandbox: id.clone(),
            minute: minute_of(now),
            usage,
        });
    }

    /// A new instance of `id` starts: its CPU counter starts from zero.
    pub(crate) async fn instance_starting(&self, id: &SandboxId) {
        let mut state = self.state.lock().await;
        if let Ok(marks) = self.marks(&mut state).await
            && let Some(mark) = marks.get_mut(id)
        {
            mark.cpu_ns = 0;
        }
    }

    /// One sample of every sandbox, written; the running ones'
    /// measurements.
    pub async fn sample(&self) -> Result<Vec<Observed>, WarrenError> {
        let live = self.store.list_sandboxes(&SandboxFilter::default()).await?;
        let snapshots: HashMap<SandboxId, u64> = self
            .store
            .snapshot_bytes_by_sandbox()
            .await?
            .into_iter()
            .collect();
        let traffic = self.network.traffic().await;
        let mut activity = self.activity.take();
        let now = self.clock.now();
        let minute = minute_of(now);

        let mut state = self.state.lock().await;
        let mut samples = std::mem::take(&mut state.pending);
        for rec in &live {
            state.team_of.insert(rec.id.clone(), rec.team.clone());
        }
        let marks = self.marks(&mut state).await?;
        let mut stored = Vec::new();
        let mut seen = HashSet::new();
        let mut observed = Vec::new();
        for rec in &live {
            seen.insert(rec.id.clone());
            let stats = self.runtime.stats(&rec.id).await.ok();
            let mark = marks
                .entry(rec.id.clone())
                .or_insert_with(|| Mark::new(rec.created_at.max(self.since)));
            let ms = elapsed_ms(mark.counted_to, now);
            let kind = match (rec.state, &stats) {
                (SandboxState::Paused, Some(_)) => Kind::Standby,
                (SandboxState::Paused, None) => Kind::Paused,
                _ => Kind::Running,
            };
            let mut usage = Usage::default();
            Self::count_wall(&mut usage, kind, ms);
            if let Some(stats) = &stats {
                Self::count_instance(&mut usage, mark, stats, rec.limits.memory_mb, ms);
            }
            if let Some(t) = traffic.get(&rec.net_slot) {
                Self::count_traffic(&mut usage, mark, t);
            }
            let act = activity.remove(&rec.id).unwrap_or_default();
            usage.egress_bytes += act.proxied_sent;
            if let Some(bytes) = snapshots.get(&rec.id) {
                usage.snapshot_mib_ms = mib_ms(*bytes, ms);
            }
            if let (Kind::Running, Some(stats)) = (kind, &stats) {
                observed.push(Observed {
                    sandbox: rec.id.clone(),
                    team: rec.team.clone(),
                    reading: self.reading(&usage, &act, stats, &rec.limits, ms),
                });
            }
            mark.counted_to = mark.counted_to.max(now);
            mark.kind = Some(kind);
            stored.push(stored_mark(&rec.id, mark));
            samples.push(UsageSample {
                sandbox: rec.id.clone(),
                minute,
                usage,
            });
        }

        // Sandboxes that ended, and dead ones whose snapshots are stored.
        let gone: Vec<SandboxId> = marks
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        let mut forget = Vec::new();
        for id in gone {
            let Some(mark) = marks.get_mut(&id) else {
                continue;
            };
            let mut usage = Usage {
                egress_bytes: activity.remove(&id).map_or(0, |a| a.proxied_sent),
                ..Usage::default()
            };
            if let Some(kind) = mark.kind.take()
                && let Ok(Some(rec)) = self.store.get_sandbox(&id).await
            {
                let end = rec.state_changed_at.min(now);
                Self::count_wall(&mut usage, kind, elapsed_ms(mark.counted_to, end));
            }
            match snapshots.get(&id) {
                Some(bytes) => {
                    usage.snapshot_mib_ms = mib_ms(*bytes, elapsed_ms(mark.counted_to, now));
                    mark.counted_to = mark.counted_to.max(now);
                    stored.push(stored_mark(&id, mark));
                }
                None => {
                    marks.remove(&id);
                    forget.push(id.clone());
                }
            }
            samples.push(UsageSample {
                sandbox: id,
                minute,
                usage,
            });
        }
        // Proxied bytes of sandboxes the meter had already let go of.
        for (id, act) in activity {
            samples.push(UsageSample {
                sandbox: id,
                minute,
                usage: Usage {
                    egress_bytes: act.proxied_sent,
                    ..Usage::default()
                },
            });
        }
        samples.retain(|s| !s.usage.is_zero());
        if let Err(e) = self.store.record_usage(&samples, &stored, &forget).await {
            // Kept for the next sample; the marks stay advanced in memory.
            state.pending = samples;
            return Err(e.into());
        }
        let State {
            team_of,
            team_totals,
            sandbox_totals,
            ..
        } = &mut *state;
        for s in &samples {
            if let Some(team) = team_of.get(&s.sandbox) {
                team_totals.entry(team.clone()).or_default().add(&s.usage);
            }
            if seen.contains(&s.sandbox) {
                sandbox_totals
                    .entry(s.sandbox.clone())
                    .or_default()
                    .add(&s.usage);
            }
        }
        sandbox_totals.retain(|id, _| seen.contains(id));
        for id in &forget {
            team_of.remove(id);
        }
        Ok(observed)
    }

    /// Shares of its limits and the spend rate, over `ms` (CPU and spend
    /// are 0 over no time).
    fn reading(
        &self,
        usage: &Usage,
        act: &Activity,
        stats: &Stats,
        limits: &Limits,
        ms: u64,
    ) -> Reading {
        let per_minute = |n: u64| {
            if ms > 0 {
                n as f64 * 60_000.0 / ms as f64
            } else {
                0.0
            }
        };
        let share = |used: f64, limit: f64| {
            if limit > 0.0 {
                (used / limit).clamp(0.0, 1.0)
            } else {
                0.0
            }
        };
        Reading {
            cpu: share(
                usage.cpu_ns as f64,
                ms as f64 * 1e6 * f64::from(limits.cpus),
            ),
            memory: share(
                stats.memory_bytes as f64,
                f64::from(limits.memory_mb) * MIB as f64,
            ),
            pids: share(stats.pids as f64, f64::from(limits.pids)),
            spend_per_hour: if ms > 0 {
                self.prices.cost(usage).total * 3_600_000.0 / ms as f64
            } else {
                0.0
            },
            egress_denials_per_minute: per_minute(act.denials),
            oldest_process_s: 0.0,
            forks_per_minute: per_minute(act.forks),
        }
    }

    /// What each team's sandboxes used since the daemon started.
    pub async fn team_totals(&self) -> Vec<(TeamId, Usage)> {
        let state = self.state.lock().await;
        let mut totals: Vec<(TeamId, Usage)> = state
            .team_totals
            .iter()
            .map(|(t, u)| (t.clone(), *u))
            .collect();
        totals.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        totals
    }

    /// What each live sandbox used since the daemon started, with its
    /// team, as of the last sample.
    pub async fn sandbox_totals(&self) -> Vec<(SandboxId, TeamId, Usage)> {
        let state = self.state.lock().await;
        let mut totals: Vec<_> = state
            .sandbox_totals
            .iter()
            .filter_map(|(id, u)| Some((id.clone(), state.team_of.get(id)?.clone(), *u)))
            .collect();
        totals.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        totals
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}

fn stored_mark(id: &SandboxId, mark: &Mark) -> MeterMark {
    MeterMark {
        sandbox: id.clone(),
        cpu_ns: mark.cpu_ns,
        counted_to: mark.counted_to,
    }
}
