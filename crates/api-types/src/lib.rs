//! Wire types of Warren's native API (`/v1`). The OpenAPI document served at
//! `/v1/openapi.json` is generated from these definitions.
//!
//! Conventions: JSON bodies, snake_case fields, unknown request fields are
//! rejected, timestamps are RFC 3339 strings, sizes are in MiB or bytes as the
//! field name says. Errors are always [`ApiError`].
//!
//! Streaming responses (`exec`, template builds) are newline-delimited JSON
//! (`application/x-ndjson`): one event object per line, the last line is the
//! terminal event (`exit`, `done` or `error`).

mod audit;
mod network;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use audit::{
    AuditEntry, AuditEntryList, AuditHeads, AuditLine, ConsistencyProof, InclusionProof,
    SignedHead, Timeline, TimelineEvent,
};
pub use network::{
    NetworkEvent, NetworkEventList, NetworkPolicy, NetworkPolicySchema, UpdateNetworkRequest,
};

/// Every error the API returns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ApiError {
    /// Stable snake_case code, e.g. `not_found`, `invalid_argument`.
    pub code: String,
    /// What went wrong and what to do, for people.
    pub message: String,
    /// On a refusal that should clear by itself (503 `unavailable`: too
    /// many creates at once, the host short of memory): seconds to wait
    /// before trying again, also sent as the `Retry-After` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u32>,
}

/// `POST /v1/sandboxes`
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateSandboxRequest {
    /// Template name; default `base`.
    #[serde(default)]
    pub template: Option<String>,
    /// CPU cores; default 1.
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Memory limit in MiB; default 512.
    #[serde(default)]
    pub memory_mb: Option<u32>,
    /// Disk limit in MiB for everything the sandbox writes (root
    /// filesystem and `/tmp`), 64 to 1048576 (1 TiB); default: the
    /// daemon's (`--default-disk-mb`, 10240 unless configured otherwise).
    #[serde(default)]
    pub disk_mb: Option<u32>,
    /// Seconds until the sandbox is killed; default 300, at most 86400.
    #[serde(default)]
    pub timeout_s: Option<u64>,
    /// Environment for every process started in the sandbox.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Free-form labels, filterable in listings.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Start from this snapshot (id) instead of booting the template: the
    /// new sandbox has the snapshot's exact state, template, limits and
    /// environment (`template`, `cpus`, `memory_mb` and `disk_mb` must
    /// then be unset; `env` is added to the snapshot's).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Ask for persistence: `on_idle` defaults to `pause`.
    #[serde(default)]
    pub persistent: bool,
    /// Seconds without API activity before `on_idle` applies; default none.
    #[serde(default)]
    pub idle_timeout_s: Option<u64>,
    /// `kill`, `pause` or `pause_filesystem` (a pause keeping only the
    /// files; see `PauseRequest`); default `pause` if `persistent`, else
    /// `kill`.
    #[serde(default)]
    pub on_idle: Option<String>,
    /// Seconds a paused sandbox is kept before it and its snapshots are
    /// deleted; default 604800 (7 days), at most 30 days.
    #[serde(default)]
    pub paused_ttl_s: Option<u64>,
    /// Whether exec and files calls on a paused sandbox resume it first;
    /// default true.
    #[serde(default)]
    pub auto_resume: Option<bool>,
    /// Network policy; default: the daemon's (`--network-default`, deny
    /// unless configured otherwise).
    #[serde(default)]
    #[schema(value_type = Option<NetworkPolicySchema>)]
    pub network: Option<NetworkPolicy>,
    /// Which events resume the sandbox when it is paused; default every
    /// event (`{"on": ["*"]}`); `{"on": []}` never.
    #[serde(default)]
    #[schema(value_type = Option<WakePolicySchema>)]
    pub wake: Option<warren_core::inbox::WakePolicy>,
    /// A command Warren runs inside the sandbox for each event, in order,
    /// with the event's JSON on its standard input; exit 0 acknowledges.
    #[serde(default)]
    #[schema(value_type = Option<EventHandlerSchema>)]
    pub on_event: Option<warren_core::inbox::EventHandler>,
    /// Team volumes mounted read-write at the given paths (at most 8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
}

