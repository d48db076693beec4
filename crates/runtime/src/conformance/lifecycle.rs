//! Create, start, stop, freeze, destroy and re-attach.

use warren_core::SandboxId;

use super::agent::{Agent, CALL, SILENT};
use super::{ConformanceError, RuntimeFactory, Step, abandon, default_limits, ensure, finish};
use crate::{Instance, Runtime};

/// Starts a sandbox in `slot` and waits for its agent.
pub(super) async fn start_ready<F: RuntimeFactory>(
    factory: &F,
    rt: &F::Runtime,
    slot: u32,
) -> Result<(SandboxId, Instance), ConformanceError> {
    let spec = factory.spec(slot, default_limits());
    rt.create(&spec).await.step("create")?;
    let instance = match rt.start(&spec.id).await.step("start") {
        Ok(i) => i,
        Err(e) => return abandon(rt, &[&spec.id], e).await,
    };
    if let Err(e) = check_started(factory, &spec.id, &instance).await {
        return abandon(rt, &[&spec.id], e).await;
    }
    Ok((spec.id, instance))
}

async fn check_started<F: RuntimeFactory>(
    factory: &F,
    id: &SandboxId,
    instance: &Instance,
) -> Result<(), ConformanceError> {
    ensure(&instance.id == id, || {
        format!("start of {id} returned an instance of {}", instance.id)
    })?;
    Agent::new(instance)?
        .wait_ready(factory.boot_timeout())
        .await
}

/// Whether `list_live` of `rt` holds an instance of `id`.
pub(super) async fn is_listed<R: Runtime>(
    rt: &R,
    id: &SandboxId,
) -> Result<bool, ConformanceError> {
    Ok(rt
        .list_live()
        .await
        .step("list_live")?
        .iter()
        .any(|i| &i.id == id))
}

/// Fails unless the factory finds nothing left of `id`.
pub(super) async fn ensure_gone(
    factory: &impl RuntimeFactory,
    id: &SandboxId,
) -> Result<(), ConformanceError> {
    let left = factory.leftovers(id).await;
    ensure(left.is_empty(), || {
        format!("destroy of {id} left: {}", left.join(", "))
    })
}

