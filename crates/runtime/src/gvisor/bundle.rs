//! The OCI bundle of one sandbox (`config.json`).
//!
//! - root: the template's shared rootfs, `readonly: false` — runsc only
//!   layers its overlay over a writable root; writes go to a filestore in
//!   the per-sandbox directory given with `--overlay2=root:dir=…` and never
//!   reach the template;
//! - `/tmp`: a bind mount of the template's own `/tmp`, which runsc's
//!   `--overlay2=all:…` overlays like the root: its writes go to the
//!   sandbox's disk too and count against `disk_mb`. Without a `/tmp` mount
//!   runsc mounts a tmpfs there when the template's `/tmp` is empty, whose
//!   files live in the sandbox's memory: a large file in `/tmp` would meet
//!   the memory limit (the OOM killer) instead of the disk limit (`ENOSPC`).
//!   A template without a `/tmp` directory gets runsc's default;
//! - process: the agent, bind-mounted read-only at [`AGENT_PATH`], as root in
//!   `/` with the spec's environment (the agent builds its children's);
//! - `sudo`: where runsc ignores set-user-ID bits, the agent binary again,
//!   read-only at [`SUDO_RELAY_PATH`], so `sudo` goes through the agent's
//!   relay (`bin/warren-agent/src/sudo`). Only for templates that have a
//!   `/usr/bin/sudo` and roots under an overlay (not a build's directory,
//!   which would keep the mount point). A checkpoint restores only into
//!   the mounts it was taken with, so the bundle and every image taken of
//!   it carry [`SUDO_RELAY_MARKER`] when the mount is there;
//! - volumes: each a read-write bind mount of its host directory. runsc's
//!   gofer serves it, resolving every path inside the mount (a symlink in
//!   it never reaches host files outside). A sandbox with volumes is laid
//!   out [`super::disk::Layout::RootOnly`]: `--overlay2=all` would give
//!   every writable bind mount an overlay, so the volume's writes would
//!   land in the sandbox's disk instead of the volume;
//! - network namespace: the sandbox's named namespace by path, so runsc
//!   takes `eth0` from it (without a path runsc makes an empty one);
//! - `linux.cgroupsPath` = `/warren-<id>` with CPU quota, memory and pids
//!   limits; runsc ignores the limits without a cgroups path.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder, get_default_mounts,
};
use warren_core::{Limits, SandboxId};

use crate::RuntimeError;

/// Where the agent binary appears inside every sandbox.
pub const AGENT_PATH: &str = "/.warren/agent";
/// Where the agent binary is mounted to serve as `sudo` (ahead of
/// `/usr/bin` in `PATH`).
pub const SUDO_RELAY_PATH: &str = "/usr/local/bin/sudo";
/// Marks a bundle or checkpoint image whose sandbox has the `sudo` mount.
pub(super) const SUDO_RELAY_MARKER: &str = "warren-sudo-relay";

/// Whether `dir` (a bundle or checkpoint image) is marked as having the
/// `sudo` mount.
pub(super) fn has_sudo_relay(dir: &Path) -> bool {
    dir.join(SUDO_RELAY_MARKER).exists()
}

/// Marks `dir` (a bundle or checkpoint image) as having the `sudo` mount.
pub(super) fn mark_sudo_relay(dir: &Path) -> Result<(), RuntimeError> {
    let path = dir.join(SUDO_RELAY_MARKER);
    std::fs::write(&path, b"").map_err(|e| RuntimeError::Command {
        op: format!("writing {}", path.display()),
        detail: e.to_string(),
    })
}

const CPU_PERIOD_US: u64 = 100_000;
const MIB: i64 = 1024 * 1024;
const NOFILE: u64 = 1 << 20;

/// Inputs of one bundle.
pub(super) struct BundleParams<'a> {
    pub id: &'a SandboxId,
    pub rootfs: &'a Path,
    pub agent_binary: &'a Path,
    /// The agent process's environment.
    pub env: &'a [(String, String)],
    pub netns_path: PathBuf,
    pub cgroups_path: String,
    pub limits: Limits,
    /// Whether `/tmp` is bind-mounted for the overlay (see `disk::Layout`).
    pub tmp_on_disk: bool,
    /// Read-write bind mounts of host directories.
    pub volumes: &'a [crate::VolumeBind],
    /// Whether the agent is mounted at [`SUDO_RELAY_PATH`].
    pub sudo_relay: bool,
}

