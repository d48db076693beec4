//! Volumes: persistent per-team directories mounted read-write into
//! sandboxes (`docs/volumes.md`).
//!
//! On the host a volume is `<data>/volumes/<team>/<volume id>/`, made
//! 0755 and owned by the templates' sandbox user (uid 1000), so both root
//! and `user` inside may write. `<data>/volumes` and each team's
//! directory are 0700 root: a file a sandbox made set-user-ID in its
//! volume is reachable from the host by root alone. Paths are built from
//! validated ids only, never from names.
//!
//! Rules:
//! - a create with volumes records its mounts (`Store::attach_volumes`)
//!   before the instance starts; a volume mounted by a live sandbox cannot
//!   be deleted (409), decided in the store's transaction;
//! - a deleted volume's directory is removed recursively without
//!   following symlinks (`std::fs::remove_dir_all` unlinks a symlink, it
//!   never descends into its target);
//! - a volume's size is what its files take on disk (allocated blocks),
//!   measured by a walk that never follows symlinks. It counts against the
//!   team's `max_disk_mb` together with its live sandboxes' disks, checked
//!   when a volume is created and when a sandbox mounting volumes is
//!   created. Writes to a mounted volume are not limited while the sandbox
//!   runs;
//! - a sandbox with volumes is not paused, snapshotted or forked (409):
//!   gVisor restores a checkpoint only into the mounts it was taken with,
//!   and a volume is not part of any image. Persistent sandboxes
//!   (`on_idle: pause`) therefore cannot mount volumes, nor can a create
//!   from a snapshot.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use warren_api_types::VolumeMount;
use warren_core::quota::{Demand, check};
use warren_core::{ErrorKind, KeyId, SandboxId, TeamId, VolumeId, WarrenError};
use warren_runtime::VolumeBind;
use warren_store::{StoreError, VolumeMountRecord, VolumeRecord};

use super::Sandboxes;
use crate::audit::{Action, AuditActor, Event};

/// Most volumes one sandbox mounts.
pub const MAX_MOUNTS: usize = 8;
const MAX_NAME: usize = 63;
const MAX_PATH: usize = 1024;
/// Paths a volume may not be mounted at or under: the kernel's, Warren's.
const RESERVED: [&str; 5] = ["/proc", "/sys", "/dev", "/.warren", "/run/warren"];
/// Owner of a volume's directory: the templates' sandbox user.
const OWNER: u32 = warren_template::USER.uid;

/// A validated mount request: the volume's name and the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRequest {
    pub name: String,
    pub path: String,
}

/// 1-63 of `[A-Za-z0-9_.-]`, starting with a letter or digit (E2B's
/// names are letters, digits, `_` and `-`).
pub fn validate_name(name: &str) -> Result<(), WarrenError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "volume name '{}' must be 1-{MAX_NAME} letters, digits, '_', '.' or '-', starting with a letter or digit",
            name.chars().take(64).collect::<String>()
        )))
    }
}

