//! Start-up and shutdown of `warren serve`.
//!
//! Order: data directory → secrets → store → audit log (writer, signer;
//! key `secrets/audit.key`) → the key of team secrets
//! (`secrets/secrets-key`) → the Warren CA (`secrets/warren-ca.{key,crt}`)
//! → bootstrap team and key → runtime → templates
//! → snapshot store → reconcile with the runtime → sweep the snapshot store
//! → background workers → listeners (the API, and the sandbox listener that
//! takes sandbox tokens).
//! On shutdown the listeners drain, workers stop, the audit signer signs
//! the log a last time, and live sandboxes keep running: the next start
//! re-attaches them.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};
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
use crate::service::secrets::SecretsCipher;
use crate::service::{Agents, SandboxIdentity, Sandboxes, Secrets, Teardown, Tenancy};
use crate::templates::TemplateBuilds;
use crate::{Config, ServeError};

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
    let sandbox_api_port = match config.sandbox_api_port {
        Some(port) => port,
        None => config.listen.port().checked_add(1).ok_or_else(|| {
            ServeError::Startup("the API port is 65535: set the sandbox API port".into())
        })?,
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
    let _interceptor = match TlsInterceptor::new(
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
    let runtime: Arc<dyn Runtime> = Arc::new(
        GvisorRuntime::new(runtime_config)
            .map_err(|e| startup("the gVisor runtime is not usable", e))?,
    );
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

    let (teardown, teardown_worker) = Teardown::start(runtime.clone(), store.clone());
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

    let state = AppState {
        sandboxes: sandboxes.clone(),
        templates: Arc::new(TemplateBuilds::new(templates)),
        tenancy,
        secrets: team_secrets,
        audit,
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
    let api = router(state.clone(), auth);
    let sandbox_api = router(state, sandbox_auth);
    let sandbox_addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, sandbox_api_port));
    let listener = bind(config.listen).await?;
    let sandbox_listener = bind(sandbox_addr).await?;
    tracing::info!(address = %config.listen, sandbox_api = %sandbox_addr, data_dir = %data.display(), "warren is serving");

    // The sandbox listener stops when the API does.
    let (api_done_tx, mut api_done_rx) = tokio::sync::watch::channel(false);
    let sandbox_server = tokio::spawn(
        axum::serve(
            sandbox_listener,
            sandbox_api.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = api_done_rx.changed().await;
        })
        .into_future(),
    );
    let served = axum::serve(
        listener,
        api.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = api_done_tx.send(true);
    let _ = sandbox_server.await;
    served.map_err(|e| startup("server", e))?;

    tracing::info!("shutting down; live sandboxes keep running");
    let _ = stop_tx.send(true);
    let _ = reaper.await;
    let _ = rotation.await;
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

type Listener = axum::serve::TapIo<TcpListener, fn(&mut TcpStream)>;

/// A TCP listener with TCP_NODELAY on every connection.
async fn bind(addr: SocketAddr) -> Result<Listener, ServeError> {
    fn no_delay(tcp: &mut TcpStream) {
        let _ = tcp.set_nodelay(true);
    }
    Ok(TcpListener::bind(addr)
        .await
        .map_err(|e| startup(&format!("cannot listen on {addr}"), e))?
        .tap_io(no_delay as fn(&mut TcpStream)))
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
    println!("Admin API key (shown once): {key}");
    println!("Client config written to {}", path.display());
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
