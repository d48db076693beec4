//! Checkpoint and restore: under the same id (a resume) and under a new
//! one (a fork), with root filesystem writes and memory kept.
//!
//! Memory is checked through two things only a running process holds: the
//! access token the agent was given by `/init` (requests without it must be
//! refused after a restore) and a `sleep` the agent started, still listed
//! under its tag with the same pid.

use warren_core::SandboxId;
use warren_envd::Code;
use warren_envd::http_api::InitRequest;

use super::agent::{Agent, CALL, SILENT};
use super::lifecycle::{ensure_gone, is_listed, start_ready};
use super::{
    ConformanceError, RuntimeFactory, Step, abandon, default_limits, ensure, finish, image_dir,
};
use crate::{Instance, Runtime};

const FILE: &str = "/root/snapshot.txt";
const CONTENT: &str = "before the checkpoint\n";
const TAG: &str = "conformance-keep";

/// What an instance holds before its checkpoint.
struct Held {
    token: String,
    pid: u32,
}

/// Gives the instance a token, a file and a running process.
async fn hold_state(instance: &Instance) -> Result<Held, ConformanceError> {
    let agent = Agent::new(instance)?;
    agent.write(FILE, CONTENT).await?;
    let pid = agent.spawn_tagged(TAG, "sleep", &["600"]).await?;
    let token = format!("token-{}", SandboxId::generate());
    let init = InitRequest {
        access_token: Some(token.clone()),
        ..InitRequest::default()
    };
    tokio::time::timeout(CALL, agent.client.init(&init))
        .await
        .map_err(|_| ConformanceError::Harness("/init: no answer".into()))?
        .step("/init")?;
    Ok(Held { token, pid })
}

/// Fails unless `instance` holds what [`hold_state`] gave the original.
async fn ensure_held(instance: &Instance, held: &Held, what: &str) -> Result<(), ConformanceError> {
    let bare = Agent::new(instance)?;
    match tokio::time::timeout(CALL, bare.client.read_file_to_vec(FILE)).await {
        Ok(Err(e)) if e.code() == Code::Unauthenticated => {}
        other => {
            let got = match other {
                Ok(Ok(_)) => "the file".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer".to_owned(),
            };
            return Err(ConformanceError::Violated(format!(
                "{what}: a read without the access token gave {got}, not unauthenticated; \
                 the agent forgot its token"
            )));
        }
    }
    let agent = bare.with_token(&held.token);
    let content = agent.read(FILE).await?;
    ensure(content == CONTENT, || {
        format!("{what}: {FILE} holds {content:?}")
    })?;
    let pid = agent.tagged_pid(TAG).await?;
    ensure(pid == Some(held.pid), || {
        format!(
            "{what}: the process tagged {TAG} is {pid:?}, it was pid {}",
            held.pid
        )
    })
}

