//! How a template's root filesystem is made. A small closed set, chosen by
//! template name: `base` (Debian via mmdebstrap) and `tiny` (busybox).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::TemplateError;
use crate::progress::Progress;
use crate::{base, tiny};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipe {
    /// Debian bookworm minbase with bash, coreutils, curl, git, python3, pip,
    /// ca-certificates, procps and sudo; user `user` with passwordless sudo.
    /// About 300 MB, ~20 s with a nearby mirror.
    Base,
    /// The host's static busybox with its applets, `root` and `user`.
    /// A couple of MB, well under a second. No bash.
    Tiny,
}

impl Recipe {
    pub const ALL: [Recipe; 2] = [Recipe::Base, Recipe::Tiny];

    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Tiny => "tiny",
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
        let err = Recipe::for_template("python").unwrap_err().to_string();
        assert_eq!(
            err,
            "no recipe builds template 'python'; known recipes: base, tiny"
        );
    }
}
