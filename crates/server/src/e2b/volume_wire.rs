//! The volume content API's wire shapes: its query parameters and
//! `VolumeEntryStat` (`spec/openapi-volumecontent.yml`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use warren_core::WarrenError;

use super::query::{QueryParams, unknown};
use crate::service::volume_content::Entry;

/// Every query parameter of the content API; each route reads its own.
#[derive(Debug, Default)]
pub struct ContentQuery {
    pub path: Option<String>,
    pub depth: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
    pub force: Option<bool>,
}

fn number(key: &str, value: &str) -> Result<u32, WarrenError> {
    value.parse().map_err(|_| {
        WarrenError::invalid(format!(
            "query parameter '{key}' must be a whole number from 0 to {}",
            u32::MAX
        ))
    })
}

impl QueryParams for ContentQuery {
    fn take(&mut self, key: &str, value: Cow<'_, str>) -> Result<(), WarrenError> {
        match key {
            "path" => self.path = Some(value.into_owned()),
            "depth" => self.depth = Some(number(key, &value)?),
            "uid" => self.uid = Some(number(key, &value)?),
            "gid" => self.gid = Some(number(key, &value)?),
            "mode" => self.mode = Some(number(key, &value)?),
            "force" => {
                self.force = Some(match &*value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(WarrenError::invalid(
                            "query parameter 'force' must be true or false",
                        ));
                    }
                });
            }
            other => return Err(unknown(other)),
        }
        Ok(())
    }
}

impl ContentQuery {
    /// `path`, which every route needs.
    pub fn path(&self) -> Result<&str, WarrenError> {
        self.path
            .as_deref()
            .ok_or_else(|| WarrenError::invalid("query parameter 'path' is required"))
    }
}

/// `PATCH …/path`'s body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// `VolumeEntryStat`.
#[derive(Debug, Serialize)]
pub struct EntryStat {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    path: String,
    size: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    atime: String,
    mtime: String,
    ctime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

fn rfc3339((secs, nanos): (i64, i64)) -> String {
    let nanos = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

impl From<Entry> for EntryStat {
    fn from(e: Entry) -> Self {
        Self {
            name: e.name,
            kind: e.kind.as_str(),
            path: e.path,
            size: e.size,
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            atime: rfc3339(e.atime),
            mtime: rfc3339(e.mtime),
            ctime: rfc3339(e.ctime),
            target: e.target,
        }
    }
}
