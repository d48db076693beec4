//! Test support for end-to-end tests: starts a real `warren serve` in its own
//! data directory, on its own port and sandbox address range, against a
//! templates directory shared by every test daemon (templates are built once,
//! under a lock, through the real API), and talks to it over HTTP.
//!
//! Environment:
//! - `WARREN_BIN`: the `warren` binary (default `target/debug/warren`).
//! - `WARREN_TEST_AGENT`: the static agent (default
//!   `target/x86_64-unknown-linux-gnu/release/warren-agent`).
//! - `WARREN_TEST_TEMPLATES`: shared templates directory (default
//!   `target/test-templates`).

pub mod chaos;
mod daemon;
mod http;
pub mod integrity;
pub mod internet;
pub mod load;
pub mod loopfs;
pub mod memcg;
pub mod slot;

pub use daemon::{Daemon, workspace_target};
pub use http::{ExecOutput, decode_exec};
