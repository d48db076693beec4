//! Team quotas in the sandbox service: reading and setting them
//! (operators), and the checks in front of the operations that add load.
//!
//! Where each limit is enforced (see `warren_core::quota` for what counts):
//! - sandboxes, vCPUs, memory: every insert of a new sandbox (create,
//!   create from snapshot, each fork branch) and every paused → resuming
//!   step (resume, auto-resume, rollback of a paused sandbox) goes through
//!   the store's quota-checked writes, which decide in the write's own
//!   transaction, so concurrent calls cannot both take the last slot. A
//!   fork is also checked for all its branches before its checkpoint, so
//!   it fails fast instead of after the image is taken;
//! - snapshot bytes: a fork or a named snapshot needs the team below its
//!   limit before the capture (its size is known only afterwards, so one
//!   capture may pass the limit by its own size). A pause is never refused:
//!   it frees CPU and memory, and its image counts from then on;
//! - branches: per fork call.
//!
//! Every surface (native API, E2B) reaches these through the same service
//! calls; over-quota answers are `QuotaExceeded` (HTTP 429).

use warren_core::quota::{Demand, Quota, Usage, check, check_branches};
use warren_core::{TeamId, WarrenError};
use warren_store::{SandboxRecord, TeamRecord};

use super::Sandboxes;
use crate::audit::Action;
use crate::audit::{AuditActor, Event};
use crate::auth::Caller;

/// A team's effective quota and what it holds.
#[derive(Debug, Clone)]
pub struct TeamQuota {
    pub team: TeamRecord,
    pub quota: Quota,
    /// Whether `quota` is the defaults (the team has none of its own).
    pub default: bool,
    pub usage: Usage,
}

/// A change to a team's quota: `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct QuotaChange {
    pub max_sandboxes: Option<u32>,
    pub max_vcpus: Option<u32>,
    pub max_memory_mb: Option<u64>,
    pub max_disk_mb: Option<u64>,
    pub max_snapshot_bytes: Option<u64>,
    pub max_branches: Option<u32>,
}

impl QuotaChange {
    fn apply(&self, q: Quota) -> Quota {
        Quota {
            max_sandboxes: self.max_sandboxes.unwrap_or(q.max_sandboxes),
            max_vcpus: self.max_vcpus.unwrap_or(q.max_vcpus),
            max_memory_mb: self.max_memory_mb.unwrap_or(q.max_memory_mb),
            max_disk_mb: self.max_disk_mb.unwrap_or(q.max_disk_mb),
            max_snapshot_bytes: self.max_snapshot_bytes.unwrap_or(q.max_snapshot_bytes),
            max_branches: self.max_branches.unwrap_or(q.max_branches),
        }
    }
}

impl Sandboxes {
    /// The team named `which` (its id or its name).
    async fn find_team(&self, which: &str) -> Result<TeamRecord, WarrenError> {
        if let Ok(id) = which.parse::<TeamId>()
            && let Some(team) = self.store.get_team(&id).await?
        {
            return Ok(team);
        }
        self.store
            .list_teams()
            .await?
            .into_iter()
            .find(|t| t.name == which)
            .ok_or_else(|| {
                WarrenError::not_found(format!(
                    "team '{}' not found",
                    which.chars().take(64).collect::<String>()
                ))
            })
    }

    /// The team's effective quota and usage (for operators).
    pub async fn team_quota(&self, which: &str) -> Result<TeamQuota, WarrenError> {
        let team = self.find_team(which).await?;
        let own = self.store.get_quota(&team.id).await?;
        let usage = self.store.team_usage(&team.id).await?;
        Ok(TeamQuota {
            team,
            quota: own.unwrap_or_default(),
            default: own.is_none(),
            usage,
        })
    }

    /// Changes the team's quota (operators only, by the permission table);
    /// recorded as `team.quota` in the team's audit trail.
    pub async fn set_team_quota(
        &self,
        caller: &Caller,
        which: &str,
        change: &QuotaChange,
    ) -> Result<TeamQuota, WarrenError> {
        let current = self.team_quota(which).await?;
        let quota = change.apply(current.quota);
        quota.validate()?;
        self.store
            .set_quota(&current.team.id, &quota, &caller.key_id)
            .await?;
        let event = Event::new(Action::TeamQuota, current.team.id.to_string())
            .with("max_sandboxes", quota.max_sandboxes)
            .with("max_vcpus", quota.max_vcpus)
            .with("max_memory_mb", quota.max_memory_mb)
            .with("max_disk_mb", quota.max_disk_mb)
            .with("max_snapshot_bytes", quota.max_snapshot_bytes)
            .with("max_branches", quota.max_branches);
        let actor = AuditActor::from_caller(caller).in_team(&current.team.id);
        self.audit.record_done(&actor, event).await;
        Ok(TeamQuota {
            quota,
            default: false,
            ..current
        })
    }

    /// Whether `demand` (and a fork of `branches`) fits `team`'s quota
    /// now. A fast check in front of slow work; the store's writes decide
    /// for good.
    async fn fits(
        &self,
        team: &TeamId,
        demand: &Demand,
        branches: Option<u32>,
    ) -> Result<(), WarrenError> {
        let quota = self.store.get_quota(team).await?.unwrap_or_default();
        let name = match self.store.get_team(team).await? {
            Some(t) => t.name,
            None => team.to_string(),
        };
        if let Some(count) = branches {
            check_branches(&name, &quota, count)?;
        }
        let usage = self.store.team_usage(team).await?;
        check(&name, &quota, &usage, demand)
    }

    /// A fork of `parent` into `count` branches: the branch limit, room
    /// for every branch, and room for the fork image.
    pub(super) async fn admit_fork(
        &self,
        parent: &SandboxRecord,
        count: u32,
    ) -> Result<(), WarrenError> {
        let demand = Demand {
            snapshot: true,
            ..Demand::sandboxes(count, &parent.limits)
        };
        self.fits(&parent.team, &demand, Some(count)).await
    }

    /// A new snapshot image of `rec`.
    pub(super) async fn admit_snapshot(&self, rec: &SandboxRecord) -> Result<(), WarrenError> {
        self.fits(&rec.team, &Demand::snapshot(), None).await
    }
}
