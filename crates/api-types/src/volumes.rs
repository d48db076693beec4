//! Volumes: persistent team directories mounted into sandboxes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/volumes`
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CreateVolumeRequest {
    /// 1-63 letters, digits, `_`, `.` or `-`, starting with a letter or
    /// digit; unique in the team.
    pub name: String,
}

/// A volume as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Volume {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The key that created it.
    pub created_by: String,
    /// What its files take on the host's disk now (allocated blocks).
    pub size_bytes: u64,
}

/// `GET /v1/volumes`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct VolumeList {
    pub volumes: Vec<Volume>,
}

/// One volume to mount at sandbox creation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VolumeMount {
    /// The team's volume.
    pub name: String,
    /// Absolute path inside the sandbox, not `/` and not under `/proc`,
    /// `/sys`, `/dev`, `/.warren` or `/run/warren`.
    pub path: String,
}