/// The normalised form of a mount path: absolute, `.` and repeated `/`
/// dropped; `..`, `/`, NUL and the reserved trees refused.
pub fn normalize_path(path: &str) -> Result<String, WarrenError> {
    let bad = |why: &str| {
        WarrenError::invalid(format!(
            "volume path '{}' {why}",
            path.chars().take(64).collect::<String>()
        ))
    };
    if !path.starts_with('/') {
        return Err(bad("must be absolute"));
    }
    if path.len() > MAX_PATH || path.contains('\0') {
        return Err(bad(&format!(
            "must be at most {MAX_PATH} bytes without NUL"
        )));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(bad("must not contain '..'")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(bad("must not be '/'"));
    }
    let normal = format!("/{}", parts.join("/"));
    if RESERVED.iter().any(|r| is_within(&normal, r)) {
        return Err(bad(&format!("must not be under {}", RESERVED.join(", "))));
    }
    Ok(normal)
}

/// Whether `path` is `root` or below it (both normalised).
fn is_within(path: &str, root: &str) -> bool {
    path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
}

/// Validates a create request's mounts: at most [`MAX_MOUNTS`], valid
/// names, paths normalised, none at or under another.
pub fn validate_mounts(mounts: &[VolumeMount]) -> Result<Vec<MountRequest>, WarrenError> {
    if mounts.len() > MAX_MOUNTS {
        return Err(WarrenError::invalid(format!(
            "a sandbox mounts at most {MAX_MOUNTS} volumes, got {}",
            mounts.len()
        )));
    }
    let mut out: Vec<MountRequest> = Vec::with_capacity(mounts.len());
    for m in mounts {
        validate_name(&m.name)?;
        let path = normalize_path(&m.path)?;
        if let Some(other) = out
            .iter()
            .find(|o| is_within(&o.path, &path) || is_within(&path, &o.path))
        {
            return Err(WarrenError::invalid(format!(
                "volume paths {} and {path} overlap: mount each at its own path",
                other.path
            )));
        }
        out.push(MountRequest {
            name: m.name.clone(),
            path,
        });
    }
    Ok(out)
}

/// Where volumes live on the host.
#[derive(Debug, Clone)]
pub struct VolumeDirs {
    root: PathBuf,
}

impl VolumeDirs {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The host directory of `volume` of `team`.
    pub fn dir(&self, team: &TeamId, volume: &VolumeId) -> PathBuf {
        self.root.join(team.as_str()).join(volume.as_str())
    }

    /// Makes the volume's directory (and its root-only parents).
    fn create(&self, team: &TeamId, volume: &VolumeId) -> std::io::Result<PathBuf> {
        for private in [self.root.clone(), self.root.join(team.as_str())] {
            match std::fs::create_dir(&private) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700))?;
        }
        let dir = self.dir(team, volume);
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        match std::os::unix::fs::chown(&dir, Some(OWNER), Some(OWNER)) {
            // Only root gives files away; a daemon that is not root (tests)
            // keeps the volume its own.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                tracing::debug!(dir = %dir.display(), "not root: the volume stays the daemon's");
            }
            other => other?,
        }
        Ok(dir)
    }
}

/// Bytes allocated to the files under `dir`, symlinks not followed, other
/// filesystems not entered. A missing directory is empty.
pub fn allocated_bytes(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let device = top.dev();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                continue;
            };
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() && meta.dev() == device {
                stack.push(entry.path());
            }
        }
    }
    total
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

fn not_found(name: &str) -> WarrenError {
    WarrenError::new(ErrorKind::NotFound, format!("volume '{name}' not found"))
}

impl Sandboxes {
    /// The host directory of a volume.
    pub fn volume_dir(&self, v: &VolumeRecord) -> PathBuf {
        self.volumes.dir(&v.team, &v.id)
    }

    /// The allocated size of a volume's files.
    pub async fn volume_size(&self, v: &VolumeRecord) -> u64 {
        let dir = self.volume_dir(v);
        tokio::task::spawn_blocking(move || allocated_bytes(&dir))
            .await
            .unwrap_or(0)
    }

    /// Bytes the team's volumes take now.
    async fn volumes_bytes(&self, team: &TeamId) -> Result<u64, WarrenError> {
        let mut total = 0u64;
        for v in self.store.list_volumes(team).await? {
            total = total.saturating_add(self.volume_size(&v).await);
        }
        Ok(total)
    }

    /// MiB the team's volumes take now.
    async fn volumes_mib(&self, team: &TeamId) -> Result<u64, WarrenError> {
        Ok(mib(self.volumes_bytes(team).await?))
    }

    /// Bytes the team may still write to its volumes: `max_disk_mb` less
    /// its live sandboxes' disks and its volumes' files (an upload to the
    /// volume content API is bounded by it). 507 when the host's disk is
    /// short.
    pub async fn volume_headroom(&self, team: &TeamId) -> Result<u64, WarrenError> {
        self.disk.check()?;
        let quota = self.store.get_quota(team).await?.unwrap_or_default();
        let usage = self.store.team_usage(team).await?;
        let used = usage
            .disk_mb
            .saturating_mul(1024 * 1024)
            .saturating_add(self.volumes_bytes(team).await?);
        Ok(quota
            .max_disk_mb
            .saturating_mul(1024 * 1024)
            .saturating_sub(used))
    }

