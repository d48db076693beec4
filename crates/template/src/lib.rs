//! Templates: root filesystems that sandboxes start from.
//!
//! A [`TemplateStore`] keeps templates in one directory, which several
//! daemons may share. A template is a name with immutable versions, each a
//! root filesystem named by its content address, and tags that point at
//! them (`latest` at the newest build); callers say `NAME`, `NAME:TAG` or
//! `NAME@VERSION` ([`reference`]). Builds take a per-template `flock`, build
//! into a temporary sibling directory and publish by rename, so two daemons
//! never build the same template at once, the second one reuses the first
//! one's result, and a crash never leaves a half-built version (see
//! [`store`] for the protocol and `versions.rs` for tags and collection).
//!
//! Root filesystems come from a [`Recipe`]: `base` (Debian via `mmdebstrap`,
//! from the mirror the host's apt already uses), `tiny` (the host's static
//! busybox, for tests and tiny sandboxes) or `code-interpreter` (base with a
//! Jupyter kernel server; its recipe also names a start command). Or they
//! are imported from OCI and Docker image archives ([`oci`],
//! [`TemplateStore::import`]).

mod accounts;
pub mod aliases;
mod base;
mod code_interpreter;
mod command;
mod digest;
pub mod dockerfile;
mod error;
mod fsutil;
pub mod layers;
mod lock;
mod meta;
pub mod oci;
mod progress;
mod recipe;
pub mod reference;
mod session;
mod sources;
pub mod store;
mod tiny;
mod upgrade;
mod versions;

pub use accounts::{Account, USER};
pub use error::TemplateError;
pub use meta::{Status, Template};
pub use recipe::{Recipe, StartCommand};
pub use reference::{LATEST, TemplateRef};
pub use session::{BuildConfig, BuildSession};
pub use sources::debian_mirror;

/// The content address of the tree at `root` (see the `digest` module).
pub fn tree_digest(root: &std::path::Path) -> std::io::Result<String> {
    digest::version_of(root)
}
pub use store::{Rebuild, TemplateStore};
