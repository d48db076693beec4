//! What a sandbox is asked to be. Validated once at the edge with
//! [`SandboxSpec::validate`]; everything past the API trusts it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::WarrenError;
use crate::id::SandboxId;

/// Resource limits: CPU, memory and tasks enforced by the runtime's cgroup,
/// disk by a filesystem of that size under the sandbox's writable layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU cores (may be shared); 1..=MAX_CPUS.
    pub cpus: u32,
    /// Memory in MiB; MIN_MEMORY_MB..=MAX_MEMORY_MB.
    pub memory_mb: u32,
    /// Maximum number of tasks, including the runtime's own threads.
    pub pids: u32,
    /// Disk in MiB for everything the sandbox writes (root filesystem and
    /// `/tmp`); MIN_DISK_MB..=MAX_DISK_MB.
    #[serde(default = "default_disk_mb")]
    pub disk_mb: u32,
}

fn default_disk_mb() -> u32 {
    Limits::DEFAULT_DISK_MB
}

impl Limits {
    pub const MAX_CPUS: u32 = 64;
    pub const MIN_MEMORY_MB: u32 = 64;
    pub const MAX_MEMORY_MB: u32 = 256 * 1024;
    /// runsc's own threads count against the pids limit (~30 idle).
    pub const MIN_PIDS: u32 = 512;
    pub const MIN_DISK_MB: u32 = 64;
    /// 1 TiB.
    pub const MAX_DISK_MB: u32 = 1024 * 1024;
    /// 10 GiB: the daemon's default unless configured otherwise.
    pub const DEFAULT_DISK_MB: u32 = 10 * 1024;

    pub fn validate(&self) -> Result<(), WarrenError> {
        if self.cpus == 0 || self.cpus > Self::MAX_CPUS {
            return Err(WarrenError::invalid(format!(
                "cpus must be between 1 and {}, got {}",
                Self::MAX_CPUS,
                self.cpus
            )));
        }
        if !(Self::MIN_MEMORY_MB..=Self::MAX_MEMORY_MB).contains(&self.memory_mb) {
            return Err(WarrenError::invalid(format!(
                "memory_mb must be between {} and {}, got {}",
                Self::MIN_MEMORY_MB,
                Self::MAX_MEMORY_MB,
                self.memory_mb
            )));
        }
        validate_disk_mb(self.disk_mb)?;
        if self.pids < Self::MIN_PIDS {
            return Err(WarrenError::invalid(format!(
                "pids must be at least {}, got {}",
                Self::MIN_PIDS,
                self.pids
            )));
        }
        Ok(())
    }
}

/// Whether `disk_mb` is a disk size a sandbox may have.
pub fn validate_disk_mb(disk_mb: u32) -> Result<(), WarrenError> {
    if (Limits::MIN_DISK_MB..=Limits::MAX_DISK_MB).contains(&disk_mb) {
        return Ok(());
    }
    Err(WarrenError::invalid(format!(
        "disk_mb must be between {} (64 MiB) and {} (1 TiB), got {disk_mb}",
        Limits::MIN_DISK_MB,
        Limits::MAX_DISK_MB
    )))
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpus: 1,
            memory_mb: 512,
            pids: 1024,
            disk_mb: Self::DEFAULT_DISK_MB,
        }
    }
}

/// Everything the runtime needs to bring one sandbox up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub id: SandboxId,
    /// Template name; resolved to a root filesystem by the template store.
    pub template: String,
    pub limits: Limits,
    /// Environment for processes the agent starts (not for the agent itself).
    pub env: BTreeMap<String, String>,
}

/// Names of templates: 1–63 characters of `[a-z0-9-_.]`, starting alphanumeric.
pub fn validate_template_name(name: &str) -> Result<(), WarrenError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "'{}' is not a valid template name (1-63 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Environment variable names: POSIX portable names, values without NUL.
pub fn validate_env(env: &BTreeMap<String, String>) -> Result<(), WarrenError> {
    for (k, v) in env {
        let name_ok = !k.is_empty()
            && !k.as_bytes()[0].is_ascii_digit()
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(WarrenError::invalid(format!(
                "'{k}' is not a valid environment variable name"
            )));
        }
        if v.contains('\0') {
            return Err(WarrenError::invalid(format!(
                "environment variable {k} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_bounds() {
        assert!(Limits::default().validate().is_ok());
        let bad = [
            Limits {
                cpus: 0,
                ..Limits::default()
            },
            Limits {
                memory_mb: 1,
                ..Limits::default()
            },
            Limits {
                pids: 10,
                ..Limits::default()
            },
            Limits {
                disk_mb: 63,
                ..Limits::default()
            },
            Limits {
                disk_mb: Limits::MAX_DISK_MB + 1,
                ..Limits::default()
            },
        ];
        for l in bad {
            assert!(l.validate().is_err(), "{l:?}");
        }
        let err = validate_disk_mb(10).unwrap_err();
        assert!(err.message.contains("disk_mb must be between 64"), "{err}");
        assert!(validate_disk_mb(Limits::MIN_DISK_MB).is_ok());
        assert!(validate_disk_mb(Limits::MAX_DISK_MB).is_ok());
    }

    #[test]
    fn limits_without_disk_read_as_the_default() {
        let l: Limits = serde_json::from_str(r#"{"cpus":1,"memory_mb":512,"pids":1024}"#).unwrap();
        assert_eq!(l.disk_mb, Limits::DEFAULT_DISK_MB);
    }

    #[test]
    fn template_names() {
        assert!(validate_template_name("base").is_ok());
        assert!(validate_template_name("code-interpreter").is_ok());
        for bad in ["", "../x", "Base", "-x", "a/b", &"x".repeat(64)] {
            assert!(validate_template_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_names() {
        let mut env = BTreeMap::new();
        env.insert("GOOD_1".into(), "v".into());
        assert!(validate_env(&env).is_ok());
        env.insert("1BAD".into(), "v".into());
        assert!(validate_env(&env).is_err());
    }
}