    /// Whether `demand` fits the team's quota with its volumes counted as
    /// disk.
    async fn fits_with_volumes(&self, team: &TeamId, demand: &Demand) -> Result<(), WarrenError> {
        let quota = self.store.get_quota(team).await?.unwrap_or_default();
        let name = match self.store.get_team(team).await? {
            Some(t) => t.name,
            None => team.to_string(),
        };
        let mut usage = self.store.team_usage(team).await?;
        usage.disk_mb = usage.disk_mb.saturating_add(self.volumes_mib(team).await?);
        check(&name, &quota, &usage, demand)
            .map_err(|e| WarrenError::new(e.kind, format!("{} (volumes count as disk)", e.message)))
    }

    /// Creates the team's volume `name` (409 if it has one).
    pub async fn create_volume(
        &self,
        team: &TeamId,
        key: &KeyId,
        name: &str,
        actor: &AuditActor,
    ) -> Result<VolumeRecord, WarrenError> {
        validate_name(name)?;
        self.disk.check()?;
        // An empty volume needs no disk, but a team at its limit gets no
        // new place to write.
        self.fits_with_volumes(
            team,
            &Demand {
                disk_mb: 1,
                ..Demand::default()
            },
        )
        .await?;
        let record = self
            .store
            .create_volume(&VolumeRecord {
                id: VolumeId::generate(),
                team: team.clone(),
                name: name.to_owned(),
                created_at: self.clock.now(),
                created_by: key.clone(),
            })
            .await?;
        let dirs = self.volumes.clone();
        let (t, id) = (record.team.clone(), record.id.clone());
        let made = tokio::task::spawn_blocking(move || dirs.create(&t, &id))
            .await
            .map_err(|e| WarrenError::internal(format!("creating a volume directory: {e}")))?;
        if let Err(e) = made {
            let _ = self.store.delete_volume(team, name).await;
            return Err(WarrenError::internal(format!(
                "creating the directory of volume '{name}': {e}"
            )));
        }
        let event = Event::new(Action::VolumeCreate, record.id.to_string()).with("name", name);
        self.audit.record_done(actor, event).await;
        Ok(record)
    }

