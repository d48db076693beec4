//! The conformance suite against the fake runtime (no root, no sandboxes),
//! and the fake's own controls. The fake runs every check but the limits
//! and isolation checks (it enforces neither) and speaks to its agents on
//! `127.0.0.1`.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use warren_core::{Limits, SandboxId};
use warren_envd::EnvdClient;
use warren_net::{AddressPool, NetworkAttachment};
use warren_runtime::conformance::{self, RuntimeFactory};
use warren_runtime::fake::{CommandOutput, FakeHost, FakeRuntime, Op};
use warren_runtime::{RootFs, Runtime, RuntimeError, RuntimeSpec};

/// One test's fake host.
struct Fake {
    host: FakeHost,
    tmp: tempfile::TempDir,
}

impl Fake {
    fn new() -> Self {
        Self {
            host: FakeHost::default(),
            tmp: tempfile::tempdir().expect("tempdir"),
        }
    }
}

#[async_trait]
impl RuntimeFactory for Fake {
    type Runtime = FakeRuntime;

    fn runtime(&self) -> Result<FakeRuntime, RuntimeError> {
        Ok(FakeRuntime::on(&self.host))
    }

    fn spec(&self, slot: u32, limits: Limits) -> RuntimeSpec {
        let id = SandboxId::generate();
        let pool: AddressPool = "10.203.0.0/24".parse().unwrap();
        RuntimeSpec {
            network: NetworkAttachment::new(&pool, &id, slot).unwrap(),
            volumes: Vec::new(),
            id,
            rootfs: RootFs::TemplateDir(PathBuf::from("/nonexistent/rootfs")),
            agent: PathBuf::from("/nonexistent/agent"),
            env: RuntimeSpec::agent_env(),
            limits,
        }
    }

    fn scratch_dir(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    async fn leftovers(&self, id: &SandboxId) -> Vec<String> {
        FakeRuntime::on(&self.host).traces(id).await
    }

    fn boot_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

#[tokio::test]
async fn fake_conformance_create_start_and_agent_answers() {
    conformance::check_create_start_and_agent_answers(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_stop() {
    conformance::check_stop(&Fake::new()).await.unwrap();
}

#[tokio::test]
async fn fake_conformance_freeze_and_thaw() {
    conformance::check_freeze_and_thaw(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_destroy_is_idempotent_and_leaves_nothing() {
    conformance::check_destroy_is_idempotent_and_leaves_nothing(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_list_live_after_runtime_restart() {
    conformance::check_list_live_after_runtime_restart(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_unknown_ids_are_errors() {
    conformance::check_unknown_ids_are_errors(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_checkpoint_leave_running() {
    conformance::check_checkpoint_leave_running(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_checkpoint_then_restore_same_id() {
    conformance::check_checkpoint_then_restore_same_id(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_restore_under_new_id() {
    conformance::check_restore_under_new_id(&Fake::new())
        .await
        .unwrap();
}

#[tokio::test]
async fn fake_conformance_has_exited_after_processes_die() {
    conformance::check_has_exited_after_processes_die(&Fake::new())
        .await
        .unwrap();
}

/// Starts one fake sandbox and returns its runtime, id and agent client.
async fn started(fake: &Fake) -> (FakeRuntime, SandboxId, EnvdClient) {
    let rt = fake.runtime().unwrap();
    let spec = fake.spec(0, conformance::default_limits());
    rt.create(&spec).await.unwrap();
    let instance = rt.start(&spec.id).await.unwrap();
    let client = EnvdClient::new(&format!("http://{}", instance.agent_addr)).unwrap();
    client.health().await.unwrap();
    (rt, spec.id, client)
}

#[tokio::test]
async fn fake_injected_failures_hit_the_next_call_only() {
    let fake = Fake::new();
    let rt = fake.runtime().unwrap();
    let spec = fake.spec(0, conformance::default_limits());
    rt.fail_next(Op::Create);
    assert!(matches!(
        rt.create(&spec).await,
        Err(RuntimeError::Command { .. })
    ));
    rt.create(&spec).await.unwrap();
    rt.fail_next_with(Op::Start, RuntimeError::Unavailable("no capacity".into()));
    assert!(matches!(
        rt.start(&spec.id).await,
        Err(RuntimeError::Unavailable(_))
    ));
    rt.start(&spec.id).await.unwrap();
    // Another runtime on the same host sees the same controls.
    let again = FakeRuntime::on(fake.runtime().unwrap().host());
    again.fail_next(Op::Destroy);
    assert!(rt.destroy(&spec.id).await.is_err());
    rt.destroy(&spec.id).await.unwrap();
    assert_eq!(rt.calls(Op::Create), 2);
    assert_eq!(again.calls(Op::Destroy), 2);
}

#[tokio::test]
async fn fake_delays_hold_every_call_until_cleared() {
    let fake = Fake::new();
    let rt = fake.runtime().unwrap();
    rt.delay(Op::ListLive, Duration::from_secs(3600));
    let held = tokio::time::timeout(Duration::from_millis(200), rt.list_live()).await;
    assert!(held.is_err(), "a delayed list_live returned");
    rt.delay(Op::ListLive, Duration::ZERO);
    assert!(rt.list_live().await.unwrap().is_empty());
}

#[tokio::test]
async fn fake_command_handler_answers_before_the_builtins() {
    let fake = Fake::new();
    let (rt, id, client) = started(&fake).await;
    rt.on_command(|cmd: &warren_envd::process::ProcessConfig| {
        (cmd.cmd == "python3").then(|| CommandOutput::ok("3.12\n"))
    });
    let req = warren_envd::process::StartRequest {
        process: Some(warren_envd::process::ProcessConfig {
            cmd: "python3".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    use futures::StreamExt;
    let events: Vec<_> = client
        .start(&req, None)
        .await
        .unwrap()
        .collect::<Vec<_>>()
        .await;
    let stdout = events.iter().find_map(|e| match e {
        Ok(warren_envd::process::ProcessEvent::Data(warren_envd::process::DataEvent::Stdout(
            b,
        ))) => Some(b.clone()),
        _ => None,
    });
    assert_eq!(stdout.as_deref(), Some(&b"3.12\n"[..]));
    rt.crash(&id).await.unwrap();
    assert!(rt.has_exited(&id).await.unwrap());
    rt.destroy(&id).await.unwrap();
    assert!(rt.traces(&id).await.is_empty());
}
