//! Configuration of the gVisor runtime and the host checks behind
//! `is_available`.

use std::path::{Path, PathBuf};

/// Settings of one [`super::GvisorRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GvisorConfig {
    /// Owned by this runtime alone: runsc state, bundles, overlays, records.
    pub state_dir: PathBuf,
    /// The `runsc` binary; a bare name is looked up in `PATH`.
    pub runsc_path: PathBuf,
}

impl GvisorConfig {
    /// Defaults: `runsc` from `PATH`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            runsc_path: PathBuf::from("runsc"),
        }
    }
}

/// Resolves `binary` like a shell would: a path with a slash as is, a bare
/// name through `PATH`. `None` when no executable file is found.
pub(super) fn resolve_binary(binary: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if binary.components().count() > 1 || binary.is_absolute() {
        return executable(binary).then(|| binary.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| executable(p))
}

/// Why the runtime cannot run here, or `None` when it can.
pub(super) fn unavailable_reason(runsc: &Path) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(
            "the gVisor runtime needs root (network namespaces, cgroups, nftables)".into(),
        );
    }
    let Some(binary) = resolve_binary(runsc) else {
        return Some(format!(
            "runsc not found at '{}'; install gVisor (Debian: apt install runsc) or set the runsc path",
            runsc.display()
        ));
    };
    match std::process::Command::new(&binary)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("'{} --version' exited with {s}", binary.display())),
        Err(e) => Some(format!("cannot run '{}': {e}", binary.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_are_not_resolved() {
        assert_eq!(resolve_binary(Path::new("/nonexistent/runsc")), None);
        assert_eq!(resolve_binary(Path::new("no-such-binary-warren")), None);
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("runsc");
        std::fs::write(&plain, b"not executable").unwrap();
        assert_eq!(resolve_binary(&plain), None);
        assert!(resolve_binary(Path::new("sh")).is_some());
    }
}