/// A sandbox as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Sandbox {
    pub id: String,
    pub template: String,
    /// The template version it runs on (it keeps it across rebuilds).
    #[serde(default)]
    pub template_version: Option<String>,
    /// `creating`, `running`, `pausing`, `paused`, `resuming`, `killed` or `failed`.
    pub state: String,
    pub cpus: u32,
    pub memory_mb: u32,
    /// Disk limit in MiB: writes past it fail with "no space left on
    /// device" inside the sandbox.
    #[serde(default)]
    pub disk_mb: u32,
    pub metadata: BTreeMap<String, String>,
    /// The team it belongs to.
    pub team: String,
    /// The user who dispatched it; its sandbox token acts for them.
    pub owner: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: when the sandbox will be killed unless extended (a paused
    /// sandbox does not age by it; its clock starts again at resume).
    pub expires_at: String,
    /// Whether exec and files calls on it resume it when paused.
    #[serde(default)]
    pub auto_resume: bool,
    /// `kill`, `pause` or `pause_filesystem` (a pause keeping only the
    /// files): what happens after `idle_timeout_s` without API activity or
    /// at the end of its lifetime.
    #[serde(default)]
    pub on_idle: String,
    /// While paused (or resuming): what its pause kept, `full` or
    /// `filesystem` (its resume boots it again).
    #[serde(default)]
    pub pause_mode: Option<String>,
    #[serde(default)]
    pub idle_timeout_s: Option<u64>,
    /// Seconds a paused sandbox is kept.
    #[serde(default)]
    pub paused_ttl_s: u64,
    /// The snapshot this sandbox was started from (fork or create from
    /// snapshot), for lineage.
    #[serde(default)]
    pub source_snapshot: Option<String>,
    /// Opens the sandbox's exposed ports (header `X-Warren-Traffic-Token`
    /// or `?warren_token=`); in the detail, for callers with
    /// `sandboxes:exec` only, and left out while the host's disk is too
    /// full to record a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_token: Option<String>,
    /// The effective network policy.
    #[serde(default)]
    #[schema(value_type = NetworkPolicySchema)]
    pub network: NetworkPolicy,
    /// The team volumes it mounts (in its creation and its detail).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeMount>,
    /// What it used so far and its cost (in its detail; the meter's last
    /// sample, at most one interval old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageTotals>,
}

/// `POST /v1/sandboxes/{id}/pause` (the body may be left out).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// What the pause keeps: `full` (memory, processes and files; the
    /// default) or `filesystem` (files only: every process is ended, and
    /// the resume boots the sandbox again, its template's start command
    /// running again as at create).
    #[serde(default)]
    pub mode: Option<String>,
}

/// `POST /v1/sandboxes/{id}/snapshots`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshotRequest {
    /// 1-63 characters of `[a-z0-9-_.]`, starting alphanumeric; unique
    /// among the sandbox's snapshots.
    pub name: String,
}

/// A snapshot as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    /// `named`, `fork` or `pause`.
    pub kind: String,
    /// Set for named snapshots.
    #[serde(default)]
    pub name: Option<String>,
    /// The sandbox it was taken from.
    pub sandbox_id: String,
    /// The snapshot that sandbox was itself started from (lineage).
    #[serde(default)]
    pub parent_snapshot: Option<String>,
    /// Sandboxes started from this snapshot (lineage).
    #[serde(default)]
    pub children: Vec<String>,
    pub size_bytes: u64,
    /// RFC 3339.
    pub created_at: String,
    /// False once its image is deleted (the entry stays for lineage).
    pub available: bool,
}