    pub async fn get_volume(&self, team: &TeamId, name: &str) -> Result<VolumeRecord, WarrenError> {
        validate_name(name).map_err(|_| not_found(name))?;
        self.store
            .get_volume(team, name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    /// The team's volume whose id, else whose name, is `which`.
    pub async fn find_volume(
        &self,
        team: &TeamId,
        which: &str,
    ) -> Result<VolumeRecord, WarrenError> {
        let all = self.store.list_volumes(team).await?;
        let by_id = all.iter().find(|v| v.id.as_str() == which);
        by_id
            .or_else(|| all.iter().find(|v| v.name == which))
            .cloned()
            .ok_or_else(|| not_found(which))
    }

    pub async fn list_volumes(&self, team: &TeamId) -> Result<Vec<VolumeRecord>, WarrenError> {
        Ok(self.store.list_volumes(team).await?)
    }

    /// Deletes the team's volume `name` and its files; 409 while a live
    /// sandbox mounts it.
    pub async fn delete_volume(
        &self,
        team: &TeamId,
        name: &str,
        actor: &AuditActor,
    ) -> Result<(), WarrenError> {
        validate_name(name).map_err(|_| not_found(name))?;
        let volume = self
            .store
            .delete_volume(team, name)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => not_found(name),
                other => other.into(),
            })?;
        let dir = self.volume_dir(&volume);
        let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        })
        .await;
        if !matches!(removed, Ok(Ok(()))) {
            tracing::warn!(volume = %volume.id, ?removed, "a deleted volume's directory was not removed");
        }
        let event = Event::new(Action::VolumeDelete, volume.id.to_string()).with("name", name);
        self.audit.record_done(actor, event).await;
        Ok(())
    }

    /// Resolves a create's mounts to the team's volumes (404 for a name it
    /// lacks) and checks the quota with them and the new sandbox's disk.
    pub(super) async fn resolve_mounts(
        &self,
        team: &TeamId,
        mounts: &[MountRequest],
        disk_mb: u32,
    ) -> Result<Vec<(VolumeRecord, String)>, WarrenError> {
        let mut out = Vec::with_capacity(mounts.len());
        for m in mounts {
            out.push((self.get_volume(team, &m.name).await?, m.path.clone()));
        }
        if !out.is_empty() {
            self.fits_with_volumes(
                team,
                &Demand {
                    disk_mb: u64::from(disk_mb),
                    ..Demand::default()
                },
            )
            .await?;
        }
        Ok(out)
    }

    /// Records the mounts of the new sandbox `id` and returns its binds.
    pub(super) async fn attach_mounts(
        &self,
        id: &SandboxId,
        mounts: &[(VolumeRecord, String)],
    ) -> Result<Vec<VolumeBind>, WarrenError> {
        if mounts.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(VolumeId, String)> = mounts
            .iter()
            .map(|(v, p)| (v.id.clone(), p.clone()))
            .collect();
        self.store.attach_volumes(id, &rows).await?;
        let mut binds = Vec::with_capacity(mounts.len());
        for (v, path) in mounts {
            let source = self.volume_dir(v);
            if !std::fs::symlink_metadata(&source).is_ok_and(|m| m.is_dir()) {
                return Err(WarrenError::internal(format!(
                    "the directory of volume '{}' is missing on the host",
                    v.name
                )));
            }
            binds.push(VolumeBind {
                source,
                target: path.clone(),
            });
        }
        Ok(binds)
    }

    /// The volumes `id` mounts.
    pub async fn sandbox_volumes(
        &self,
        id: &SandboxId,
    ) -> Result<Vec<VolumeMountRecord>, WarrenError> {
        Ok(self.store.sandbox_volumes(id).await?)
    }

    /// 409 when `id` mounts volumes: `what` (pause, snapshot, fork) would
    /// need a checkpoint, which a sandbox with volumes cannot have.
    pub(super) async fn refuse_with_volumes(
        &self,
        id: &SandboxId,
        what: &str,
    ) -> Result<(), WarrenError> {
        let mounts = self.store.sandbox_volumes(id).await?;
        if mounts.is_empty() {
            return Ok(());
        }
        Err(WarrenError::precondition(format!(
            "sandbox {id} mounts volumes ({}): a sandbox with volumes cannot {what} (its checkpoint would need the volumes' mounts; see docs/volumes.md)",
            mounts
                .iter()
                .map(|m| format!("{} at {}", m.volume.name, m.path))
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_hostile_ones_refused() {
        assert_eq!(normalize_path("/data").unwrap(), "/data");
        assert_eq!(normalize_path("//data/./x/").unwrap(), "/data/x");
        assert_eq!(normalize_path("/procfs").unwrap(), "/procfs");
        for bad in [
            "data",
            "/",
            "//",
            "/./",
            "/a/../etc",
            "/proc",
            "/proc/1",
            "/sys/x",
            "/dev",
            "/.warren",
            "/.warren/agent",
            "/run/warren",
            "/run/warren/x",
            "/a\0b",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_and_mount_lists_are_checked() {
        for good in ["a", "data-1", "x.y_z", "0", "Data"] {
            validate_name(good).unwrap();
        }
        for bad in ["", "-a", "a b", "a/b", "..", "é", &"a".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        let m = |name: &str, path: &str| VolumeMount {
            name: name.into(),
            path: path.into(),
        };
        assert!(validate_mounts(&[m("a", "/data"), m("b", "/data/x")]).is_err());
        assert!(validate_mounts(&[m("a", "/data"), m("b", "/data")]).is_err());
        validate_mounts(&[m("a", "/data"), m("a", "/data2")]).unwrap();
        let nine: Vec<_> = (0..9).map(|i| m("a", &format!("/d{i}"))).collect();
        assert!(validate_mounts(&nine).is_err());
    }

    #[test]
    fn size_walk_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let big = tempfile::tempdir().unwrap();
        std::fs::write(big.path().join("f"), vec![1u8; 1 << 20]).unwrap();
        std::os::unix::fs::symlink(big.path(), dir.path().join("link")).unwrap();
        assert!(allocated_bytes(dir.path()) < 1 << 20);
        std::fs::write(dir.path().join("g"), vec![1u8; 1 << 20]).unwrap();
        assert!(allocated_bytes(dir.path()) >= 1 << 20);
    }
}
