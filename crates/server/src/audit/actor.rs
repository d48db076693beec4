//! Who acted: a team and an actor chain, outermost first.

use crate::auth::Caller;

/// The team of entries no team owns (the daemon's own acts, such as the
/// first start); lifecycle entries of a sandbox always carry the sandbox's
/// team, whoever acted.
pub const SYSTEM_TEAM: &str = "system";

/// Who acted: the team the act belongs to and the chain of actors, outermost
/// first (`["user:<id>", "sandbox:<id>"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub team: String,
    pub chain: Vec<String>,
}

impl AuditActor {
    /// The authenticated caller of an API request: its team, its user and,
    /// for a sandbox token, the sandbox acting for that user. The one place
    /// that maps callers to actors.
    pub fn from_caller(caller: &Caller) -> Self {
        Self {
            team: caller.team.to_string(),
            chain: caller.actor_chain(),
        }
    }

    /// The holder of a volume token (E2B's volume content API): the user
    /// of the key the token was handed to, in the volume's team.
    pub fn volume_token(team: &warren_core::TeamId, user: &warren_core::UserId) -> Self {
        Self {
            team: team.to_string(),
            chain: vec![format!("user:{user}")],
        }
    }

    /// A part of the daemon acting on its own, e.g. `system("reaper")`.
    pub fn system(component: &str) -> Self {
        Self {
            team: SYSTEM_TEAM.to_owned(),
            chain: vec![format!("system:{component}")],
        }
    }

    /// The same actors, acting within `team`.
    pub fn in_team(&self, team: &warren_core::TeamId) -> Self {
        Self {
            team: team.to_string(),
            chain: self.chain.clone(),
        }
    }
}