/// `GET /v1/sandboxes/{id}/snapshots`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SnapshotList {
    pub snapshots: Vec<Snapshot>,
    /// Bytes of snapshot images of this sandbox still stored.
    pub total_bytes: u64,
}

/// `POST /v1/sandboxes/{id}/rollback`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// Name or id of one of the sandbox's named snapshots.
    pub snapshot: String,
}

/// `POST /v1/sandboxes/{id}/fork`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// How many branches; 1-16.
    pub count: u32,
}

/// Response of `POST /v1/sandboxes/{id}/fork`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ForkResponse {
    /// The snapshot every branch started from.
    pub snapshot: String,
    pub sandboxes: Vec<Sandbox>,
}

/// `GET /v1/sandboxes`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SandboxList {
    pub sandboxes: Vec<Sandbox>,
}

/// `POST /v1/sandboxes/{id}/timeout`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetTimeoutRequest {
    /// Seconds from now until the sandbox is killed; at most 86400.
    pub timeout_s: u64,
}

/// A command the sandbox's agent started that is still running (an exec,
/// a terminal, the template's start command), as
/// `GET /v1/sandboxes/{id}/processes` lists it. Its environment is never
/// shown: it may hold what the caller passed in confidence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProcessSummary {
    pub pid: u32,
    /// The program.
    pub cmd: String,
    pub args: Vec<String>,
    /// The working directory it was started in, if one was given.
    pub cwd: Option<String>,
    /// The tag it was started with (the start command's is `start-command`).
    pub tag: Option<String>,
}

/// `GET /v1/sandboxes/{id}/processes`, by pid.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ProcessList {
    pub processes: Vec<ProcessSummary>,
}

/// `POST /v1/sandboxes/{id}/exec`: runs `cmd[0]` with arguments `cmd[1..]`
/// directly (no shell unless the caller asks for one, e.g. `["bash", "-lc", "..."]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory; default the user's home.
    #[serde(default)]
    pub cwd: Option<String>,
    /// User to run as; default `user` (falls back to `root` if the template has no `user`).
    #[serde(default)]
    pub user: Option<String>,
    /// Bytes written to the process's stdin, which is then closed. Without
    /// it, stdin is closed at once.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// One line of the `exec` response stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecEvent {
    /// The process started.
    Start { pid: u32 },
    /// Output on stdout, base64-encoded.
    Stdout { data: String },
    /// Output on stderr, base64-encoded.
    Stderr { data: String },
    /// The process ended. `exit_code` is -1 if it was killed by a signal
    /// (`signal` then names it) or the agent connection broke; 127 if the
    /// program was not found and 126 if it could not be executed (then no
    /// `start` came first). `error` says why, when there is a why.
    Exit {
        exit_code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// Response of `PUT /v1/sandboxes/{id}/files?path=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct FileWritten {
    pub path: String,
    pub size: u64,
}

/// Control messages a client sends as WebSocket text frames on
/// `GET /v1/sandboxes/{id}/pty`. Binary frames carry keyboard input.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PtyClientMessage {
    Resize { cols: u16, rows: u16 },
}

/// Messages the server sends as WebSocket text frames on the PTY socket.
/// Binary frames carry terminal output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PtyServerMessage {
    Exit { exit_code: i32 },
}

/// A template as the API shows it: one version of it (in lists, its
/// `latest`), or a template with no ready version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    /// `ready`, `building` or `failed`.
    pub status: String,
    pub size_bytes: u64,
    /// RFC 3339, if built.
    #[serde(default)]
    pub built_at: Option<String>,
    /// The version's content address (16 hex digits); absent while no
    /// version is ready. `NAME@VERSION` names exactly this version.
    #[serde(default)]
    pub version: Option<String>,
    /// The tags naming this version (`latest` for the newest build).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Why the last build failed, for `failed` templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/templates/{name}`: every version of a template, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateVersions {
    pub name: String,
    pub versions: Vec<TemplateVersion>,
}

