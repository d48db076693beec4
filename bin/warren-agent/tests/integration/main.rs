//! Tests of the in-sandbox agent binary over its protocol, run on the host.
//! One test binary keeps a build small; nextest still runs each test in its own
//! process.

mod common;
mod connections;
mod files;
mod permissions;
mod process;
mod protocol;
