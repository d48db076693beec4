//! Template builds requested over the API. A build runs in its own task, so a
//! client that disconnects does not stop it; its progress lines are streamed
//! to whoever started it.

use std::sync::Arc;

use tokio::sync::mpsc;
use warren_api_types::{BuildEvent, Template as ApiTemplate};
use warren_core::WarrenError;
use warren_template::{Template, TemplateStore};

pub struct TemplateBuilds {
    store: Arc<TemplateStore>,
}

pub fn to_api(t: &Template) -> ApiTemplate {
    ApiTemplate {
        name: t.name.clone(),
        status: t.status.as_str().to_owned(),
        size_bytes: t.size_bytes,
        built_at: t.built_at_rfc3339(),
    }
}

impl TemplateBuilds {
    pub fn new(store: Arc<TemplateStore>) -> Self {
        Self { store }
    }

    pub fn list(&self) -> Result<Vec<ApiTemplate>, WarrenError> {
        Ok(self.store.list()?.iter().map(to_api).collect())
    }

    /// Starts building `name`; the receiver yields progress and then exactly
    /// one `done` or `error` event.
    pub fn build(&self, name: String) -> Result<mpsc::Receiver<BuildEvent>, WarrenError> {
        warren_core::spec::validate_template_name(&name)?;
        let (events_tx, events_rx) = mpsc::channel(256);
        let (lines_tx, mut lines_rx) = mpsc::channel::<String>(256);
        let store = self.store.clone();
        let forward = events_tx.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(line) = lines_rx.recv().await {
                // A vanished client must not stall the build.
                let _ = forward.try_send(BuildEvent::Log { line });
            }
        });
        tokio::spawn(async move {
            tracing::info!(template = %name, "template build started");
            let result = store.build(&name, lines_tx).await;
            // Every progress line goes out before the final event.
            let _ = forwarder.await;
            let last = match result {
                Ok(t) => {
                    tracing::info!(template = %name, size = t.size_bytes, "template built");
                    BuildEvent::Done {
                        template: to_api(&t),
                    }
                }
                Err(e) => {
                    let e = WarrenError::from(e);
                    tracing::warn!(template = %name, error = %e.message, "template build failed");
                    BuildEvent::Error { message: e.message }
                }
            };
            let _ = events_tx.send(last).await;
        });
        Ok(events_rx)
    }
}
