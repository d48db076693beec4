//! The daemon: services that own sandbox lifecycles, and the axum routers of
//! the HTTP API. `warren serve` builds a [`Config`] and calls [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `warren serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address of the HTTP API; default 127.0.0.1:8700.
    pub listen: SocketAddr,
    /// State directory; default /var/lib/warren.
    pub data_dir: PathBuf,
    /// Where templates live; default `<data_dir>/templates`. Several daemons
    /// may share one (templates are read-only once built).
    pub templates_dir: Option<PathBuf>,
    /// The static `warren-agent` binary mounted into every sandbox; default:
    /// `warren-agent` next to the running executable.
    pub agent_binary: Option<PathBuf>,
    /// IPv4 range carved into one /30 per sandbox; default 10.77.0.0/16.
    /// Daemons on one host need disjoint ranges.
    pub sandbox_cidr: String,
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Startup(String),
}

/// Runs the daemon until `shutdown` completes, then drains and returns.
pub async fn serve(
    _config: Config,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Err(ServeError::Startup("not yet implemented".into()))
}
