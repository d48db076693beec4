//! How a template's root filesystem is made, and what its sandboxes start
//! with. A small closed set, chosen by template name: `base` (Debian via
//! mmdebstrap), `tiny` (busybox) and `code-interpreter` (base with a
//! Jupyter kernel behind E2B's code-interpreter server).
//!
//! Start command: a recipe may name a command ([`Recipe::start`]) that the
//! daemon starts, through the agent, in every sandbox booted from the
//! template, right after the agent is initialised; the sandbox is running
//! once the command's port accepts connections. A sandbox restored from a
//! snapshot (resume, fork, create from snapshot) does not start it again:
//! the snapshot holds the process, still running.

use std::path::Path;

use serde::{Deserialize, Serialize};

use warren_core::Limits;

use crate::error::TemplateError;
use crate::progress::Progress;
use crate::{base, code_interpreter, tiny};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// Debian bookworm minbase with bash, coreutils, curl, git, python3 (also
    /// as `python`), pip, ca-certificates, procps, iproute2 (`ss`) and sudo; user `user` with
    /// passwordless sudo.
    /// About 300 MB, ~20 s with a nearby mirror.
    Base,
    /// The host's static busybox with its applets, `root` and `user`.
    /// A couple of MB, well under a second. No bash.
    Tiny,
    /// `base` plus `ipykernel` and `jupyter_client` from PyPI and Warren's
    /// code-interpreter server on port 49999 (`code_interpreter`), started
    /// in every sandbox. About 400 MB.
    CodeInterpreter,
}

/// A command started in every sandbox booted from a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartCommand {
    pub cmd: Vec<String>,
    pub user: String,
    pub cwd: String,
    /// The sandbox counts as started once this port accepts connections…
    #[serde(default)]
    pub ready_port: Option<u16>,
    /// …and this shell command, run as `user` in `cwd`, exits 0 (E2B's
    /// ready check). With neither, as soon as the command started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_cmd: Option<String>,
}

impl Recipe {
    pub const ALL: [Recipe; 3] = [Recipe::Base, Recipe::Tiny, Recipe::CodeInterpreter];

    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Tiny => "tiny",
            Self::CodeInterpreter => "code-interpreter",
        }
    }

    /// The command every sandbox of this recipe starts with, if any.
    pub fn start(self) -> Option<StartCommand> {
        match self {
            Self::Base | Self::Tiny => None,
            Self::CodeInterpreter => Some(code_interpreter::start()),
        }
    }

    /// The limits of this recipe's sandboxes that ask for none: the
    /// daemon's, raised where the template needs more. The code
    /// interpreter runs a kernel per language (a Deno kernel alone holds
    /// ~280 MB), so it gets 2 CPUs and 2 GiB, as E2B gives its own.
    pub fn sandbox_defaults(self, daemon: &Limits) -> Limits {
        match self {
            Self::Base | Self::Tiny => *daemon,
            Self::CodeInterpreter => Limits {
                cpus: daemon.cpus.max(2),
                memory_mb: daemon.memory_mb.max(2048),
                ..*daemon
            },
        }
    }

    /// The recipe that builds the template called `name`.
    pub fn for_template(name: &str) -> Result<Self, TemplateError> {
        Self::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| TemplateError::NoRecipe {
                name: name.to_owned(),
                known: Self::ALL.map(Self::name).join(", "),
            })
    }

    /// Builds a root filesystem into `rootfs`, which must not exist yet.
    pub(crate) async fn build(
        self,
        rootfs: &Path,
        progress: &Progress,
    ) -> Result<(), TemplateError> {
        match self {
            Self::Base => base::build(rootfs, progress).await,
            Self::Tiny => tiny::build(rootfs, progress).await,
            Self::CodeInterpreter => code_interpreter::build(rootfs, progress).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_recipes() {
        assert_eq!(Recipe::for_template("base").unwrap(), Recipe::Base);
        assert_eq!(Recipe::for_template("tiny").unwrap(), Recipe::Tiny);
        assert_eq!(
            Recipe::for_template("code-interpreter").unwrap(),
            Recipe::CodeInterpreter
        );
        assert_eq!(Recipe::Base.start(), None);
        assert_eq!(
            Recipe::CodeInterpreter.start().and_then(|s| s.ready_port),
            Some(49999)
        );
        let err = Recipe::for_template("python").unwrap_err().to_string();
        assert_eq!(
            err,
            "no recipe builds template 'python'; known recipes: base, tiny, code-interpreter"
        );
    }
}
