//! One module per subcommand. Each holds its clap `Args` (with help text and
//! examples) and an async `run` returning the process exit code.

pub mod audit;
pub mod budget;
pub mod cp;
pub mod create;
pub mod env;
pub mod events;
pub mod exec;
pub mod fork;
pub mod hook;
pub mod info;
pub mod key;
pub mod kill;
pub mod ls;
pub mod network;
pub mod pause;
pub mod pool;
pub mod port;
pub mod replay;
pub mod resume;
pub mod rollback;
pub mod rules;
pub mod secret;
pub mod serve;
pub mod shell;
pub mod snapshot;
pub mod snapshots;
pub mod team;
pub mod template;
pub mod template_alias;
pub mod timeline;
pub mod timeout;
pub mod timer;
pub mod usage;
pub mod user;
pub mod volume;
pub mod webhook;

use crate::client::Client;
use crate::config::{self, Overrides};
use crate::output::Output;

/// What every client command gets: output settings and the way to the daemon.
pub struct Ctx {
    pub out: Output,
    overrides: Overrides,
}

impl Ctx {
    pub fn new(out: Output, overrides: Overrides) -> Self {
        Self { out, overrides }
    }

    /// The configured daemon and key (see [`config`] for the precedence).
    pub fn endpoint(&self) -> anyhow::Result<config::Endpoint> {
        Ok(config::resolve(&self.overrides, &|k| {
            std::env::var(k).ok()
        })?)
    }

    /// A client for the configured daemon.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(self.endpoint()?)?)
    }
}
