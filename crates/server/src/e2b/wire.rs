//! E2B's control-plane wire types, spelled as the E2B SDKs read and write
//! them (camelCase, with E2B's own irregular names such as `templateID`,
//! `memoryMB` and `allow_internet_access`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /sandboxes` and `POST /v2/sandboxes`. Fields Warren does not act on
/// are accepted and ignored only when they ask for the default; anything
/// else is refused in [`super::control`] so a caller never believes a
/// feature is on when it is not.
#[derive(Debug, Deserialize)]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "envVars")]
    pub env_vars: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "autoPause")]
    pub auto_pause: Option<bool>,
    /// `false` asks for filesystem-only auto-pauses (Warren's `on_idle:
    /// pause_filesystem`).
    #[serde(default, rename = "autoPauseMemory")]
    pub auto_pause_memory: Option<bool>,
    #[serde(default, rename = "autoResume")]
    pub auto_resume: Option<AutoResume>,
    #[serde(default)]
    pub allow_internet_access: Option<bool>,
    #[serde(default)]
    pub network: Option<serde_json::Value>,
    /// Team volumes to mount (`name`, `path`), as Warren's `volumes`.
    #[serde(default, rename = "volumeMounts")]
    pub volume_mounts: Option<Vec<warren_api_types::VolumeMount>>,
}

/// `autoResume` in create.
#[derive(Debug, Deserialize)]
pub struct AutoResume {
    #[serde(default)]
    pub enabled: bool,
}

/// `POST /sandboxes/{id}/connect` (and `/v2/…`) and the older
/// `POST /sandboxes/{id}/resume`.
#[derive(Debug, Default, Deserialize)]
pub struct ConnectSandbox {
    #[serde(default)]
    pub timeout: Option<u64>,
    /// `false` asks for a cold boot from disk (`on_resume="reboot"`).
    #[serde(default)]
    pub memory: Option<bool>,
    /// Only `/resume` sends it.
    #[serde(default, rename = "autoPause")]
    pub auto_pause: Option<bool>,
}

/// `POST /sandboxes/{id}/pause`. `requireHealthyGuest` is accepted and
/// has no effect: a Warren pause always needs an answering agent.
#[derive(Debug, Default, Deserialize)]
pub struct PauseRequest {
    /// `false` asks for a filesystem-only pause.
    #[serde(default)]
    pub memory: Option<bool>,
}

/// `POST /sandboxes/{id}/fork`.
#[derive(Debug, Default, Deserialize)]
pub struct ForkRequest {
    /// Lifetime of each branch in seconds.
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub count: Option<u32>,
}

/// One entry of the fork answer: the branch (Warren's forks are all or
/// nothing, so `error` is never set in a 201).
#[derive(Debug, Serialize)]
pub struct ForkResult {
    pub sandbox: CreatedSandbox,
}

/// `POST /sandboxes/{id}/snapshots`.
#[derive(Debug, Default, Deserialize)]
pub struct SnapshotRequest {
    #[serde(default)]
    pub name: Option<String>,
    /// `false` asks for a filesystem-only snapshot.
    #[serde(default)]
    pub memory: Option<bool>,
}

/// The answer to `POST /sandboxes/{id}/snapshots` and one entry of
/// `GET /snapshots`.
#[derive(Debug, Serialize)]
pub struct SnapshotInfo {
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    pub names: Vec<String>,
}

/// `POST /sandboxes/{id}/timeout`.
#[derive(Debug, Deserialize)]
pub struct TimeoutRequest {
    pub timeout: u64,
}

/// `POST /sandboxes/{id}/refreshes`.
#[derive(Debug, Default, Deserialize)]
pub struct RefreshRequest {
    #[serde(default)]
    pub duration: Option<u64>,
}

/// The answer to create and connect.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub envd_version: String,
    /// Absent for a caller who may not exec in the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    /// Opens the sandbox's own ports (not envd) as `E2B-Traffic-Access-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_access_token: Option<String>,
    pub alias: String,
    pub domain: Option<String>,
}

/// One entry of `GET /sandboxes` and the body of `GET /sandboxes/{id}`
/// (the detail adds the access token).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    pub alias: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub started_at: String,
    pub end_at: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u32,
    /// `running` or `paused`.
    pub state: &'static str,
    pub envd_version: String,
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub lifecycle: Lifecycle,
    /// What a paused sandbox's pause kept: `full` or `filesystem`.
    #[serde(rename = "pauseMode", skip_serializing_if = "Option::is_none")]
    pub pause_mode: Option<&'static str>,
    /// The volumes it mounts (the detail only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<warren_api_types::VolumeMount>>,
}

/// What the sandbox's end does and whether calls resume it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub auto_resume: bool,
    /// `kill` or `pause`.
    pub on_timeout: &'static str,
}

/// One sample of `GET /sandboxes/{id}/metrics`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetric {
    pub timestamp: String,
    pub timestamp_unix: i64,
    pub cpu_count: u32,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

/// One entry of `GET /templates`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "buildID")]
    pub build_id: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u32,
    pub public: bool,
    pub aliases: Vec<String>,
    pub names: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<()>,
    pub last_spawned_at: Option<String>,
    pub spawn_count: u64,
    pub build_count: u64,
    pub envd_version: String,
    /// `ready`, `building`, `waiting` or `error`.
    pub build_status: &'static str,
}
