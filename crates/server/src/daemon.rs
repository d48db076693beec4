//! Start-up and shutdown of `warren serve`.
//!
//! Order: data directory → secrets → store → audit log (writer, signer;
//! key `secrets/audit.key`) → the key of team secrets
//! (`secrets/secrets-key`) → the Warren CA (`secrets/warren-ca.{key,crt}`)
//! → bootstrap team and key → runtime, as `--runtime` chooses → host
//! network (`host_network`: the address pool, IPv4 forwarding and the
//! daemon's firewall table, installed afresh, which also recovers from a
//! crashed daemon's; it redirects sandboxes' DNS and TCP to the resolver
//! and egress proxy ports) → resolver and egress proxy → templates → snapshot
//! store → services and routers (`assemble.rs`, shared with the
//! in-process server of tests) → reconcile with the runtime (re-applies every live sandbox's
//! network policy) → sweep the snapshot store → background workers (and
//! the network event writer) → listeners (the API, with the port proxy in
//! front, and the sandbox listener that takes sandbox tokens).
//! On shutdown the listeners drain, workers stop, the audit signer signs
//! the log a last time, and live sandboxes keep running: the next start
//! re-attaches them. The firewall table goes with the daemon (also when a
//! later stage of the start fails) unless a sandbox lives on: a running
//! sandbox is never left without its rules.

use std::future::Future;
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::service::webhooks::Destinations;

use tokio::net::TcpListener;
use warren_egress::intercept::{InterceptConfig, TlsInterceptor, WarrenCa};
use warren_runtime::Runtime;
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warren_snapshot::{LocalDirStore, SnapshotStore};
use warren_template::TemplateStore;

