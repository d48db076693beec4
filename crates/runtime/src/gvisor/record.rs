//! The runtime's own record of each sandbox, and the state directory layout.
//!
//! ```text
//! <state_dir>/runsc/                 runsc --root (this runtime's containers only)
//! <state_dir>/sandboxes/<id>/
//!     record.json                    this module's Record
//!     bundle/config.json             OCI bundle
//!     overlay/                       runsc filestore for root filesystem writes,
//!                                    mount point of disk.img (see `disk`)
//!     disk.img                       the sandbox's disk
//!     console.log                    runsc's and the agent's stdout/stderr
//! ```
//!
//! The record, not `runsc list`, says whether a sandbox should be live: after
//! a checkpoint without `--leave-running` runsc still reports "running".
//! Records are replaced atomically (write to a temporary file, rename).

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use warren_core::SandboxId;
use warren_net::NetworkAttachment;

use crate::RuntimeError;

/// Where a sandbox is in its runtime life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Status {
    /// Bundle and network exist; nothing runs.
    Created,
    /// runsc was started (run or restore) and not stopped since.
    Running,
    /// Running, but every task suspended (`runsc pause`).
    Frozen,
    /// Running, but every process stopped by the cgroup freezer
    /// (`freezer`).
    CgroupFrozen,
    /// Checkpointed without leave-running, or killed: nothing runs.
    Stopped,
}

impl Status {
    /// Whether an instance exists (running or frozen either way).
    pub fn is_live(self) -> bool {
        matches!(self, Self::Running | Self::Frozen | Self::CgroupFrozen)
    }
}

/// What this runtime remembers about one sandbox: its id, its network
/// attachment (so a restarted daemon's runtime finds the sandbox's address
/// and host interface) and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    pub id: SandboxId,
    pub sandbox_ip: Ipv4Addr,
    /// The attachment's other fields; absent from records written before
    /// the daemon handed attachments out, whose values followed fixed rules
    /// (see [`Record::attachment`]). Such records also hold a `net_slot`,
    /// which is ignored.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default)]
    pub prefix_len: Option<u8>,
    #[serde(default)]
    pub host_iface: Option<String>,
    pub status: Status,
}

impl Record {
    /// A record of sandbox `id` attached at `net`.
    pub fn new(id: &SandboxId, net: &NetworkAttachment, status: Status) -> Self {
        Self {
            id: id.clone(),
            sandbox_ip: net.address,
            gateway: Some(net.gateway),
            prefix_len: Some(net.prefix_len),
            host_iface: Some(net.host_iface.clone()),
            status,
        }
    }

    /// The sandbox's network attachment as recorded; for an older record,
    /// the one its daemon gave by rule (a /30 whose host end is the address
    /// before the sandbox's, the interface named after the id).
    pub fn attachment(&self) -> NetworkAttachment {
        NetworkAttachment {
            address: self.sandbox_ip,
            gateway: self
                .gateway
                .unwrap_or_else(|| warren_net::host_end(self.sandbox_ip)),
            prefix_len: self.prefix_len.unwrap_or(warren_net::SLOT_PREFIX),
            host_iface: self
                .host_iface
                .clone()
                .unwrap_or_else(|| warren_net::host_iface_name(&self.id)),
        }
    }
}

/// Paths of one sandbox inside the state directory.
#[derive(Debug, Clone)]
pub(super) struct SandboxDir {
    pub root: PathBuf,
}

impl SandboxDir {
    pub fn new(sandboxes_dir: &Path, id: &SandboxId) -> Self {
        Self {
            root: sandboxes_dir.join(id.as_str()),
        }
    }

    pub fn record(&self) -> PathBuf {
        self.root.join("record.json")
    }

    pub fn bundle(&self) -> PathBuf {
        self.root.join("bundle")
    }

    pub fn overlay(&self) -> PathBuf {
        self.root.join("overlay")
    }

    pub fn console_log(&self) -> PathBuf {
        self.root.join("console.log")
    }

