//! Start-up and shutdown of `warren serve`.
//!
//! Order: data directory → secrets → store → bootstrap key → runtime →
//! templates → snapshot store → reconcile with the runtime → sweep the
//! snapshot store → background workers → listener.
//! On shutdown the listener drains, workers stop, and live sandboxes keep
//! running: the next start re-attaches them.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use time::OffsetDateTime;
use warren_runtime::Runtime;
use warren_runtime::gvisor::{GvisorConfig, GvisorRuntime};
use warren_snapshot::{LocalDirStore, SnapshotStore};
use warren_store::{KeyRecord, SqliteStore, Store};
use warren_template::TemplateStore;

use crate::api::{AppState, router};
use crate::auth::{ApiKey, Authenticator, Pepper, write_private};
use crate::service::{Agents, Sandboxes, Teardown};
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

    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&data.join("warren.db"))
            .await
            .map_err(|e| startup("cannot open the store", e))?,
    );
    bootstrap_admin_key(&config, store.as_ref(), &pepper).await?;

    let agent_binary = resolve_agent_binary(config.agent_binary.clone())?;
    let runtime: Arc<dyn Runtime> = Arc::new(
        GvisorRuntime::new(GvisorConfig::new(
            data.join("runtime"),
            &config.sandbox_cidr,
        ))
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
    let sandboxes = Arc::new(Sandboxes::new(
        store.clone(),
        runtime,
        templates.clone(),
        Agents::new(agent_secret),
        agent_binary,
        teardown,
        snapshots,
    ));
    sandboxes
        .reconcile()
        .await
        .map_err(|e| startup("reconciling sandboxes with the runtime", e))?;
    sandboxes
        .sweep_snapshot_store()
        .await
        .map_err(|e| startup("cleaning up the snapshot store", e))?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(sandboxes.clone().run_reaper(stop_rx));

    let state = AppState {
        sandboxes: sandboxes.clone(),
        templates: Arc::new(TemplateBuilds::new(templates)),
    };
    let app = router(state, Authenticator { store, pepper });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| startup(&format!("cannot listen on {}", config.listen), e))?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    tracing::info!(address = %config.listen, data_dir = %data.display(), "warren is serving");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| startup("server", e))?;

    tracing::info!("shutting down; live sandboxes keep running");
    let _ = stop_tx.send(true);
    let _ = reaper.await;
    drop(sandboxes);
    if tokio::time::timeout(Duration::from_secs(20), teardown_worker)
        .await
        .is_err()
    {
        tracing::warn!("teardown did not finish; it resumes at the next start");
    }
    Ok(())
}

/// On first start (no keys at all) mints the admin key, prints it once and
/// writes `<data_dir>/client.json` for the CLI.
async fn bootstrap_admin_key(
    config: &Config,
    store: &dyn Store,
    pepper: &Pepper,
) -> Result<(), ServeError> {
    let keys = store
        .list_keys()
        .await
        .map_err(|e| startup("cannot read keys", e))?;
    if !keys.is_empty() {
        return Ok(());
    }
    let key = ApiKey::generate(pepper);
    store
        .insert_key(KeyRecord {
            id: key.id.clone(),
            name: "admin".into(),
            hash: key.hash.clone(),
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
        })
        .await
        .map_err(|e| startup("cannot store the admin key", e))?;
    let host = if config.listen.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        config.listen.ip().to_string()
    };
    let url = format!("http://{host}:{}", config.listen.port());
    let client = serde_json::json!({ "url": url, "api_key": key.text });
    let path = config.data_dir.join("client.json");
    write_private(&path, client.to_string().as_bytes())
        .map_err(|e| startup(&format!("cannot write {}", path.display()), e))?;
    println!("Admin API key (shown once): {}", key.text);
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