use crate::assemble::{Opened, Parts, assemble, open, startup};
use crate::auth::grant::GRANT_TTL_RANGE_S;
use crate::auth::token::TOKEN_TTL_RANGE_S;
use crate::clock::Clock;
use crate::ports::parse_domain;
use crate::service::secrets::InjectionSource;
use crate::service::{Network, Tenancy};
use crate::{Config, RuntimeKind, ServeError, listener};
use warren_egress::dns::Resolver;
use warren_egress::proxy::EgressProxy;
use warren_egress::registry::Registry;
use warren_egress::{EventSink, PacketLog};
use warren_net::{AddressPool, EgressPorts, Firewall};

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let clock = Clock::system();
    let data = &absolute(&config.data_dir)?;
    let secrets_dir = prepare_data_dir(data)?;
    // Held until the daemon returns: one daemon per data directory.
    let _data_lock = crate::data_lock::lock(data, crate::data_lock::ENDING_GRACE)
        .map_err(|e| ServeError::Startup(e.to_string()))?;
    check_lifetimes(&config)?;
    let ports_domain = parse_domain(&config.ports_domain)
        .map_err(|e| ServeError::Startup(format!("--ports-domain: {}", e.message)))?;
    let (sandbox_api_port, egress_ports) = host_ports(&config)?;
    config
        .network_default
        .validate()
        .map_err(|e| ServeError::Startup(format!("default network policy: {}", e.message)))?;
    let dns_upstream = match config.dns_upstream {
        Some(addr) => addr,
        None => host_nameserver()?,
    };

    let Opened {
        secrets,
        store,
        audit,
        audit_tasks,
        tenancy,
        team_secrets,
        ca: warren_ca,
        webhook_cipher,
    } = open(data, &secrets_dir, config.sandbox_token_ttl_s, &clock).await?;
    let interceptor = interceptor(&config, &warren_ca)?;
    bootstrap_admin_key(&config, &tenancy).await?;

    let agent_binary = resolve_agent_binary(config.agent_binary.clone())?;
    let runtime: Arc<dyn Runtime> = match config.runtime {
        RuntimeKind::Gvisor => Arc::new(
            GvisorRuntime::new(GvisorConfig::new(data.join("runtime")))
                .map_err(|e| startup("the gVisor runtime is not usable", e))?,
        ),
    };
    let (pool, firewall) = host_network(&config, data, sandbox_api_port, egress_ports)?;
    // Whatever ends the daemon from here, a failed start too, takes the
    // table with it unless a sandbox lives on.
    let _table = TableGuard {
        runtime: runtime.clone(),
        firewall: firewall.clone(),
    };

    let injection = Arc::new(InjectionSource(team_secrets.clone()));
    let egress = start_egress(
        &firewall,
        egress_ports,
        dns_upstream,
        interceptor,
        injection,
    )
    .await?;
    let network = Arc::new(Network::new(
        pool,
        Some(firewall.clone()),
        egress.registry.clone(),
        config.network_default.clone(),
    ));
    let templates_dir = match &config.templates_dir {
        Some(dir) => absolute(dir)?,
        None => data.join("templates"),
    };
    let templates = Arc::new(
        TemplateStore::new(&templates_dir).map_err(|e| startup("templates directory", e))?,
    );
    let snapshots: Arc<dyn SnapshotStore> = Arc::new(
        LocalDirStore::open(data.join("snapshots"), true)
            .map_err(|e| startup("snapshot store", e))?,
    );

    let assembled = assemble(Parts {
        data_dir: data.clone(),
        secrets,
        store,
        audit,
        tenancy,
        team_secrets,
        runtime: runtime.clone(),
        network,
        templates,
        snapshots,
        agent_binary,
        default_limits: warren_core::Limits {
            disk_mb: config.default_disk_mb,
            ..warren_core::Limits::default()
        },
        ca_certificate: warren_ca.certificate_pem().to_owned(),
        sandbox_api_port,
        standby_s: config.standby_s,
        disk_reserve_mb: config.disk_reserve_mb,
        memory_reserve_mb: config.memory_reserve_mb,
        max_creating: config.max_creating,
        create_queue: config.create_queue,
        grant_ttl_s: config.grant_ttl_s,
        e2b_domain: config
            .e2b_domain
            .clone()
            .unwrap_or_else(|| format!("{ports_domain}:{}", config.listen.port())),
        ports_domain,
        clock,
        webhook_cipher,
        webhook_destinations: Destinations::new(
            config.webhook_allow.clone(),
            config.sandbox_cidr.parse().ok(),
        ),
        webhook_first_retry: Duration::from_secs(config.webhook_first_retry_s),
        build_allow: config.build_allow.clone(),
        meter_interval: config.meter_interval,
        metering: config.metering,
        prices: config.prices.clone(),
        metrics_per_sandbox: config.metrics_per_sandbox,
    });
    let sandboxes = assembled.sandboxes;
    let hooks = assembled.hooks;
    sandboxes
        .pin_template_versions()
        .await
        .map_err(|e| startup("recording template versions of older sandboxes", e))?;
    sandboxes
        .reconcile()
        .await
        .map_err(|e| startup("reconciling sandboxes with the runtime", e))?;
    sandboxes
        .sweep_snapshot_store()
        .await
        .map_err(|e| startup("cleaning up the snapshot store", e))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = vec![
        tokio::spawn(sandboxes.clone().run_reaper(stop_rx.clone())),
        tokio::spawn(sandboxes.clone().run_token_rotation(stop_rx.clone())),
        tokio::spawn(sandboxes.clone().run_liveness(stop_rx.clone())),
        tokio::spawn(sandboxes.clone().run_inbox(stop_rx.clone())),
        tokio::spawn(sandboxes.clone().run_timers(stop_rx.clone())),
        tokio::spawn(sandboxes.clone().run_pools(stop_rx.clone())),
        tokio::spawn(hooks.clone().run_pruner(stop_rx.clone())),
        tokio::spawn(assembled.webhooks.clone().run(stop_rx.clone())),
    ];
    if config.metering {
        workers.push(tokio::spawn(
            sandboxes.clone().run_metering(stop_rx.clone()),
        ));
    }
    if config.template_snapshots {
        workers.push(tokio::spawn(
            sandboxes.clone().run_template_snapshots(stop_rx.clone()),
        ));
    }
    let net_events = tokio::spawn(
        sandboxes
            .clone()
            .run_network_events(egress.events, egress.registry),
    );

    serve(
        &config,
        sandbox_api_port,
        assembled.api,
        assembled.sandbox_api,
        shutdown,
    )
    .await?;

    tracing::info!("shutting down; live sandboxes keep running");
    let _ = stop_tx.send(true);
    for worker in workers {
        let _ = worker.await;
    }
    for task in &egress.tasks {
        task.abort();
    }
    net_events.abort();
    audit_tasks.stop().await;
    drop(hooks);
    drop(sandboxes);
    if tokio::time::timeout(Duration::from_secs(20), assembled.teardown_worker)
        .await
        .is_err()
    {
        tracing::warn!("teardown did not finish; it resumes at the next start");
    }
    Ok(())
}

