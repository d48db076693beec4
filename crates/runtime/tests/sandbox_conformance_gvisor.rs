//! The conformance suite (`warren_runtime::conformance`) against the gVisor
//! backend: real runsc as root, the real agent (`WARREN_TEST_AGENT`) in the
//! shared `tiny` template (`WARREN_TEST_TEMPLATES`). Each test has its own
//! state directory, firewall table and pool (`10.202.<n>.0/24`), as one
//! daemon has, so they run in parallel; the factory installs the table
//! and hands out attachments, as the daemon does.

mod common;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use warren_core::{Limits, SandboxId};
use warren_net::Firewall;
use warren_runtime::conformance::{self, ConformanceError, RuntimeFactory};
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warren_runtime::{Runtime, RuntimeError, RuntimeSpec};

/// The workspace's `target/`, where the test inputs are by default.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or(default)
}

/// One test's gVisor host: a state directory and pool of its own.
struct Gvisor {
    state_dir: PathBuf,
    scratch: PathBuf,
    pool: String,
    firewall: Firewall,
    rootfs: PathBuf,
    agent: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Gvisor {
    fn new(octet: u8) -> Self {
        let templates = env_path("WARREN_TEST_TEMPLATES", target_dir().join("test-templates"));
        let rootfs = warren_template::TemplateStore::new(&templates)
            .and_then(|store| store.ready("tiny"))
            .map(|t| t.rootfs)
            .unwrap_or_else(|e| panic!("no tiny template in {}: {e}", templates.display()));
        let agent = env_path(
            "WARREN_TEST_AGENT",
            target_dir().join("x86_64-unknown-linux-gnu/release/warren-agent"),
        );
        assert!(
            rootfs.join("bin/busybox").exists(),
            "no tiny template at {} (set WARREN_TEST_TEMPLATES; scripts/test.sh builds it)",
            rootfs.display()
        );
        assert!(
            agent.is_file(),
            "no static agent at {} (set WARREN_TEST_AGENT)",
            agent.display()
        );
        let tmp = tempfile::tempdir().expect("tempdir");
        let scratch = tmp.path().join("images");
        std::fs::create_dir(&scratch).expect("scratch dir");
        let state_dir = tmp.path().join("state");
        let pool = format!("10.202.{octet}.0/24");
        let firewall = common::host_network(&state_dir, &pool);
        Self {
            state_dir,
            scratch,
            pool,
            firewall,
            rootfs,
            agent,
            _tmp: tmp,
        }
    }
}

#[async_trait]
impl RuntimeFactory for Gvisor {
    type Runtime = GvisorRuntime;

    fn runtime(&self) -> Result<GvisorRuntime, RuntimeError> {
        GvisorRuntime::new(GvisorConfig::new(&self.state_dir))
    }

    fn spec(&self, slot: u32, limits: Limits) -> RuntimeSpec {
        common::spec_in(&self.pool, slot, &self.rootfs, &self.agent, limits)
    }

    fn scratch_dir(&self) -> PathBuf {
        self.scratch.clone()
    }

    async fn leftovers(&self, id: &SandboxId) -> Vec<String> {
        common::leftovers_at(&self.state_dir, &self.state_dir.join("runsc"), id)
    }
}

impl Drop for Gvisor {
    /// Destroys whatever a failed check left, so one failure does not leak
    /// sandboxes into the host; then removes the firewall table.
    fn drop(&mut self) {
        self.destroy_all();
        if let Err(e) = self.firewall.remove_blocking() {
            eprintln!("removing the firewall table failed: {e}");
        }
    }
}

impl Gvisor {
    fn destroy_all(&self) {
        let Ok(entries) = std::fs::read_dir(self.state_dir.join("sandboxes")) else {
            return;
        };
        let ids: Vec<SandboxId> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        if ids.is_empty() {
            return;
        }
        // A test's own tokio runtime may be running on this thread.
        std::thread::scope(|s| {
            s.spawn(|| {
                let Ok(rt) = self.runtime() else { return };
                let Ok(tokio_rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                for id in &ids {
                    if let Err(e) = tokio_rt.block_on(rt.destroy(id)) {
                        eprintln!("cleanup of {id} failed: {e}");
                    }
                }
            });
        });
    }
}

#[tokio::test]
async fn sandbox_conformance_create_start_and_agent_answers() {
    conformance::check_create_start_and_agent_answers(&Gvisor::new(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_stop() {
    conformance::check_stop(&Gvisor::new(2)).await.unwrap();
}

#[tokio::test]
async fn sandbox_conformance_freeze_and_thaw() {
    conformance::check_freeze_and_thaw(&Gvisor::new(3))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_destroy_is_idempotent_and_leaves_nothing() {
    conformance::check_destroy_is_idempotent_and_leaves_nothing(&Gvisor::new(4))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_list_live_after_runtime_restart() {
    conformance::check_list_live_after_runtime_restart(&Gvisor::new(5))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_unknown_ids_are_errors() {
    conformance::check_unknown_ids_are_errors(&Gvisor::new(6))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_checkpoint_leave_running() {
    conformance::check_checkpoint_leave_running(&Gvisor::new(7))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_checkpoint_then_restore_same_id() {
    conformance::check_checkpoint_then_restore_same_id(&Gvisor::new(8))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_restore_under_new_id() {
    conformance::check_restore_under_new_id(&Gvisor::new(9))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_limits_reach_the_instance() {
    conformance::check_limits_reach_the_instance(&Gvisor::new(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_has_exited_after_processes_die() {
    conformance::check_has_exited_after_processes_die(&Gvisor::new(11))
        .await
        .unwrap();
}

#[tokio::test]
async fn sandbox_conformance_isolation_between_sandboxes() {
    conformance::check_isolation_between_sandboxes(&Gvisor::new(12))
        .await
        .unwrap();
}

/// The gVisor host with its nftables table deleted before the runtime is
/// made (the table is this test's alone): nothing keeps sandboxes apart.
struct Unfirewalled(Gvisor);

#[async_trait]
impl RuntimeFactory for Unfirewalled {
    type Runtime = GvisorRuntime;

    fn runtime(&self) -> Result<GvisorRuntime, RuntimeError> {
        self.0
            .firewall
            .remove_blocking()
            .expect("deleting the table");
        self.0.runtime()
    }

    fn spec(&self, slot: u32, limits: Limits) -> RuntimeSpec {
        self.0.spec(slot, limits)
    }

    fn scratch_dir(&self) -> PathBuf {
        self.0.scratch_dir()
    }

    async fn leftovers(&self, id: &SandboxId) -> Vec<String> {
        self.0.leftovers(id).await
    }
}

/// Control: the isolation check fails when the firewall is gone, so it is
/// the firewall that the passing check saw.
#[tokio::test]
async fn sandbox_conformance_isolation_check_fails_without_the_firewall() {
    let result =
        conformance::check_isolation_between_sandboxes(&Unfirewalled(Gvisor::new(13))).await;
    assert!(
        matches!(&result, Err(ConformanceError::Violated(m)) if m.contains("reached the agent of")),
        "{result:?}"
    );
}
