//! Warren's domain model. Pure data and rules: no I/O, no async.
//!
//! - [`id`]: fixed-length identifiers (runsc prefix-matches container ids, so
//!   every id of one kind has the same length).
//! - [`state`]: the one sandbox state machine; every transition goes through it.
//! - [`spec`]: what a sandbox is asked to be (template, limits, env, lifetimes).
//! - [`authz`]: roles, scopes and the permissions they grant.
//! - [`network`]: network policies (egress rules, secret injection, public
//!   ports) and the verdicts they give.
//! - [`persist`]: lifetimes and pause behaviour (idle timeout, paused
//!   retention, auto-resume).
//! - [`inbox`]: which events wake a paused sandbox, and its event handler.
//! - [`quota`]: per-team limits and the decision whether an operation fits.
//! - [`metering`]: what sandboxes used, and its price.
//! - [`budget`]: spending limits per team, user or key.
//! - [`rules`]: anomaly rules on a sandbox's measurements.
//! - [`timefmt`]: how times are written on the wire.
//! - [`error`]: the error vocabulary shared by every layer, mapped to wire codes
//!   once, in the server.

pub mod authz;
pub mod budget;
pub mod error;
pub mod id;
pub mod inbox;
pub mod laps;
pub mod metering;
pub mod network;
pub mod persist;
pub mod quota;
pub mod rules;
pub mod spec;
pub mod state;
pub mod timefmt;

pub use authz::{Permissions, Role, Scope};
pub use error::{ErrorKind, WarrenError};
pub use id::{KeyId, RecordingId, SandboxId, SnapshotId, TeamId, UserId, VolumeId};
pub use network::{NetworkPolicy, Verdict};
pub use persist::{OnIdle, PauseMode, Persistence};
pub use quota::Quota;
pub use spec::{Limits, SandboxSpec};
pub use state::{SandboxState, Transition};
pub use timefmt::rfc3339;
