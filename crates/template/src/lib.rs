//! Templates: root filesystems that sandboxes start from.
//!
//! A [`TemplateStore`] keeps templates in one directory, which several
//! daemons may share. Each template is `<dir>/<name>/rootfs/` plus
//! `<dir>/<name>/template.json`; it is ready iff that file says so. Builds
//! take a per-template `flock`, build into a temporary sibling directory and
//! publish by rename, so two daemons never build the same template at once,
//! the second one reuses the first one's result, and a crash never leaves a
//! half-built template that looks ready (see [`store`] for the protocol).
//!
//! Root filesystems come from a [`Recipe`]: `base` (Debian via `mmdebstrap`,
//! from the mirror the host's apt already uses), `tiny` (the host's static
//! busybox, for tests and tiny sandboxes) or `code-interpreter` (base with a
//! Jupyter kernel server; its recipe also names a start command). Or they
//! are imported from OCI and Docker image archives ([`oci`],
//! [`TemplateStore::import`]).

mod accounts;
mod base;
mod code_interpreter;
mod command;
mod error;
mod fsutil;
mod lock;
mod meta;
pub mod oci;
mod progress;
mod recipe;
mod sources;
pub mod store;
mod tiny;

pub use accounts::{Account, USER};
pub use error::TemplateError;
pub use meta::{Status, Template};
pub use recipe::{Recipe, StartCommand};
pub use sources::debian_mirror;
pub use store::TemplateStore;
