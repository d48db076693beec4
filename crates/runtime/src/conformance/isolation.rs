//! Two sandboxes of one runtime cannot reach each other's agent.

use std::time::Duration;

use super::agent::{Agent, CALL};
use super::lifecycle::{ensure_gone, start_ready};
use super::{ConformanceError, RuntimeFactory, Step, ensure, finish};
use crate::Instance;

/// How long a connection that must fail is given (busybox's own timers
/// are not relied on; the command is killed from outside).
const BLOCKED: Duration = Duration::from_secs(4);

/// `wget` of `url` from inside `from`, bounded by `bound`: whether it
/// fetched it.
async fn fetches(from: &Instance, url: &str, bound: Duration) -> Result<bool, ConformanceError> {
    let out = Agent::new(from)?
        .run_bounded("wget", &["-q", "-O", "-", url], bound)
        .await?;
    Ok(out.is_some_and(|o| o.exit_code == 0))
}

/// From inside a sandbox its own agent is reachable at its own address
/// (the control), the other sandbox's agent is not, either way.
pub async fn check_isolation_between_sandboxes(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (a, ia) = start_ready(factory, &rt, 0).await?;
    let (b, ib) = match start_ready(factory, &rt, 1).await {
        Ok(x) => x,
        Err(e) => return finish(&rt, &[&a], Err(e)).await,
    };
    let result = async {
        let health = |i: &Instance| format!("http://{}/health", i.agent_addr);
        ensure(fetches(&ia, &health(&ia), CALL).await?, || {
            format!("{a} cannot reach its own agent at {}", ia.agent_addr)
        })?;
        ensure(!fetches(&ia, &health(&ib), BLOCKED).await?, || {
            format!("{a} reached the agent of {b} at {}", ib.agent_addr)
        })?;
        ensure(!fetches(&ib, &health(&ia), BLOCKED).await?, || {
            format!("{b} reached the agent of {a} at {}", ia.agent_addr)
        })
    }
    .await;
    finish(&rt, &[&a, &b], result).await?;
    ensure_gone(factory, &a).await?;
    ensure_gone(factory, &b).await
}
