//! Messages of the `filesystem.Filesystem` service (envd
//! `filesystem/filesystem.proto`).
//!
//! Methods: unary `Stat`, `MakeDir`, `Move`, `ListDir`, `Remove`,
//! `CreateWatcher`, `GetWatcherEvents`, `RemoveWatcher`, and the server
//! stream `WatchDir` of [`WatchDirResponse`]s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::json::{self, Timestamp, proto_enum};

/// The service name used in procedure paths.
pub const SERVICE: &str = "filesystem.Filesystem";

proto_enum! {
    /// The kind of a directory entry.
    pub enum FileType {
        Unspecified = 0 => "FILE_TYPE_UNSPECIFIED",
        File = 1 => "FILE_TYPE_FILE",
        Directory = 2 => "FILE_TYPE_DIRECTORY",
        Symlink = 3 => "FILE_TYPE_SYMLINK",
    }
}

proto_enum! {
    /// What happened to a watched entry.
    pub enum EventType {
        Unspecified = 0 => "EVENT_TYPE_UNSPECIFIED",
        Create = 1 => "EVENT_TYPE_CREATE",
        Write = 2 => "EVENT_TYPE_WRITE",
        Remove = 3 => "EVENT_TYPE_REMOVE",
        Rename = 4 => "EVENT_TYPE_RENAME",
        Chmod = 5 => "EVENT_TYPE_CHMOD",
    }
}

/// A directory entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EntryInfo {
    #[serde(deserialize_with = "json::null_default")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FileType,
    #[serde(deserialize_with = "json::null_default")]
    pub path: String,
    #[serde(with = "json::int64")]
    pub size: i64,
    /// Permission bits (`0o7777` mask).
    #[serde(with = "json::int32")]
    pub mode: u32,
    /// `ls -l` style, e.g. `-rw-r--r--`.
    #[serde(deserialize_with = "json::null_default")]
    pub permissions: String,
    #[serde(deserialize_with = "json::null_default")]
    pub owner: String,
    #[serde(deserialize_with = "json::null_default")]
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    #[serde(
        deserialize_with = "json::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub metadata: BTreeMap<String, String>,
    #[serde(deserialize_with = "json::null_default")]
    pub is_symlink: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PathRequest {
    #[serde(deserialize_with = "json::null_default")]
    pub path: String,
}

/// `Stat`, `MakeDir` and `Remove` all take just a path.
pub type StatRequest = PathRequest;
pub type MakeDirRequest = PathRequest;
pub type RemoveRequest = PathRequest;

/// `Stat`, `MakeDir` and `Move` all answer with one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntryResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryInfo>,
}

pub type StatResponse = EntryResponse;
pub type MakeDirResponse = EntryResponse;
pub type MoveResponse = EntryResponse;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoveResponse {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveRequest {
    #[serde(deserialize_with = "json::null_default")]
    pub source: String,
    #[serde(deserialize_with = "json::null_default")]
    pub destination: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListDirRequest {
    #[serde(deserialize_with = "json::null_default")]
    pub path: String,
    /// How many levels to descend; 0 and 1 both list direct children only.
    #[serde(with = "json::int32")]
    pub depth: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ListDirResponse {
    #[serde(deserialize_with = "json::null_default")]
    pub entries: Vec<EntryInfo>,
}

/// `WatchDir` and `CreateWatcher` take the same fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WatchDirRequest {
    #[serde(deserialize_with = "json::null_default")]
    pub path: String,
    #[serde(deserialize_with = "json::null_default")]
    pub recursive: bool,
    #[serde(deserialize_with = "json::null_default")]
    pub include_entry: bool,
    #[serde(deserialize_with = "json::null_default")]
    pub allow_network_mounts: bool,
}

pub type CreateWatcherRequest = WatchDirRequest;

/// A change below a watched directory; `name` is relative to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesystemEvent {
    #[serde(deserialize_with = "json::null_default")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchStart {}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatchKeepAlive {}

/// One message of the `WatchDir` stream: `start` first, then events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WatchDirResponse {
    Start(WatchStart),
    Filesystem(Box<FilesystemEvent>),
    Keepalive(WatchKeepAlive),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateWatcherResponse {
    #[serde(deserialize_with = "json::null_default")]
    pub watcher_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WatcherRequest {
    #[serde(deserialize_with = "json::null_default")]
    pub watcher_id: String,
}

pub type GetWatcherEventsRequest = WatcherRequest;
pub type RemoveWatcherRequest = WatcherRequest;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GetWatcherEventsResponse {
    #[serde(deserialize_with = "json::null_default")]
    pub events: Vec<FilesystemEvent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RemoveWatcherResponse {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entry_info_wire_shape() {
        let entry = EntryInfo {
            name: "a.txt".into(),
            kind: FileType::File,
            path: "/home/user/a.txt".into(),
            size: 5_000_000_000,
            mode: 0o644,
            permissions: "-rw-r--r--".into(),
            owner: "user".into(),
            group: "user".into(),
            modified_time: Some(Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            symlink_target: None,
            metadata: BTreeMap::new(),
            is_symlink: false,
        };
        let v = serde_json::to_value(&entry).unwrap();
        assert_eq!(v["type"], json!("FILE_TYPE_FILE"));
        assert_eq!(v["size"], json!("5000000000"));
        assert_eq!(v["mode"], json!(420));
        assert_eq!(v["modifiedTime"], json!("1970-01-01T00:00:00Z"));
        assert_eq!(v["isSymlink"], json!(false));
        assert_eq!(serde_json::from_value::<EntryInfo>(v).unwrap(), entry);
    }

    #[test]
    fn requests_as_the_sdk_sends_them() {
        let list: ListDirRequest =
            serde_json::from_value(json!({"path": "/tmp", "depth": 2})).unwrap();
        assert_eq!(list.depth, 2);
        let watch: WatchDirRequest = serde_json::from_value(
            json!({"path": "/tmp", "recursive": true, "includeEntry": true}),
        )
        .unwrap();
        assert!(watch.recursive && watch.include_entry && !watch.allow_network_mounts);
        let get: GetWatcherEventsRequest =
            serde_json::from_value(json!({"watcherId": "w1"})).unwrap();
        assert_eq!(get.watcher_id, "w1");
        let unknown_fields_ignored: StatRequest =
            serde_json::from_value(json!({"path": "x", "future": 1})).unwrap();
        assert_eq!(unknown_fields_ignored.path, "x");
    }

    #[test]
    fn watch_events() {
        let ev = WatchDirResponse::Filesystem(Box::new(FilesystemEvent {
            name: "sub/f".into(),
            kind: EventType::Create,
            entry: None,
        }));
        assert_eq!(
            serde_json::to_value(&ev).unwrap(),
            json!({"filesystem": {"name": "sub/f", "type": "EVENT_TYPE_CREATE"}})
        );
        let start: WatchDirResponse = serde_json::from_value(json!({"start": {}})).unwrap();
        assert_eq!(start, WatchDirResponse::Start(WatchStart {}));
    }
}
