//! Tests of the `warren` binary: the CLI against a mock API, and against a
//! real daemon in process. One test binary keeps a build small; nextest still
//! runs each test in its own process.

mod cli;
mod cli_server;
mod cli_sources;
mod cli_webhooks;
mod mock;
mod shell_tty;
