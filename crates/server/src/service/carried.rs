//! Work carried to its end on a task of its own, whoever waits for it.
//!
//! A lifecycle operation commits in steps (a pause: the state, the image,
//! the row, the release; a rollback: the state, the stop, the restore, the
//! state again). A future dropped between two of them (a client that goes
//! away drops its request's handler, and with it every future the handler
//! awaits) would leave the store and the runtime disagreeing: a sandbox
//! frozen or `resuming` with nothing running, an image staged for good,
//! the branches of a fork half-started.
//!
//! Invariants:
//! - Create and kill (from the handlers, [`to_completion`]), and pause,
//!   resume, snapshot, rollback and fork (inside the service, for every
//!   caller: the APIs, the proxy's and exec's auto-resume, the reapers)
//!   run on a task of their own: dropping the caller's future leaves the
//!   operation running to its end, which is then the same as if the
//!   caller had waited (a later GET shows it).
//! - The task runs in the caller's span, so its trace is the caller's.
//! - A task that panics is an error of the operation, never a panic of
//!   the caller.

use std::future::Future;
use std::sync::{Arc, Weak};

use warren_core::WarrenError;

use super::Sandboxes;

/// Why carried work did not return its own result.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    /// The task ended without an answer (it panicked or was cancelled at
    /// shutdown).
    #[error("the operation failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The service is being dropped: the daemon is shutting down.
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

impl From<CarryError> for WarrenError {
    fn from(e: CarryError) -> Self {
        match e {
            CarryError::Task(_) => WarrenError::internal(e.to_string()),
            CarryError::ShuttingDown => WarrenError::unavailable(e.to_string()),
        }
    }
}

/// Runs `work` on a task of its own and waits for it. Dropping the returned
/// future leaves the work running to its end: a create or a kill commits
/// in steps (a kill commits the state, records it, then queues the
/// teardown), and one cut between them would leave a killed sandbox
/// running until the next start, or a sandbox `creating` for good.
pub async fn to_completion<T, F>(work: F) -> Result<T, WarrenError>
where
    F: Future<Output = Result<T, WarrenError>> + Send + 'static,
    T: Send + 'static,
{
    // The task runs in the caller's span, so its trace is the caller's.
    tokio::spawn(tracing::Instrument::in_current_span(work))
        .await
        .map_err(CarryError::from)?
}

/// The service's handle on itself, for the work it carries.
pub(super) struct Itself(Weak<Sandboxes>);

impl Itself {
    pub(super) fn new(this: &Weak<Sandboxes>) -> Self {
        Self(this.clone())
    }
}

impl Sandboxes {
    /// Runs `work` on the service, to its end whatever happens to the
    /// caller (see the module docs).
    pub(super) async fn carried<T, F, Fut>(&self, work: F) -> Result<T, WarrenError>
    where
        F: FnOnce(Arc<Sandboxes>) -> Fut,
        Fut: Future<Output = Result<T, WarrenError>> + Send + 'static,
        T: Send + 'static,
    {
        let this = self.itself.0.upgrade().ok_or(CarryError::ShuttingDown)?;
        to_completion(work(this)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_carried_to_completion_ends_although_its_caller_goes_away() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn(to_completion(async move {
            let _ = started_tx.send(());
            let _ = go_rx.await;
            let _ = done_tx.send("the rest ran");
            Ok(())
        }));
        started_rx.await.unwrap();
        // The caller goes away half-way, as a disconnected client's
        // handler does.
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        go_tx.send(()).unwrap();
        assert_eq!(done_rx.await.unwrap(), "the rest ran");
    }

    #[tokio::test]
    async fn a_task_that_panics_is_an_error_of_its_operation() {
        let e = to_completion::<(), _>(async { panic!("the work broke") })
            .await
            .unwrap_err();
        assert_eq!(e.kind, warren_core::ErrorKind::Internal);
    }
}