    /// Creates the directory tree (fresh: the caller removed leftovers).
    pub fn create(&self) -> Result<(), RuntimeError> {
        for dir in [self.bundle(), self.overlay()] {
            std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, "creating", e))?;
        }
        Ok(())
    }

    /// Reads the record; `Ok(None)` when there is none.
    pub fn load(&self) -> Result<Option<Record>, RuntimeError> {
        let path = self.record();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, "reading", e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| RuntimeError::Command {
                op: format!("reading {}", path.display()),
                detail: format!("corrupt sandbox record ({e}); destroy the sandbox"),
            })
    }

    /// Replaces the record atomically.
    pub fn save(&self, record: &Record) -> Result<(), RuntimeError> {
        let path = self.record();
        let tmp = self.root.join("record.json.tmp");
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| RuntimeError::Command {
            op: "encoding the sandbox record".into(),
            detail: e.to_string(),
        })?;
        std::fs::write(&tmp, bytes).map_err(|e| io_err(&tmp, "writing", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, "replacing", e))
    }

    /// Removes what one runsc instance used (bundle, overlay, console log),
    /// keeping the record.
    pub fn clear_instance_files(&self) -> Result<(), RuntimeError> {
        for dir in [self.bundle(), self.overlay()] {
            removed(std::fs::remove_dir_all(&dir), &dir)?;
        }
        let log = self.console_log();
        removed(std::fs::remove_file(&log), &log)
    }

    /// Removes the whole directory; succeeds when it does not exist.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        removed(std::fs::remove_dir_all(&self.root), &self.root)
    }

    /// The last `max` bytes of the console log, for error messages.
    pub fn console_tail(&self, max: usize) -> String {
        let Ok(bytes) = std::fs::read(self.console_log()) else {
            return String::new();
        };
        let start = bytes.len().saturating_sub(max);
        String::from_utf8_lossy(&bytes[start..]).trim().to_owned()
    }
}

/// A removal's result, with "it was not there" counting as done.
fn removed(result: io::Result<()>, path: &Path) -> Result<(), RuntimeError> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "removing", e)),
        _ => Ok(()),
    }
}

/// Ids of every sandbox directory under `sandboxes_dir` (names that are not
/// sandbox ids are ignored).
pub(super) fn list_ids(sandboxes_dir: &Path) -> Result<Vec<SandboxId>, RuntimeError> {
    let entries = match std::fs::read_dir(sandboxes_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(sandboxes_dir, "listing", e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(sandboxes_dir, "listing", e))?;
        if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
            ids.push(id);
        }
    }
    ids.sort();
    Ok(ids)
}

fn io_err(path: &Path, what: &str, source: io::Error) -> RuntimeError {
    RuntimeError::Io {
        op: format!("{what} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let id = SandboxId::generate();
        let dir = SandboxDir::new(tmp.path(), &id);
        assert_eq!(dir.load().unwrap(), None);
        dir.create().unwrap();
        let pool: warren_net::AddressPool = "10.77.0.0/16".parse().unwrap();
        let net = NetworkAttachment::new(&pool, &id, 7).unwrap();
        let rec = Record::new(&id, &net, Status::Running);
        dir.save(&rec).unwrap();
        assert_eq!(dir.load().unwrap(), Some(rec.clone()));
        assert_eq!(rec.attachment(), net);
        std::fs::create_dir(tmp.path().join("not-an-id")).unwrap();
        assert_eq!(list_ids(tmp.path()).unwrap(), vec![id]);
        dir.remove().unwrap();
        dir.remove().unwrap();
        assert!(list_ids(tmp.path()).unwrap().is_empty());
    }

    #[test]
    fn records_of_older_daemons_give_the_attachment_they_were_made_with() {
        let tmp = tempfile::tempdir().unwrap();
        let id = SandboxId::generate();
        let dir = SandboxDir::new(tmp.path(), &id);
        dir.create().unwrap();
        let old =
            format!(r#"{{"id":"{id}","net_slot":7,"sandbox_ip":"10.77.0.30","status":"running"}}"#);
        std::fs::write(dir.record(), old).unwrap();
        let rec = dir.load().unwrap().unwrap();
        let pool: warren_net::AddressPool = "10.77.0.0/16".parse().unwrap();
        assert_eq!(
            rec.attachment(),
            NetworkAttachment::new(&pool, &id, 7).unwrap()
        );
        assert_eq!(rec.status, Status::Running);
    }

    #[test]
    fn corrupt_record_is_an_error_not_a_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SandboxDir::new(tmp.path(), &SandboxId::generate());
        dir.create().unwrap();
        std::fs::write(dir.record(), b"{not json").unwrap();
        assert!(dir.load().is_err());
    }
}
