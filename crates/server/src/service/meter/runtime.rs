//! The runtime as the rest of the daemon sees it: every call goes to the
//! real runtime, and the meter counts an instance just before a call ends
//! it and starts its CPU from zero when a call starts a new one.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use warren_core::SandboxId;
use warren_runtime::{Instance, Runtime, RuntimeError, RuntimeSpec, Stats};

use super::Meter;

pub struct MeteredRuntime {
    inner: Arc<dyn Runtime>,
    meter: Arc<Meter>,
}

impl MeteredRuntime {
    pub fn new(inner: Arc<dyn Runtime>, meter: Arc<Meter>) -> Self {
        Self { inner, meter }
    }
}

#[async_trait]
impl Runtime for MeteredRuntime {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn create(&self, spec: &RuntimeSpec) -> Result<(), RuntimeError> {
        self.inner.create(spec).await
    }

    async fn start(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        self.meter.instance_starting(id).await;
        self.inner.start(id).await
    }

    async fn checkpoint(
        &self,
        id: &SandboxId,
        dest: &Path,
        leave_running: bool,
    ) -> Result<(), RuntimeError> {
        if !leave_running {
            self.meter.settle(id, false).await;
        }
        self.inner.checkpoint(id, dest, leave_running).await
    }

    async fn restore(&self, snapshot: &Path, spec: &RuntimeSpec) -> Result<Instance, RuntimeError> {
        self.meter.instance_starting(&spec.id).await;
        self.inner.restore(snapshot, spec).await
    }

    async fn stop(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.meter.settle(id, false).await;
        self.inner.stop(id).await
    }

    async fn freeze(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.inner.freeze(id).await
    }

    async fn thaw(&self, id: &SandboxId) -> Result<Instance, RuntimeError> {
        self.inner.thaw(id).await
    }

    /// Off the request path (the teardown queue): the sandbox's last
    /// traffic is read here too, before its counters go with its chain.
    async fn destroy(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.meter.settle(id, true).await;
        self.inner.destroy(id).await
    }

    async fn stats(&self, id: &SandboxId) -> Result<Stats, RuntimeError> {
        self.inner.stats(id).await
    }

    async fn has_exited(&self, id: &SandboxId) -> Result<bool, RuntimeError> {
        self.inner.has_exited(id).await
    }

    async fn list_live(&self) -> Result<Vec<warren_runtime::Instance>, RuntimeError> {
        self.inner.list_live().await
    }
}