/// `create` + `start` give an instance whose agent answers: health, a
/// command, a file written and read back; `list_live` holds it.
pub async fn check_create_start_and_agent_answers(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = start_ready(factory, &rt, 0).await?;
    let result = async {
        let agent = Agent::new(&instance)?;
        let out = agent.run("echo", &["conformance", "hello"], CALL).await?;
        ensure(
            out.exit_code == 0 && out.stdout == "conformance hello\n",
            || format!("echo printed {out:?}"),
        )?;
        let out = agent.run("false", &[], CALL).await?;
        ensure(out.exit_code != 0, || format!("`false` ended with {out:?}"))?;
        agent.write("/root/conformance.txt", "written\n").await?;
        let back = agent.read("/root/conformance.txt").await?;
        ensure(back == "written\n", || format!("read back {back:?}"))?;
        ensure(is_listed(&rt, &id).await?, || {
            format!("list_live misses the started {id}")
        })?;
        let stats = rt.stats(&id).await.step("stats")?;
        ensure(stats.pids > 0 && stats.memory_bytes > 0, || {
            format!("stats of a running instance: {stats:?}")
        })
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// `stop` ends the instance: its agent goes silent, `list_live` drops it,
/// `stats` fails, `has_exited` is false (the runtime holds it no more),
/// and `destroy` afterwards leaves nothing.
pub async fn check_stop(factory: &impl RuntimeFactory) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = start_ready(factory, &rt, 0).await?;
    let result = async {
        rt.stop(&id).await.step("stop")?;
        let agent = Agent::new(&instance)?;
        ensure(!agent.answers_within(SILENT).await, || {
            format!("the agent of the stopped {id} still answers")
        })?;
        ensure(!is_listed(&rt, &id).await?, || {
            format!("list_live holds the stopped {id}")
        })?;
        ensure(rt.stats(&id).await.is_err(), || {
            format!("stats of the stopped {id} succeeded")
        })?;
        ensure(!rt.has_exited(&id).await.step("has_exited")?, || {
            format!("has_exited is true for the stopped {id}, which is not held as live")
        })?;
        rt.stop(&id).await.step("a second stop")
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// `freeze` keeps the instance live (listed, its memory kept) but silent;
/// `thaw` lets it go on at the same address and fails when it is not
/// frozen; `stop` and `destroy` end a frozen instance.
pub async fn check_freeze_and_thaw(factory: &impl RuntimeFactory) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = start_ready(factory, &rt, 0).await?;
    let (other, _) = match start_ready(factory, &rt, 1).await {
        Ok(x) => x,
        Err(e) => return finish(&rt, &[&id], Err(e)).await,
    };
    let result = async {
        let agent = Agent::new(&instance)?;
        agent.write("/root/frozen.txt", "kept\n").await?;
        ensure(rt.thaw(&id).await.is_err(), || {
            format!("thaw of the running {id} succeeded")
        })?;
        rt.freeze(&id).await.step("freeze")?;
        ensure(is_listed(&rt, &id).await?, || {
            format!("list_live misses the frozen {id}")
        })?;
        let stats = rt.stats(&id).await.step("stats of a frozen instance")?;
        ensure(stats.memory_bytes > 0, || {
            format!("a frozen instance holds no memory: {stats:?}")
        })?;
        ensure(!agent.answers_within(SILENT).await, || {
            format!("the agent of the frozen {id} answers")
        })?;
        ensure(!rt.has_exited(&id).await.step("has_exited")?, || {
            format!("has_exited is true for the frozen {id}")
        })?;
        let thawed = rt.thaw(&id).await.step("thaw")?;
        ensure(thawed.agent_addr == instance.agent_addr, || {
            format!(
                "thaw moved the agent from {} to {}",
                instance.agent_addr, thawed.agent_addr
            )
        })?;
        ensure(thawed.network_kept, || {
            "a thawed instance says its network was not kept".into()
        })?;
        let back = agent.read("/root/frozen.txt").await?;
        ensure(back == "kept\n", || format!("after the thaw read {back:?}"))?;
        ensure(rt.thaw(&id).await.is_err(), || {
            format!("a second thaw of {id} succeeded")
        })?;
        // Stop and destroy never wait on a frozen instance.
        rt.freeze(&id).await.step("freeze again")?;
        rt.stop(&id).await.step("stop of a frozen instance")?;
        ensure(!is_listed(&rt, &id).await?, || {
            format!("list_live holds {id}, stopped while frozen")
        })?;
        rt.freeze(&other).await.step("freeze of the second")?;
        rt.destroy(&other)
            .await
            .step("destroy of a frozen instance")?;
        ensure_gone(factory, &other).await
    }
    .await;
    finish(&rt, &[&id, &other], result).await?;
    ensure_gone(factory, &id).await
}

/// `destroy` is idempotent and leaves nothing, whatever state the sandbox
/// was in (created, running, stopped), also for an id never seen; a second
/// `create` of a live id is refused.
pub async fn check_destroy_is_idempotent_and_leaves_nothing(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    // Created, never started.
    let created = factory.spec(0, default_limits());
    rt.create(&created).await.step("create")?;
    let again = rt.create(&created).await;
    let result = async {
        ensure(again.is_err(), || {
            format!("a second create of {} succeeded", created.id)
        })?;
        Ok(())
    }
    .await;
    for _ in 0..2 {
        rt.destroy(&created.id)
            .await
            .step("destroy of a created sandbox")?;
        ensure_gone(factory, &created.id).await?;
    }
    result?;
    // Running.
    let (running, instance) = start_ready(factory, &rt, 1).await?;
    for _ in 0..2 {
        rt.destroy(&running)
            .await
            .step("destroy of a running instance")?;
        ensure_gone(factory, &running).await?;
    }
    ensure(!Agent::new(&instance)?.answers_within(SILENT).await, || {
        format!("the agent of the destroyed {running} still answers")
    })?;
    // Stopped.
    let (stopped, _) = start_ready(factory, &rt, 2).await?;
    let result = rt.stop(&stopped).await.step("stop");
    finish(&rt, &[&stopped, &stopped], result).await?;
    ensure_gone(factory, &stopped).await?;
    // Never known.
    let unknown = SandboxId::generate();
    rt.destroy(&unknown)
        .await
        .step("destroy of an unknown id")?;
    ensure_gone(factory, &unknown).await?;
    let live = rt.list_live().await.step("list_live")?;
    ensure(live.is_empty(), || {
        format!("list_live after every destroy: {live:?}")
    })
}

/// A runtime made again over the same state (a restarted daemon) finds
/// every live instance, running or frozen, at the same addresses, and can
/// manage them; dropping a runtime leaves its instances running.
pub async fn check_list_live_after_runtime_restart(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let first = factory.runtime().step("making the runtime")?;
    let (running, run_inst) = start_ready(factory, &first, 0).await?;
    let (frozen, frozen_inst) = match start_ready(factory, &first, 1).await {
        Ok(x) => x,
        Err(e) => return finish(&first, &[&running], Err(e)).await,
    };
    let result = first.freeze(&frozen).await.step("freeze");
    if result.is_err() {
        return finish(&first, &[&running, &frozen], result).await;
    }
    drop(first);
    let second = factory.runtime().step("making the runtime again")?;
    let result = async {
        let live = second
            .list_live()
            .await
            .step("list_live after the restart")?;
        for (id, inst) in [(&running, &run_inst), (&frozen, &frozen_inst)] {
            let found = live.iter().find(|i| &i.id == id);
            ensure(
                found.is_some_and(|f| {
                    f.agent_addr == inst.agent_addr && f.host_addr == inst.host_addr
                }),
                || format!("after the restart list_live has {found:?} for {inst:?}"),
            )?;
        }
        ensure(live.len() == 2, || {
            format!("after the restart list_live has more than its two: {live:?}")
        })?;
        let agent = Agent::new(&run_inst)?;
        ensure(agent.answers_within(CALL).await, || {
            format!("dropping the runtime silenced {running}")
        })?;
        second
            .stats(&running)
            .await
            .step("stats after the restart")?;
        second.thaw(&frozen).await.step("thaw after the restart")?;
        Agent::new(&frozen_inst)?.wait_ready(CALL).await?;
        second.stop(&running).await.step("stop after the restart")?;
        ensure(!is_listed(&second, &running).await?, || {
            format!("list_live holds the stopped {running}")
        })
    }
    .await;
    finish(&second, &[&running, &frozen], result).await?;
    ensure_gone(factory, &running).await?;
    ensure_gone(factory, &frozen).await
}

/// Calls about an id the runtime never saw fail (`start`, `freeze`,
/// `thaw`, `stats`, `checkpoint`) or say there is nothing (`has_exited`
/// false, `destroy` done), without touching anything else.
pub async fn check_unknown_ids_are_errors(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let id = SandboxId::generate();
    let dest = super::image_dir(factory, "unknown")?;
    ensure(rt.start(&id).await.is_err(), || {
        "start of an unknown id succeeded".into()
    })?;
    ensure(rt.freeze(&id).await.is_err(), || {
        "freeze of an unknown id succeeded".into()
    })?;
    ensure(rt.thaw(&id).await.is_err(), || {
        "thaw of an unknown id succeeded".into()
    })?;
    ensure(rt.stats(&id).await.is_err(), || {
        "stats of an unknown id succeeded".into()
    })?;
    ensure(rt.checkpoint(&id, &dest, true).await.is_err(), || {
        "checkpoint of an unknown id succeeded".into()
    })?;
    ensure(!rt.has_exited(&id).await.step("has_exited")?, || {
        "has_exited is true for an unknown id".into()
    })?;
    rt.destroy(&id).await.step("destroy of an unknown id")?;
    ensure(!is_listed(&rt, &id).await?, || {
        "list_live holds an unknown id".into()
    })?;
    ensure_gone(factory, &id).await
}