/// The daemon's address pool and its firewall table, installed: IPv4
/// forwarding on, the table created or replaced (a crashed daemon's table,
/// with chains of sandboxes gone, is replaced; the live sandboxes' chains
/// are applied again by the reconciliation that follows). The table is
/// named after the runtime's state directory, as before the daemon owned
/// it, so a newer daemon replaces an older one's.
fn host_network(
    config: &Config,
    data: &Path,
    sandbox_api_port: u16,
    egress_ports: EgressPorts,
) -> Result<(AddressPool, Firewall), ServeError> {
    let pool: AddressPool = config
        .sandbox_cidr
        .parse()
        .map_err(|e| startup("--sandbox-cidr", e))?;
    warren_net::enable_ipv4_forwarding().map_err(|e| startup("IPv4 forwarding", e))?;
    // The canonical path, as the runtime made it, names the table.
    let state_dir = data
        .join("runtime")
        .canonicalize()
        .map_err(|e| startup("the runtime's state directory", e))?;
    let firewall = Firewall::new(&state_dir, pool)
        .with_sandbox_api_port(sandbox_api_port)
        .with_egress_ports(egress_ports);
    firewall
        .install_blocking()
        .map_err(|e| startup("installing the firewall table", e))?;
    tracing::debug!(table = firewall.table(), %pool, "firewall table installed");
    Ok((pool, firewall))
}

/// Removes the firewall table when dropped (the daemon's end, or a start
/// that fails after installing it), unless a sandbox lives on.
struct TableGuard {
    runtime: Arc<dyn Runtime>,
    firewall: Firewall,
}

impl Drop for TableGuard {
    fn drop(&mut self) {
        // Asking the runtime is async, and this may run on a runtime
        // thread: ask from a thread of its own.
        std::thread::scope(|s| {
            s.spawn(|| {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(remove_firewall(self.runtime.as_ref(), &self.firewall)),
                    Err(e) => tracing::warn!(error = %e, "the firewall table stays"),
                }
            });
        });
    }
}

/// Removes the firewall table, unless a sandbox lives on (it keeps its
/// rules until the next start replaces the table).
async fn remove_firewall(runtime: &dyn Runtime, firewall: &Firewall) {
    match runtime.list_live().await {
        Ok(live) if live.is_empty() => {
            if let Err(e) = firewall.remove().await {
                tracing::warn!(error = %e, "could not remove the firewall table");
            }
        }
        Ok(live) => {
            tracing::debug!(live = live.len(), "live sandboxes keep the firewall table");
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot list live sandboxes; the firewall table stays");
        }
    }
}

