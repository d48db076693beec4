//! A checkpoint racing the kill of its sandbox. A kill does not wait for
//! the sandbox's lifecycle lock (it must win over anything), so a pause,
//! snapshot or fork may find its sandbox killed half-way.
//!
//! Invariant: one of the two wins cleanly. The kill is committed by its
//! state change; an image whose row is written after it is the loser's:
//! it is dropped at once and the call answers 404 (the sandbox is gone,
//! as for any call to a killed sandbox), never 5xx. A checkpoint that
//! fails because the kill tore its instance down answers the same.

use warren_core::{SandboxId, WarrenError};

use super::Sandboxes;

/// A call that lost to a kill.
#[derive(Debug, thiserror::Error)]
pub enum RaceError {
    #[error("sandbox {sandbox} was killed while it was being {during}")]
    KilledMeanwhile {
        sandbox: SandboxId,
        during: &'static str,
    },
}

impl From<RaceError> for WarrenError {
    fn from(e: RaceError) -> Self {
        WarrenError::not_found(e.to_string())
    }
}

impl Sandboxes {
    /// `Err` if sandbox `id` was killed (or failed) by now: the work done
    /// `during` is the loser's.
    pub(super) async fn outlived_by_kill(
        &self,
        id: &SandboxId,
        during: &'static str,
    ) -> Result<(), RaceError> {
        let ended = match self.store.get_sandbox(id).await {
            Ok(Some(rec)) => rec.state.is_terminal(),
            Ok(None) => true,
            // The store's answer decides nothing: the caller's own error
            // (if any) stands.
            Err(_) => false,
        };
        match ended {
            true => Err(RaceError::KilledMeanwhile {
                sandbox: id.clone(),
                during,
            }),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loser_of_a_race_with_a_kill_reads_as_gone() {
        let e = WarrenError::from(RaceError::KilledMeanwhile {
            sandbox: SandboxId::generate(),
            during: "snapshotted",
        });
        assert_eq!(e.kind, warren_core::ErrorKind::NotFound);
        assert!(
            e.message
                .contains("was killed while it was being snapshotted")
        );
    }
}
