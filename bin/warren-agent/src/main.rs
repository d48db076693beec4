//! `warren-agent`: runs inside every sandbox, usually as PID 1, and serves
//! the E2B envd protocol (see `docs/agent.md`).
//!
//! As PID 1 it reaps every zombie and, on SIGTERM or SIGINT, forwards the
//! signal to the process groups it started, waits briefly for them and
//! exits. It runs the same way as an ordinary process (for tests).

mod agent_log;
mod ca;
mod epoll_filter;
mod fs;
mod init;
mod logs;
mod methods;
mod process;
mod quiesce;
mod reaper;
mod rpc;
mod server;
mod state;
mod sudo;
mod users;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: warren-agent [--port PORT] [--listen ADDR] [--etc DIR] [--root DIR]\n\
  --port PORT    TCP port (default 49983)\n\
  --listen ADDR  IP address to listen on (default 0.0.0.0)\n\
  --etc DIR      directory holding passwd and group (default /etc)\n\
  --root DIR     the root the agent's files from /init (CA, token, environment)
                 are written under (default /)";

#[derive(Debug, thiserror::Error)]
enum AgentError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

struct Args {
    listen: SocketAddr,
    etc: PathBuf,
    root: PathBuf,
}

fn parse_args() -> Result<Args, AgentError> {
    let mut port = warren_envd::http_api::DEFAULT_PORT;
    let mut ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let mut etc = PathBuf::from("/etc");
    let mut root = PathBuf::from("/");
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| AgentError::Usage(format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                port = v
                    .parse()
                    .map_err(|_| AgentError::Usage(format!("invalid port {v:?}")))?;
            }
            "--listen" => {
                let v = value("--listen")?;
                ip = v.parse().map_err(|_| {
                    AgentError::Usage(format!("invalid IP address {v:?} (names are not resolved)"))
                })?;
            }
            "--etc" => etc = PathBuf::from(value("--etc")?),
            "--root" => root = PathBuf::from(value("--root")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(AgentError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(Args {
        listen: SocketAddr::new(ip, port),
        etc,
        root,
    })
}

/// Waits for SIGTERM or SIGINT, forwards it to every started process group
/// and waits up to `grace` for them to end.
async fn shutdown(state: state::Shared, grace: Duration) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install SIGTERM/SIGINT handlers");
        return std::future::pending().await;
    };
    let sig = tokio::select! {
        _ = term.recv() => nix::sys::signal::Signal::SIGTERM,
        _ = int.recv() => nix::sys::signal::Signal::SIGINT,
    };
    tracing::info!(signal = %sig, "shutting down");
    for proc in state.procs.all() {
        let _ = proc.signal(sig);
    }
    let deadline = tokio::time::Instant::now() + grace;
    while !state.procs.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(args: Args) -> Result<(), AgentError> {
    let is_pid1 = std::process::id() == 1;
    let reaper = Arc::new(reaper::Reaper::default());
    let state = Arc::new(state::AppState::new(
        users::UserDb::new(args.etc),
        reaper.clone(),
        is_pid1,
        args.root,
    ));
    tokio::spawn(async move {
        if let Err(e) = reaper.run().await {
            tracing::error!(error = %e, "the reaper stopped");
        }
    });
    if nix::unistd::geteuid().is_root() {
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = sudo::relay::serve(state).await {
                tracing::warn!(error = %e, "the sudo relay stopped");
            }
        });
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: args.listen,
            source,
        })?;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
    });
    tracing::info!(addr = %args.listen, pid1 = is_pid1, "serving envd");
    let app = server::router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown(state, Duration::from_secs(3)))
        .await?;
    Ok(())
}

/// Whether this binary was run as `sudo` (the runtime mounts it there).
fn invoked_as_sudo() -> bool {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .is_some_and(|p| p.file_name().is_some_and(|n| n == "sudo"))
}

fn main() {
    if invoked_as_sudo() {
        sudo::client::main(std::env::args().skip(1).collect());
    }
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_from_env("WARREN_AGENT_LOG")
                .unwrap_or_else(|_| "info".into()),
        );
    tracing_subscriber::registry()
        .with(stderr)
        .with(agent_log::AgentLog)
        .init();
    let result = parse_args().and_then(|args| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .thread_stack_size(256 * 1024)
            .enable_all()
            .build()?;
        runtime.block_on(run(args))
    });
    if let Err(e) = result {
        eprintln!("warren-agent: {e}");
        std::process::exit(2);
    }
}