/// A checkpoint with leave-running writes an image and leaves the instance
/// as it was (answering, its files, token and processes kept); a restore
/// under the id of a running instance is refused.
pub async fn check_checkpoint_leave_running(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = start_ready(factory, &rt, 0).await?;
    let result = async {
        let held = hold_state(&instance).await?;
        let image = image_dir(factory, "leave-running")?;
        rt.checkpoint(&id, &image, true)
            .await
            .step("checkpoint --leave-running")?;
        let written = std::fs::read_dir(&image)
            .map(|d| d.count())
            .map_err(|e| ConformanceError::Harness(format!("listing the image: {e}")))?;
        ensure(written > 0, || "the checkpoint wrote nothing".into())?;
        ensure(is_listed(&rt, &id).await?, || {
            format!("list_live misses {id} after a leave-running checkpoint")
        })?;
        ensure_held(&instance, &held, "after a leave-running checkpoint").await?;
        let mut spec = factory.spec(0, default_limits());
        spec.id = id.clone();
        ensure(rt.restore(&image, &spec).await.is_err(), || {
            format!("a restore under the running {id} succeeded")
        })?;
        ensure_held(&instance, &held, "after a refused restore").await
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// A checkpoint without leave-running ends the instance (silent, not
/// listed); a restore of the image under the same spec brings it back at
/// the same address with its files, token and processes.
pub async fn check_checkpoint_then_restore_same_id(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let spec = factory.spec(0, default_limits());
    rt.create(&spec).await.step("create")?;
    let instance = match rt.start(&spec.id).await.step("start") {
        Ok(i) => i,
        Err(e) => return abandon(&rt, &[&spec.id], e).await,
    };
    let id = spec.id.clone();
    let result = async {
        Agent::new(&instance)?
            .wait_ready(factory.boot_timeout())
            .await?;
        let held = hold_state(&instance).await?;
        let image = image_dir(factory, "pause")?;
        rt.checkpoint(&id, &image, false).await.step("checkpoint")?;
        ensure(!Agent::new(&instance)?.answers_within(SILENT).await, || {
            format!("{id} still answers after a checkpoint without leave-running")
        })?;
        ensure(!is_listed(&rt, &id).await?, || {
            format!("list_live holds {id} after a checkpoint without leave-running")
        })?;
        let resumed = rt.restore(&image, &spec).await.step("restore")?;
        ensure(
            resumed.id == id && resumed.agent_addr == instance.agent_addr,
            || format!("restored {resumed:?}, it was {instance:?}"),
        )?;
        Agent::new(&resumed)?
            .wait_ready(factory.boot_timeout())
            .await?;
        ensure_held(&resumed, &held, "after a restore under the same id").await?;
        ensure(is_listed(&rt, &id).await?, || {
            format!("list_live misses the restored {id}")
        })?;
        let out = Agent::new(&resumed)?
            .with_token(&held.token)
            .run("echo", &["resumed"], CALL)
            .await?;
        ensure(out.stdout == "resumed\n", || {
            format!("a command after the restore printed {out:?}")
        })
    }
    .await;
    finish(&rt, &[&id], result).await?;
    ensure_gone(factory, &id).await
}

/// An image restored under a new id and slot (a fork) runs next to the
/// original at its own address, with the original's files, token and
/// processes; writes of one do not reach the other.
pub async fn check_restore_under_new_id(
    factory: &impl RuntimeFactory,
) -> Result<(), ConformanceError> {
    let rt = factory.runtime().step("making the runtime")?;
    let (id, instance) = start_ready(factory, &rt, 0).await?;
    let fork = factory.spec(1, default_limits());
    let result = async {
        let held = hold_state(&instance).await?;
        let image = image_dir(factory, "fork")?;
        rt.checkpoint(&id, &image, true)
            .await
            .step("checkpoint --leave-running")?;
        let forked = rt.restore(&image, &fork).await.step("restore as a fork")?;
        ensure(forked.id == fork.id, || {
            format!("the fork came back as {}", forked.id)
        })?;
        ensure(forked.agent_addr != instance.agent_addr, || {
            format!("the fork shares the agent address {}", forked.agent_addr)
        })?;
        Agent::new(&forked)?
            .wait_ready(factory.boot_timeout())
            .await?;
        ensure_held(&forked, &held, "in the fork").await?;
        ensure_held(&instance, &held, "in the original next to its fork").await?;
        let fork_agent = Agent::new(&forked)?.with_token(&held.token);
        fork_agent.write(FILE, "fork only\n").await?;
        let original = Agent::new(&instance)?.with_token(&held.token);
        let content = original.read(FILE).await?;
        ensure(content == CONTENT, || {
            format!("a write in the fork reached the original: {content:?}")
        })?;
        for i in [&id, &fork.id] {
            ensure(is_listed(&rt, i).await?, || {
                format!("list_live misses {i} with an original and its fork")
            })?;
        }
        Ok(())
    }
    .await;
    finish(&rt, &[&id, &fork.id], result).await?;
    ensure_gone(factory, &id).await?;
    ensure_gone(factory, &fork.id).await
}
