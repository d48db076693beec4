//! Progress lines for people watching a build.
//!
//! Lines go to a bounded `tokio::sync::mpsc` channel; a full channel slows
//! the build down (back-pressure) and a dropped receiver is ignored (the
//! build goes on: another daemon may be waiting for it).

use tokio::sync::mpsc::Sender;

#[derive(Debug, Clone)]
pub(crate) struct Progress(Sender<String>);

impl Progress {
    pub(crate) fn new(tx: Sender<String>) -> Self {
        Self(tx)
    }

    pub(crate) async fn line(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(target: "warren_template::build", "{line}");
        let _ = self.0.send(line).await;
    }

    /// [`Progress::line`] for blocking code (never call it on a runtime thread).
    pub(crate) fn blocking_line(&self, line: String) {
        tracing::debug!(target: "warren_template::build", "{line}");
        let _ = self.0.blocking_send(line);
    }
}