/// Builds the OCI runtime spec for `p`.
pub(super) fn spec(p: &BundleParams<'_>) -> Result<Spec, RuntimeError> {
    build(p).map_err(|e| RuntimeError::Command {
        op: "building the OCI spec".into(),
        detail: e.to_string(),
    })
}

/// Writes `config.json` into `bundle_dir`.
pub(super) fn write(bundle_dir: &Path, p: &BundleParams<'_>) -> Result<(), RuntimeError> {
    let spec = spec(p)?;
    spec.save(bundle_dir.join("config.json"))
        .map_err(|e| RuntimeError::Command {
            op: format!("writing {}/config.json", bundle_dir.display()),
            detail: e.to_string(),
        })
}

fn build(p: &BundleParams<'_>) -> Result<Spec, oci_spec::OciSpecError> {
    // Docker's default set minus NET_RAW: enough for the agent to switch
    // users, chown files and let `sudo` work inside.
    let caps: oci_spec::runtime::Capabilities = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::Fsetid,
        Capability::Fowner,
        Capability::Mknod,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setfcap,
        Capability::Setpcap,
        Capability::NetBindService,
        Capability::SysChroot,
        Capability::Kill,
        Capability::AuditWrite,
    ]
    .into_iter()
    .collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;

    let process = ProcessBuilder::default()
        .terminal(false)
        .user(UserBuilder::default().uid(0u32).gid(0u32).build()?)
        .args(vec![AGENT_PATH.to_owned()])
        .env(
            p.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd("/")
        .no_new_privileges(false)
        .capabilities(capabilities)
        .rlimits(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(NOFILE)
                .hard(NOFILE)
                .build()?,
        ])
        .build()?;

    let mut mounts = get_default_mounts();
    mounts.push(
        MountBuilder::default()
            .destination(AGENT_PATH)
            .typ("bind")
            .source(p.agent_binary)
            .options(vec!["rbind".to_owned(), "ro".to_owned()])
            .build()?,
    );
    if p.sudo_relay {
        mounts.push(
            MountBuilder::default()
                .destination(SUDO_RELAY_PATH)
                .typ("bind")
                .source(p.agent_binary)
                .options(vec!["rbind".to_owned(), "ro".to_owned()])
                .build()?,
        );
    }
    let tmp = p.rootfs.join("tmp");
    if p.tmp_on_disk && std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_dir()) {
        mounts.push(
            MountBuilder::default()
                .destination("/tmp")
                .typ("bind")
                .source(tmp)
                .options(vec!["rbind".to_owned(), "rw".to_owned()])
                .build()?,
        );
    }

    for volume in p.volumes {
        mounts.push(
            MountBuilder::default()
                .destination(&volume.target)
                .typ("bind")
                .source(&volume.source)
                .options(vec![
                    "rbind".to_owned(),
                    "rw".to_owned(),
                    "nosuid".to_owned(),
                    "nodev".to_owned(),
                ])
                .build()?,
        );
    }

    let ns = |typ| LinuxNamespaceBuilder::default().typ(typ).build();
    let namespaces = vec![
        ns(LinuxNamespaceType::Pid)?,
        ns(LinuxNamespaceType::Ipc)?,
        ns(LinuxNamespaceType::Uts)?,
        ns(LinuxNamespaceType::Mount)?,
        LinuxNamespaceBuilder::default()
            .typ(LinuxNamespaceType::Network)
            .path(p.netns_path.clone())
            .build()?,
    ];

    let limits = p.limits;
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .period(CPU_PERIOD_US)
                .quota(i64::from(limits.cpus) * CPU_PERIOD_US as i64)
                .build()?,
        )
        .memory(
            LinuxMemoryBuilder::default()
                .limit(i64::from(limits.memory_mb) * MIB)
                .build()?,
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(i64::from(limits.pids))
                .build()?,
        )
        .build()?;

    let linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&p.cgroups_path))
        .resources(resources)
        .build()?;

    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(p.rootfs)
                .readonly(false)
                .build()?,
        )
        .hostname(p.id.as_str())
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_carries_limits_root_agent_and_netns() {
        let id = SandboxId::generate();
        let p = BundleParams {
            id: &id,
            rootfs: Path::new("/templates/base/rootfs"),
            env: &crate::RuntimeSpec::agent_env(),
            agent_binary: Path::new("/usr/lib/warren/warren-agent"),
            netns_path: PathBuf::from("/run/netns/warren-x"),
            cgroups_path: format!("/warren-{id}"),
            limits: Limits {
                cpus: 2,
                memory_mb: 256,
                pids: 600,
                disk_mb: 1024,
            },
            tmp_on_disk: true,
            volumes: &[],
            sudo_relay: false,
        };
        let json = serde_json::to_value(spec(&p).unwrap()).unwrap();
        assert_eq!(json["root"]["path"], "/templates/base/rootfs");
        assert_eq!(json["root"]["readonly"], false);
        assert_eq!(json["process"]["args"][0], AGENT_PATH);
        let res = &json["linux"]["resources"];
        assert_eq!(res["memory"]["limit"], 256 * 1024 * 1024);
        assert_eq!(res["cpu"]["quota"], 200_000);
        assert_eq!(res["pids"]["limit"], 600);
        assert_eq!(json["linux"]["cgroupsPath"], format!("/warren-{id}"));
        let nets: Vec<_> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == "network")
            .collect();
        assert_eq!(nets.len(), 1);
        assert_eq!(nets[0]["path"], "/run/netns/warren-x");
        let agent = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == AGENT_PATH)
            .unwrap();
        assert_eq!(agent["source"], "/usr/lib/warren/warren-agent");
        assert!(agent["options"].as_array().unwrap().contains(&"ro".into()));
        // No /tmp in that (absent) rootfs: runsc's default applies.
        assert!(
            !json["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/tmp")
        );
    }

    #[test]
    fn volumes_are_read_write_bind_mounts_without_suid_or_devices() {
        let id = SandboxId::generate();
        let volumes = [crate::VolumeBind {
            source: PathBuf::from("/var/lib/warren/volumes/t/v"),
            target: "/data".into(),
        }];
        let p = BundleParams {
            id: &id,
            rootfs: Path::new("/templates/base/rootfs"),
            env: &crate::RuntimeSpec::agent_env(),
            agent_binary: Path::new("/usr/lib/warren/warren-agent"),
            netns_path: PathBuf::from("/run/netns/warren-x"),
            cgroups_path: format!("/warren-{id}"),
            limits: Limits::default(),
            tmp_on_disk: false,
            volumes: &volumes,
            sudo_relay: true,
        };
        let json = serde_json::to_value(spec(&p).unwrap()).unwrap();
        let sudo = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == SUDO_RELAY_PATH)
            .unwrap();
        assert_eq!(sudo["source"], "/usr/lib/warren/warren-agent");
        assert!(sudo["options"].as_array().unwrap().contains(&"ro".into()));
        let data = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/data")
            .unwrap();
        assert_eq!(data["type"], "bind");
        assert_eq!(data["source"], "/var/lib/warren/volumes/t/v");
        let options = data["options"].as_array().unwrap();
        for option in ["rw", "nosuid", "nodev"] {
            assert!(options.contains(&option.into()), "{option}");
        }
    }

    #[test]
    fn tmp_is_the_templates_own_bind_mounted_for_the_overlay() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir(rootfs.path().join("tmp")).unwrap();
        let id = SandboxId::generate();
        let p = BundleParams {
            id: &id,
            rootfs: rootfs.path(),
            env: &crate::RuntimeSpec::agent_env(),
            agent_binary: Path::new("/usr/lib/warren/warren-agent"),
            netns_path: PathBuf::from("/run/netns/warren-x"),
            cgroups_path: format!("/warren-{id}"),
            limits: Limits::default(),
            tmp_on_disk: true,
            volumes: &[],
            sudo_relay: false,
        };
        let json = serde_json::to_value(spec(&p).unwrap()).unwrap();
        let tmp = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/tmp")
            .unwrap();
        assert_eq!(tmp["type"], "bind");
        assert_eq!(tmp["source"], rootfs.path().join("tmp").to_str().unwrap());
        assert!(tmp["options"].as_array().unwrap().contains(&"rw".into()));
        // An image taken without it is restored without it.
        let old = BundleParams {
            tmp_on_disk: false,
            ..p
        };
        let json = serde_json::to_value(spec(&old).unwrap()).unwrap();
        assert!(
            !json["mounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["destination"] == "/tmp")
        );
    }
}