/// Creates the data directory and its `secrets/` (mode 0700); returns the
/// latter.
fn prepare_data_dir(data: &Path) -> Result<PathBuf, ServeError> {
    let secrets = data.join("secrets");
    for dir in [data, &secrets] {
        std::fs::create_dir_all(dir)
            .map_err(|e| startup(&format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| startup(&format!("cannot restrict {}", dir.display()), e))?;
    }
    Ok(secrets)
}

/// The configured token and grant lifetimes are within their ranges.
fn check_lifetimes(config: &Config) -> Result<(), ServeError> {
    for (what, value, range) in [
        (
            "sandbox token",
            config.sandbox_token_ttl_s,
            TOKEN_TTL_RANGE_S,
        ),
        ("access grant", config.grant_ttl_s, GRANT_TTL_RANGE_S),
    ] {
        if !range.contains(&value) {
            return Err(ServeError::Startup(format!(
                "{what} lifetime must be {}-{} seconds, got {value}",
                range.start(),
                range.end(),
            )));
        }
    }
    Ok(())
}

/// The sandbox listener's port and the egress services' ports: as
/// configured, else the API port + 1, + 2 and + 3.
fn host_ports(config: &Config) -> Result<(u16, EgressPorts), ServeError> {
    let port_after = |n: u16, what: &str| {
        config.listen.port().checked_add(n).ok_or_else(|| {
            ServeError::Startup(format!("the API port is too high: set the {what} port"))
        })
    };
    let sandbox_api = match config.sandbox_api_port {
        Some(port) => port,
        None => port_after(1, "sandbox API")?,
    };
    let egress = EgressPorts {
        dns: match config.dns_port {
            Some(port) => port,
            None => port_after(2, "DNS")?,
        },
        proxy: match config.egress_proxy_port {
            Some(port) => port,
            None => port_after(3, "egress proxy")?,
        },
    };
    Ok((sandbox_api, egress))
}

/// The interceptor the egress proxy hands connections to for hosts a
/// policy injects secrets into; built before anything starts so that a bad
/// `--upstream-ca` stops the start. Without a system CA bundle (and no
/// `--upstream-ca`) the daemon runs, but no upstream server can be
/// verified for injection.
fn interceptor(config: &Config, ca: &Arc<WarrenCa>) -> Result<Option<TlsInterceptor>, ServeError> {
    let made = TlsInterceptor::new(
        ca.clone(),
        InterceptConfig {
            upstream_ca: config.upstream_ca.clone(),
            ..InterceptConfig::default()
        },
    );
    match made {
        Ok(i) => Ok(Some(i)),
        Err(e) if config.upstream_ca.is_none() => {
            tracing::warn!(error = %warren_core::error::chain(&e), "secret injection is unavailable");
            Ok(None)
        }
        Err(e) => Err(startup("TLS interception (--upstream-ca)", e)),
    }
}

/// The running egress services and what the daemon keeps of them.
struct Egress {
    registry: Registry,
    events: tokio::sync::mpsc::Receiver<warren_egress::egress::NetEvent>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the sandboxes' resolver, the egress proxy and the packet log.
async fn start_egress(
    firewall: &warren_net::Firewall,
    ports: EgressPorts,
    dns_upstream: SocketAddr,
    interceptor: Option<TlsInterceptor>,
    injection: Arc<InjectionSource>,
) -> Result<Egress, ServeError> {
    let registry = Registry::default();
    let (events, events_rx) = EventSink::channel(NETWORK_EVENT_QUEUE);
    let any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (_, mut tasks) = Resolver::new(
        dns_upstream,
        registry.clone(),
        Some(firewall.clone()),
        events.clone(),
    )
    .serve(any(ports.dns))
    .await
    .map_err(|e| startup("the sandboxes' DNS resolver", e))?;
    let mut proxy = EgressProxy::new(registry.clone(), events.clone(), firewall.pool());
    if let Some(interceptor) = interceptor {
        proxy = proxy.with_interception(Arc::new(interceptor), injection);
    }
    let (_, proxy_task) = proxy
        .serve(any(ports.proxy))
        .await
        .map_err(|e| startup("the egress proxy", e))?;
    tasks.push(proxy_task);
    // Packet events (UDP, ICMP) are for the record only; enforcement is the
    // firewall's, so the daemon serves without them when the group is taken.
    match PacketLog::new(firewall.log_group(), events).serve().await {
        Ok(task) => tasks.push(task),
        Err(e) => {
            tracing::warn!(error = %warren_core::error::chain(&e), "UDP and ICMP flows leave no network events");
        }
    }
    tracing::info!(dns = ports.dns, proxy = ports.proxy, upstream = %dns_upstream, packet_log = firewall.log_group(), "egress enforcement ready");
    Ok(Egress {
        registry,
        events: events_rx,
        tasks,
    })
}

/// Serves the API on `--listen` and the sandbox API on its port until
/// `shutdown`; the sandbox listener stops when the API does.
async fn serve(
    config: &Config,
    sandbox_api_port: u16,
    api: axum::Router,
    sandbox_api: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let sandbox_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, sandbox_api_port));
    let listener = bind(config.listen).await?;
    let sandbox_listener = bind(sandbox_addr).await?;
    let (api_limits, sandbox_limits) = listener_limits(config)?;
    tracing::info!(address = %config.listen, sandbox_api = %sandbox_addr, data_dir = %config.data_dir.display(), "warren is serving");
    let (api_done_tx, mut api_done_rx) = tokio::sync::watch::channel(false);
    let sandbox_server = tokio::spawn(listener::serve(
        sandbox_listener,
        sandbox_api,
        sandbox_limits,
        async move {
            let _ = api_done_rx.changed().await;
        },
    ));
    listener::serve(listener, api, api_limits, shutdown).await;
    let _ = api_done_tx.send(true);
    let _ = sandbox_server.await;
    Ok(())
}

