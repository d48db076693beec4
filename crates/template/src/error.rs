//! The crate's one error type, and its mapping onto Warren's error vocabulary.

use std::io;
use std::path::PathBuf;

use warren_core::{ErrorKind, WarrenError};

/// Why a template operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The name breaks the template naming rules.
    #[error("{0}")]
    InvalidName(WarrenError),
    /// No template of that name exists (or only leftovers of a crashed build).
    #[error("template '{name}' not found; {}", how_to_build(name))]
    NotFound { name: String },
    /// A sandbox asked for a template that does not exist: what exists.
    #[error(
        "template '{name}' not found; templates here: {here}; {}",
        how_to_build(name)
    )]
    Unknown { name: String, here: String },
    /// An alias that cannot be set.
    #[error("{0}")]
    Alias(String),
    /// No stored alias of that name.
    #[error("no alias '{alias}' is stored (`warren template alias ls` lists them)")]
    NoAlias { alias: String },
    /// The template exists but cannot be used yet (building) or at all (failed).
    #[error("template '{name}' is {status}, not ready{hint}")]
    NotReady {
        name: String,
        status: String,
        hint: String,
    },
    /// Warren knows no recipe that builds a template of that name.
    #[error("no recipe builds template '{name}'; known recipes: {known}")]
    NoRecipe { name: String, known: String },
    /// No Debian mirror could be read from the host's apt sources.
    #[error(
        "no Debian mirror found: neither /etc/apt/sources.list.d/debian.sources has a `URIs:` line nor /etc/apt/sources.list a `deb` line; configure apt first"
    )]
    NoMirror,
    /// The host's busybox cannot go into a root filesystem.
    #[error("{} cannot be used for the tiny template: {reason}; install busybox-static", path.display())]
    Busybox { path: PathBuf, reason: String },
    /// A program could not be started.
    #[error("could not run {program}; is it installed? (scripts/deps.sh installs it)")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// A program ran and failed.
    #[error("{program} failed ({status}); last output:\n{tail}")]
    Command {
        program: String,
        status: String,
        tail: String,
    },
    /// `template.json` could not be read or written.
    #[error("template metadata {} is unreadable; remove the template and build it again", path.display())]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// An image could not be imported.
    #[error(transparent)]
    Import(#[from] crate::oci::OciError),
    /// An import may not take a recipe's name.
    #[error(
        "'{name}' is the name of a recipe (`warren template build {name}`); import under another name"
    )]
    Reserved { name: String },
    /// A malformed `NAME:TAG` or `NAME@VERSION`.
    #[error("{0}")]
    BadReference(String),
    /// The template exists but not the tag or version asked for.
    #[error("template {reference} not found; its tags: {known}")]
    NoSuchVersion { reference: String, known: String },
    /// The version `latest` names cannot be removed on its own.
    #[error(
        "{reference} is the latest version; tag another version `latest` (`warren template tag {name}@VERSION latest`) or remove the whole template"
    )]
    LatestVersion { reference: String, name: String },
    /// A version directory contradicts itself.
    #[error("template version {} is corrupt: {reason}; remove it", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// A build made outside the store failed (a Dockerfile step).
    #[error("{0}")]
    Build(String),
    /// A file-system operation failed.
    #[error("could not {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl TemplateError {
    /// Shorthand for [`TemplateError::Io`]: `op` reads "could not <op> <path>".
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}

/// `e` and its sources, joined by `: `.
/// How to make the template `name`: its recipe's build, or the ways to
/// make any template.
fn how_to_build(name: &str) -> String {
    match crate::recipe::Recipe::for_template(name) {
        Ok(_) => format!("build it with `warren template build {name}`"),
        Err(_) => format!(
            "make it from a recipe (`warren template build {}`), a Dockerfile (`warren template build {name} -f Dockerfile`) or an image (`warren template import {name} SOURCE`), or point an alias at one (`warren template alias set {name} TEMPLATE`)",
            crate::recipe::Recipe::ALL.map(|r| r.name()).join("|")
        ),
    }
}

pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

impl From<TemplateError> for WarrenError {
    fn from(e: TemplateError) -> Self {
        let kind = match &e {
            TemplateError::InvalidName(_)
            | TemplateError::BadReference(_)
            | TemplateError::NoRecipe { .. }
            | TemplateError::Reserved { .. }
            | TemplateError::Alias(_) => ErrorKind::InvalidArgument,
            TemplateError::Import(e) if e.is_bad_input() => ErrorKind::InvalidArgument,
            TemplateError::NotFound { .. }
            | TemplateError::Unknown { .. }
            | TemplateError::NoSuchVersion { .. }
            | TemplateError::NoAlias { .. } => ErrorKind::NotFound,
            TemplateError::LatestVersion { .. } => ErrorKind::FailedPrecondition,
            TemplateError::NotReady { .. } => ErrorKind::FailedPrecondition,
            TemplateError::NoMirror
            | TemplateError::Busybox { .. }
            | TemplateError::Spawn { .. } => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        // Builds are rare and run by operators: keep the whole chain.
        WarrenError::with_chain(kind, &e)
    }
}
