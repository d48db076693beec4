//! Limits reach the instance; an instance whose processes died is seen
//! as exited.

use std::time::Duration;

use warren_core::Limits;

use super::agent::{Agent, CALL};
use super::lifecycle::ensure_gone;
use super::{ConformanceError, RuntimeFactory, Step, abandon, ensure, finish};
use crate::Runtime;

const MIB: u64 = 1024 * 1024;

/// Processes the pids check tries to start: far past its limit.
const BOMB: u32 = 2000;
/// How long the pids check watches a fork bomb.
const BOMB_WATCH: Duration = Duration::from_secs(30);

/// The memory limit is what the instance sees as its memory (`MemTotal`)
/// and bounds its usage (`stats`); the pids limit bounds a fork bomb:
/// `stats` never counts more tasks than the limit, and the bomb either
/// ends the instance (gVisor's kernel dies when it cannot make a thread)
/// or leaves it answering.
///
/// The CPU limit is given but not measured: a quota shows only as time,
/// and no check here depends on timing.
pub async fn check_limits_reach_the_instance(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    // Enough memory that the pids limit is reached first (gVisor's kernel
    // costs ~0.45 MiB per task here).
    let limits = Limits {
        memory_mb: 448,
        pids: Limits::MIN_PIDS,
        ..Limits::default()
    };
    let spec = factory.spec(0, limits);
    rt.create(&spec).await.step("create")?;
    let id = spec.id.clone();
    let instance = match rt.start(&id).await.step("start") {
        Ok(i) => i,
        Err(e) => return abandon(&rt, &[&id], e).await,
    };
    let result = async {
        let agent = Agent::new(&instance)?;
        agent.wait_ready(factory.boot_timeout()).await?;
        let meminfo = agent.run("cat", &["/proc/meminfo"], CALL).await?.stdout;
        let total_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        ensure(
            total_kib.is_some_and(|kib| kib > 0 && kib <= u64::from(limits.memory_mb) * 1024),
            || {
                format!(
                    "MemTotal {total_kib:?} kB inside, the limit is {} MiB",
                    limits.memory_mb
                )
            },
        )?;
        let stats = rt.stats(&id).await.step("stats")?;
        ensure(
            stats.pids > 0
                && stats.memory_bytes > 0
                && stats.memory_bytes <= u64::from(limits.memory_mb) * MIB,
            || format!("stats {stats:?} under {limits:?}"),
        )?;
        fork_bomb_is_bounded(&rt, &agent, &id, limits).await
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// `has_exited` is false while the instance runs, true once everything in
/// it died (root inside kills PID 1), and false for an unknown id; the
/// exited instance is then destroyed without a trace.
pub async fn check_has_exited_after_processes_die(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = super::lifecycle::start_ready(factory, &rt, 0).await?;
    let result = async {
        ensure(!rt.has_exited(&id).await.step("has_exited")?, || {
            format!("has_exited is true for the running {id}")
        })?;
        let agent = Agent::new(&instance)?;
        // The command cannot end normally: the agent running it goes.
        let _ = agent
            .run_bounded("kill", &["-9", "1"], Duration::from_secs(5))
            .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !rt.has_exited(&id).await.step("has_exited")? {
            if tokio::time::Instant::now() >= deadline {
                return Err(ConformanceError::Violated(format!(
                    "has_exited stayed false for 30 s after PID 1 of {id} was killed"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ensure(!agent.answers_within(Duration::from_secs(1)).await, || {
            format!("{id} has exited but its agent answers")
        })
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// Starts `BOMB` sleeping processes in the background and watches the
/// instance until it exits or the bomb had time to finish.
async fn fork_bomb_is_bounded<R: Runtime>(
    rt: &R,
    agent: &Agent,
    id: &warren_core::SandboxId,
    limits: Limits,
) -> Result<(), ConformanceError> {
    let script =
        format!("i=0; while [ $i -lt {BOMB} ]; do sleep 600 & i=$((i+1)); done; sleep 600");
    agent.spawn_tagged("bomb", "sh", &["-c", &script]).await?;
    let deadline = tokio::time::Instant::now() + BOMB_WATCH;
    let mut most = 0;
    loop {
        if rt
            .has_exited(id)
            .await
            .step("has_exited during a fork bomb")?
        {
            break;
        }
        // A stats call may race the instance's end; only what it says counts.
        if let Ok(stats) = rt.stats(id).await {
            most = most.max(stats.pids);
            ensure(stats.pids <= u64::from(limits.pids), || {
                format!("during a fork bomb stats say {stats:?} under {limits:?}")
            })?;
        }
        if tokio::time::Instant::now() >= deadline {
            // Still alive: it must still answer, with the bomb bounded.
            return ensure(agent.answers_within(CALL).await, || {
                format!("after a fork bomb {id} neither exited nor answers (at most {most} tasks)")
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}