/// Network events waiting for the store before new ones are dropped.
const NETWORK_EVENT_QUEUE: usize = 8192;

/// The first `nameserver` of /etc/resolv.conf, port 53.
fn host_nameserver() -> Result<SocketAddr, ServeError> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .find_map(|rest| rest.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .ok_or_else(|| {
            ServeError::Startup(
                "no nameserver in /etc/resolv.conf: set the sandboxes' DNS upstream (--dns-upstream)"
                    .into(),
            )
        })
}

/// How long a client may take to send a request's head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Most connections one sandbox may hold to the sandbox listener.
const SANDBOX_CONNECTIONS: usize = 32;
/// Descriptors the daemon wants at least: its listeners' caps, plus the
/// sandboxes' own (agent connections, runsc pipes, netlink, files).
const MIN_OPEN_FILES: u64 = 4096;

/// The listeners' limits, after raising the open-files limit as far as the
/// hard limit allows; each listener may use a quarter of it.
fn listener_limits(config: &Config) -> Result<(listener::Limits, listener::Limits), ServeError> {
    let files = listener::raise_open_files_limit()
        .map_err(|e| startup("reading the open-files limit", e))?;
    if files < MIN_OPEN_FILES {
        tracing::warn!(
            limit = files,
            wanted = MIN_OPEN_FILES,
            "the open-files limit is low: raise it (ulimit -n, or LimitNOFILE= in the service unit)"
        );
    }
    let total = usize::try_from(files / 4).unwrap_or(usize::MAX).max(64);
    let api = listener::Limits {
        header_read: HEADER_READ_TIMEOUT,
        per_source: config.max_connections_per_source.min(total),
        total,
    };
    let sandbox = listener::Limits {
        per_source: SANDBOX_CONNECTIONS,
        ..api
    };
    Ok((api, sandbox))
}

/// A TCP listener on `addr`.
async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| startup(&format!("cannot listen on {addr}"), e))
}

/// On first start (no team at all) creates the operator team with its admin
/// key (recorded in the audit log by `system:bootstrap`), prints the key
/// once and writes `<data_dir>/client.json` for the CLI.
async fn bootstrap_admin_key(config: &Config, tenancy: &Tenancy) -> Result<(), ServeError> {
    let Some(key) = tenancy
        .bootstrap()
        .await
        .map_err(|e| ServeError::Startup(format!("cannot create the admin key: {e}")))?
    else {
        return Ok(());
    };
    let host = if config.listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        config.listen.ip().to_string()
    };
    let url = format!("http://{host}:{}", config.listen.port());
    let client = serde_json::json!({ "url": url, "api_key": key });
    let path = config.data_dir.join("client.json");
    warren_keyfile::write(&path, client.to_string().as_bytes())
        .map_err(|e| startup("cannot write the CLI's client file", e))?;
    // The key is shown once, on a terminal only: a daemon's output usually
    // goes to a log file, which must never hold a credential.
    if std::io::stdout().is_terminal() {
        println!("Admin API key (shown once): {key}");
    }
    println!(
        "Admin API key written to {} (mode 0600; the CLI reads it)",
        path.display()
    );
    // No credential here: the command respells the key from the file.
    println!(
        "For E2B's SDKs: eval \"$(WARREN_CONFIG={} warren env --e2b)\"",
        path.display()
    );
    Ok(())
}

/// The agent binary: as configured, else `warren-agent` next to this executable.
fn resolve_agent_binary(configured: Option<PathBuf>) -> Result<PathBuf, ServeError> {
    let path = match configured {
        Some(p) => p,
        None => std::env::current_exe()
            .map_err(|e| startup("cannot locate the running executable", e))?
            .with_file_name("warren-agent"),
    };
    check_file(&path)?;
    // The path becomes a bind-mount source in every bundle: make it absolute.
    std::fs::canonicalize(&path)
        .map_err(|e| startup(&format!("agent binary {}", path.display()), e))
}

/// `path` made absolute against the working directory (it need not exist).
fn absolute(path: &Path) -> Result<PathBuf, ServeError> {
    std::path::absolute(path).map_err(|e| startup(&format!("path {}", path.display()), e))
}

fn check_file(path: &Path) -> Result<(), ServeError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        _ => Err(ServeError::Startup(format!(
            "agent binary not found at {}: build it with scripts/build.sh or pass --agent-binary",
            path.display()
        ))),
    }
}