/// One version of a template.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateVersion {
    #[serde(flatten)]
    pub template: Template,
    /// Whether a live sandbox or a snapshot uses it. A version no tag names
    /// is deleted about a minute after it was last in use.
    pub in_use: bool,
}

/// `PUT /v1/templates/{name}/tags/{tag}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TagTemplateRequest {
    /// The version to tag: a version id, or another tag of the template.
    pub target: String,
}

/// A name that stands for a template (`GET /v1/template-aliases`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateAlias {
    pub alias: String,
    /// The template it stands for; the reference's tag carries over.
    pub target: String,
    /// Built into Warren (e.g. E2B's `code-interpreter-v1`), not stored;
    /// a stored alias of the same name overrides it.
    pub builtin: bool,
}

/// `GET /v1/template-aliases`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateAliasList {
    pub aliases: Vec<TemplateAlias>,
}

/// `PUT /v1/template-aliases/{alias}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetTemplateAliasRequest {
    /// The template the alias stands for (a name, not another alias).
    pub target: String,
}

/// `DELETE /v1/templates/{reference}`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateRemoved {
    /// Versions no tag names any more, as `NAME@VERSION`: deleted once no
    /// sandbox or snapshot uses them.
    pub untagged: Vec<String>,
}

/// `GET /v1/templates`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct TemplateList {
    pub templates: Vec<Template>,
}

/// One line of the `POST /v1/templates/{name}/build` response stream.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BuildEvent {
    /// A line of build output.
    Log { line: String },
    /// The build finished.
    Done { template: Template },
    /// The build failed.
    Error { message: String },
}

/// `GET /v1/health` (no key needed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub version: String,
    /// The sandbox runtime in use, e.g. `gvisor`.
    pub runtime: String,
    /// Exposed ports answer at `{port}-{id}.{ports_domain}` on the API port.
    #[serde(default)]
    pub ports_domain: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_rejects_unknown_fields() {
        let err = serde_json::from_str::<CreateSandboxRequest>(r#"{"templat":"base"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `templat`"), "{err}");
    }

    #[test]
    fn exec_events_are_tagged() {
        let line = serde_json::to_string(&ExecEvent::Exit {
            exit_code: 3,
            signal: None,
            error: None,
        })
        .unwrap();
        assert_eq!(line, r#"{"type":"exit","exit_code":3}"#);
    }
}

mod quotas;
mod tenancy;
pub use quotas::*;
pub use tenancy::*;

mod secrets;
pub use secrets::{Secret, SecretList, SetSecretRequest};
mod volumes;
pub use volumes::{CreateVolumeRequest, Volume, VolumeList, VolumeMount};

mod events;
pub use events::{
    AckRequest, AckResult, Event, EventAccepted, EventHandlerSchema, EventList, SelfEvents,
    SendEventRequest, WakePolicySchema, WakeRequest,
};

mod hooks;
pub use hooks::{
    CreateHookRequest, CreateTimerRequest, DeliveryAccepted, Hook, HookCreated, HookList,
    HookSubscription, Timer, TimerEvent, TimerList,
};

mod webhooks;
pub use webhooks::{
    CreateWebhookRequest, CreatedWebhook, Delivery, DeliveryAttempt, DeliveryList, Webhook,
    WebhookList,
};

mod pools;
pub use pools::{Pool, PoolList, SetPoolRequest};

mod usage;
pub use usage::{Cost, MetricMinute, SandboxMetrics, UsageGroup, UsageReport, UsageTotals};

mod budgets;
pub use budgets::{
    Budget, BudgetList, CreateBudgetRequest, OverrideBudgetRequest, UpdateBudgetRequest,
};

mod rules;
pub use rules::{RuleSet, RuleSpec, SetRulesRequest};

mod session;
pub use session::{SandboxRemoved, Session, SessionRequest};

mod recordings;
pub use recordings::{Recording, RecordingList};
