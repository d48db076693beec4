//! Start-up and shutdown of `warren serve`.
//!
//! Order: data directory → secrets → store → audit log (writer, signer;
//! key `secrets/audit.key`) → the key of team secrets
//! (`secrets/secrets-key`) → the Warren CA (`secrets/warren-ca.{key,crt}`)
//! → bootstrap team and key → runtime (its
//! firewall table redirects sandboxes' DNS and TCP to the resolver and
//! egress proxy ports) → resolver and egress proxy → templates → snapshot
//! store → reconcile with the runtime (re-applies every live sandbox's
//! network policy) → sweep the snapshot store → background workers (and
//! the network event writer) → listeners (the API, with the port proxy in
//! front, and the sandbox listener that takes sandbox tokens).
//! On shutdown the listeners drain, workers stop, the audit signer signs
//! the log a last time, and live sandboxes keep running: the next start
//! re-attaches them.

use std::future::Future;
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::middleware;
use tokio::net::TcpListener;
use warren_net::intercept::{InterceptConfig, TlsInterceptor, WarrenCa};
use warren_runtime::Runtime;
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warren_snapshot::{LocalDirStore, SnapshotStore};
use warren_store::{SqliteStore, Store};
use warren_template::TemplateStore;

use crate::api::{AppState, router};
use crate::audit::Audit;
use crate::auth::token::TOKEN_TTL_RANGE_S;
use crate::auth::{Authenticator, Credentials, Pepper, TokenIssuer, write_private};
use crate::ports::{PortProxy, parse_domain, route as route_ports};
use crate::service::secrets::{InjectionSource, SecretsCipher};
use crate::service::storage::DiskReserve;
use crate::service::{
    Agents, Network, SandboxIdentity, Sandboxes, Secrets, Standby, Teardown, Tenancy,
};
use crate::templates::TemplateBuilds;
use crate::{Config, ServeError, listener};
use warren_net::dns::Resolver;
use warren_net::proxy::EgressProxy;
use warren_net::registry::Registry;
use warren_net::{EgressPorts, EventSink, PacketLog};

/// A start-up failure naming what failed, with the error's whole chain.
fn startup(what: &str, e: impl std::error::Error) -> ServeError {
    ServeError::Startup(format!("{what}: {}", warren_core::error::chain(&e)))
}

pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let data = &absolute(&config.data_dir)?;
    let secrets = data.join("secrets");
    for dir in [data, &secrets] {
        std::fs::create_dir_all(dir)
            .map_err(|e| startup(&format!("cannot create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| startup(&format!("cannot restrict {}", dir.display()), e))?;
    }
    let pepper = Pepper::load_or_create(&secrets.join("key-pepper"))
        .map_err(|e| startup("key pepper", e))?;
    let agent_secret = Pepper::load_or_create(&secrets.join("agent-secret"))
        .map_err(|e| startup("agent secret", e))?;
    let token_secret = Pepper::load_or_create(&secrets.join("sandbox-token-secret"))
        .map_err(|e| startup("sandbox token secret", e))?;
    if !TOKEN_TTL_RANGE_S.contains(&config.sandbox_token_ttl_s) {
        return Err(ServeError::Startup(format!(
            "sandbox token lifetime must be {}-{} seconds, got {}",
            TOKEN_TTL_RANGE_S.start(),
            TOKEN_TTL_RANGE_S.end(),
            config.sandbox_token_ttl_s
        )));
    }
    let tokens = TokenIssuer::new(token_secret, config.sandbox_token_ttl_s);
    let ports_domain = parse_domain(&config.ports_domain)
        .map_err(|e| ServeError::Startup(format!("--ports-domain: {}", e.message)))?;
    let port_after = |n: u16, what: &str| {
        config.listen.port().checked_add(n).ok_or_else(|| {
            ServeError::Startup(format!("the API port is too high: set the {what} port"))
        })
    };
    let sandbox_api_port = match config.sandbox_api_port {
        Some(port) => port,
        None => port_after(1, "sandbox API")?,
    };
    let egress_ports = EgressPorts {
        dns: match config.dns_port {
            Some(port) => port,
            None => port_after(2, "DNS")?,
        },
        proxy: match config.egress_proxy_port {
            Some(port) => port,
            None => port_after(3, "egress proxy")?,
        },
    };
    config
        .network_default
        .validate()
        .map_err(|e| ServeError::Startup(format!("default network policy: {}", e.message)))?;
    let dns_upstream = match config.dns_upstream {
        Some(addr) => addr,
        None => host_nameserver()?,
    };

    let sqlite = SqliteStore::open(&data.join("warren.db"))
        .await
        .map_err(|e| startup("cannot open the store", e))?;
    let audit_key = warren_audit::keyfile::load_or_create(&secrets.join("audit.key"))
        .map_err(|e| startup("audit signing key", e))?;
    let (audit, audit_tasks) = Audit::start(sqlite.audit(), audit_key)
        .await
        .map_err(|e| startup("audit log", e))?;
    let store: Arc<dyn Store> = Arc::new(sqlite);
    let tenancy = Arc::new(Tenancy::new(store.clone(), pepper.clone(), audit.clone()));
    let secrets_cipher = SecretsCipher::load_or_create(&secrets.join("secrets-key"))
        .map_err(|e| startup("secrets key", e))?;
    let team_secrets = Arc::new(Secrets::new(store.clone(), secrets_cipher, audit.clone()));
    let warren_ca =
        Arc::new(WarrenCa::load_or_create(&secrets).map_err(|e| startup("Warren CA", e))?);
    // The interceptor the egress proxy hands connections to for hosts a
    // policy injects secrets into; built here so a bad --upstream-ca stops
    // the start. Without a system CA bundle (and no --upstream-ca) the
    // daemon runs, but no upstream server can be verified for injection.
    let interceptor = match TlsInterceptor::new(
        warren_ca.clone(),
        InterceptConfig {
            upstream_ca: config.upstream_ca.clone(),
            ..InterceptConfig::default()
        },
    ) {
        Ok(i) => Some(i),
        Err(e) if config.upstream_ca.is_none() => {
            tracing::warn!(error = %warren_core::error::chain(&e), "secret injection is unavailable");
            None
        }
        Err(e) => return Err(startup("TLS interception (--upstream-ca)", e)),
    };
    bootstrap_admin_key(&config, &tenancy).await?;

    let agent_binary = resolve_agent_binary(config.agent_binary.clone())?;
    let mut runtime_config = GvisorConfig::new(data.join("runtime"), &config.sandbox_cidr);
    runtime_config.sandbox_api_port = Some(sandbox_api_port);
    runtime_config.egress_ports = Some(egress_ports);
    let gvisor = GvisorRuntime::new(runtime_config)
        .map_err(|e| startup("the gVisor runtime is not usable", e))?;
    let firewall = gvisor.firewall().clone();
    let runtime: Arc<dyn Runtime> = Arc::new(gvisor);

    let registry = Registry::default();
    let (events, events_rx) = EventSink::channel(NETWORK_EVENT_QUEUE);
    let any = |port| SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let (_, resolver_tasks) = Resolver::new(
        dns_upstream,
        registry.clone(),
        Some(firewall.clone()),
        events.clone(),
    )
    .serve(any(egress_ports.dns))
    .await
    .map_err(|e| startup("the sandboxes' DNS resolver", e))?;
    let mut proxy = EgressProxy::new(registry.clone(), events.clone(), firewall.pool());
    if let Some(interceptor) = interceptor {
        let source = Arc::new(InjectionSource(team_secrets.clone()));
        proxy = proxy.with_interception(Arc::new(interceptor), source);
    }
    let (_, proxy_task) = proxy
        .serve(any(egress_ports.proxy))
        .await
        .map_err(|e| startup("the egress proxy", e))?;
    // Packet events (UDP, ICMP) are for the record only; enforcement is the
    // firewall's, so the daemon serves without them when the group is taken.
    let packet_log = match PacketLog::new(firewall.log_group(), events).serve().await {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!(error = %warren_core::error::chain(&e), "UDP and ICMP flows leave no network events");
            None
        }
    };
    tracing::info!(dns = egress_ports.dns, proxy = egress_ports.proxy, upstream = %dns_upstream, packet_log = firewall.log_group(), "egress enforcement ready");
    let network = Arc::new(Network::new(
        Some(firewall),
        registry.clone(),
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

    let (teardown, teardown_worker) =
        Teardown::start(runtime.clone(), store.clone(), network.clone());
    let agents = Agents::new(agent_secret);
    let sandboxes = Arc::new(Sandboxes {
        store: store.clone(),
        runtime,
        templates: templates.clone(),
        agents: agents.clone(),
        agent_binary,
        teardown,
        identity: SandboxIdentity::new(tokens.clone(), sandbox_api_port),
        audit: audit.clone(),
        snapshots,
        locks: Default::default(),
        standby: Standby::new(std::time::Duration::from_secs(config.standby_s)),
        network,
        disk: DiskReserve::new(data.clone(), config.disk_reserve_mb),
        default_limits: warren_core::Limits {
            disk_mb: config.default_disk_mb,
            ..warren_core::Limits::default()
        },
        ca_certificate: warren_ca.certificate_pem().to_owned(),
    });
    sandboxes
        .reconcile()
        .await
        .map_err(|e| startup("reconciling sandboxes with the runtime", e))?;
    sandboxes
        .sweep_snapshot_store()
        .await
        .map_err(|e| startup("cleaning up the snapshot store", e))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(sandboxes.clone().run_reaper(stop_rx.clone()));
    let rotation = tokio::spawn(sandboxes.clone().run_token_rotation(stop_rx.clone()));
    let liveness = tokio::spawn(sandboxes.clone().run_liveness(stop_rx.clone()));
    let net_events = tokio::spawn(sandboxes.clone().run_network_events(events_rx, registry));

    let state = AppState {
        sandboxes: sandboxes.clone(),
        templates: Arc::new(TemplateBuilds::new(templates)),
        tenancy,
        secrets: team_secrets,
        audit,
        e2b_domain: config
            .e2b_domain
            .clone()
            .unwrap_or_else(|| format!("{ports_domain}:{}", config.listen.port()))
            .into(),
        ports_domain: ports_domain.as_str().into(),
    };
    let auth = Authenticator {
        store,
        pepper,
        tokens,
        agents,
        accepts: Credentials::ApiKeys,
    };
    let sandbox_auth = Authenticator {
        accepts: Credentials::SandboxTokens,
        ..auth.clone()
    };
    let ports = PortProxy::new(sandboxes.clone(), auth.clone(), &ports_domain);
    let api = router(state.clone(), auth).layer(middleware::from_fn_with_state(ports, route_ports));
    let sandbox_api = router(state, sandbox_auth);
    let sandbox_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, sandbox_api_port));
    let listener = bind(config.listen).await?;
    let sandbox_listener = bind(sandbox_addr).await?;
    let (api_limits, sandbox_limits) = listener_limits(&config)?;
    tracing::info!(address = %config.listen, sandbox_api = %sandbox_addr, data_dir = %data.display(), "warren is serving");

    // The sandbox listener stops when the API does.
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

    tracing::info!("shutting down; live sandboxes keep running");
    let _ = stop_tx.send(true);
    let _ = reaper.await;
    let _ = rotation.await;
    let _ = liveness.await;
    for task in resolver_tasks
        .iter()
        .chain([&proxy_task])
        .chain(&packet_log)
    {
        task.abort();
    }
    net_events.abort();
    audit_tasks.stop().await;
    drop(sandboxes);
    if tokio::time::timeout(Duration::from_secs(20), teardown_worker)
        .await
        .is_err()
    {
        tracing::warn!("teardown did not finish; it resumes at the next start");
    }
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
    write_private(&path, client.to_string().as_bytes())
        .map_err(|e| startup(&format!("cannot write {}", path.display()), e))?;
    // The key is shown once, on a terminal only: a daemon's output usually
    // goes to a log file, which must never hold a credential.
    if std::io::stdout().is_terminal() {
        println!("Admin API key (shown once): {key}");
    }
    println!(
        "Admin API key written to {} (mode 0600; the CLI reads it)",
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
