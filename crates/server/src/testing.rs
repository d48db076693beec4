//! An in-process Warren for tests (feature `testing`).
//!
//! The daemon's own services and routers ([`crate::assemble`]) over a
//! SQLite store in a directory of the test's, a runtime of the test's
//! choosing (`warren_runtime::fake::FakeRuntime`, say) and no host network:
//! attachments from an address pool, but no firewall, resolver, egress
//! proxy or listener. Requests go in with
//! `tower::ServiceExt::oneshot`; nothing needs root. The directory holds one
//! ready template, `base`, with an empty root filesystem (a fake runtime
//! never reads it). Time is a [`ManualClock`] that stands still until the
//! test moves it; the reaper and the timers run, so lifetimes end and
//! timers fire when it does.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use warren_egress::registry::Registry;
use warren_runtime::Runtime;
use warren_snapshot::{LocalDirStore, SnapshotStore};
use warren_template::TemplateStore;

use crate::ServeError;
use crate::assemble::{Opened, Parts, assemble, open, startup};
use crate::audit::AuditTasks;
use crate::auth::grant::DEFAULT_GRANT_TTL_S;
use crate::auth::token::DEFAULT_TOKEN_TTL_S;
use crate::clock::ManualClock;
use crate::service::Network;
use crate::service::webhooks::Destinations;

/// The addresses the in-process server's sandboxes are given (the fake
/// runtime's agents listen on `127.0.0.1` whatever their attachment).
const TEST_POOL: &str = "10.77.0.0/16";

/// A running in-process Warren.
pub struct InProcess {
    /// The main API, as the API listener serves it (port proxy in front).
    pub api: Router,
    /// The sandbox listener's API (sandbox tokens only).
    pub sandbox_api: Router,
    /// The operator team's admin key, made at the first start in `dir`.
    pub admin_key: Option<String>,
    /// The time every expiry is decided against.
    pub clock: ManualClock,
    audit_tasks: AuditTasks,
    /// The services: the meter is sampled only when a test asks
    /// ([`InProcess::sample_meter`]).
    sandboxes: Arc<crate::service::Sandboxes>,
    stop_reaper: tokio::sync::watch::Sender<bool>,
    /// The reaper, the inbox worker, the timers, the hook delivery-id
    /// pruner and the webhooks' outbox.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    /// Starts Warren over `dir` (created if missing) with `runtime`.
    pub async fn start(dir: &Path, runtime: Arc<dyn Runtime>) -> Result<Self, ServeError> {
        Self::start_with(dir, runtime, Vec::new()).await
    }

    /// [`InProcess::start`] with lifecycle webhooks allowed to reach
    /// `webhook_allow` (e.g. a receiver on 127.0.0.1). Their worker runs on
    /// the manual clock: a retry is due once the test moves time past it.
    pub async fn start_with(
        dir: &Path,
        runtime: Arc<dyn Runtime>,
        webhook_allow: Vec<warren_core::network::Cidr>,
    ) -> Result<Self, ServeError> {
        let secrets_dir = dir.join("secrets");
        let templates_dir = dir.join("templates");
        std::fs::create_dir_all(templates_dir.join("base/rootfs"))
            .and_then(|()| std::fs::create_dir_all(&secrets_dir))
            .and_then(|()| {
                std::fs::write(
                    templates_dir.join("base/template.json"),
                    r#"{"name":"base","status":"ready","size_bytes":0,"recipe":"base"}"#,
                )
            })
            .and_then(|()| std::fs::write(dir.join("agent"), b""))
            .map_err(|e| startup("preparing the directory", e))?;
        let manual = ManualClock::new();
        let clock = manual.clock();
        let Opened {
            secrets,
            store,
            audit,
            audit_tasks,
            tenancy,
            team_secrets,
            ca,
            webhook_cipher,
        } = open(dir, &secrets_dir, DEFAULT_TOKEN_TTL_S, &clock).await?;
        let admin_key = tenancy
            .bootstrap()
            .await
            .map_err(|e| ServeError::Startup(e.message))?;
        let templates =
            Arc::new(TemplateStore::new(&templates_dir).map_err(|e| startup("templates", e))?);
        let snapshots: Arc<dyn SnapshotStore> = Arc::new(
            LocalDirStore::open(dir.join("snapshots"), true)
                .map_err(|e| startup("snapshot store", e))?,
        );
        let pool = TEST_POOL.parse().map_err(|e| startup("the test pool", e))?;
        let network = Arc::new(Network::new(
            pool,
            None,
            Registry::default(),
            Default::default(),
        ));
        let assembled = assemble(Parts {
            data_dir: dir.to_owned(),
            secrets,
            store,
            audit,
            tenancy,
            team_secrets,
            runtime,
            network,
            templates,
            snapshots,
            agent_binary: dir.join("agent"),
            default_limits: warren_core::Limits::default(),
            ca_certificate: ca.certificate_pem().to_owned(),
            sandbox_api_port: 1,
            standby_s: 0,
            disk_reserve_mb: 0,
            memory_reserve_mb: 0,
            max_creating: crate::service::gate::default_in_flight(),
            create_queue: crate::service::gate::DEFAULT_QUEUE,
            grant_ttl_s: DEFAULT_GRANT_TTL_S,
            ports_domain: crate::ports::DEFAULT_DOMAIN.to_owned(),
            e2b_domain: "localhost:8700".to_owned(),
            clock,
            webhook_cipher,
            webhook_destinations: Destinations::new(webhook_allow, None),
            webhook_first_retry: crate::service::webhooks::backoff::FIRST_RETRY,
            build_allow: Vec::new(),
            meter_interval: crate::service::meter::DEFAULT_INTERVAL,
            metering: true,
            prices: Default::default(),
            metrics_per_sandbox: true,
        });
        let (stop_reaper, stopped) = tokio::sync::watch::channel(false);
        let workers = vec![
            tokio::spawn(assembled.sandboxes.clone().run_reaper(stopped.clone())),
            tokio::spawn(assembled.sandboxes.clone().run_inbox(stopped.clone())),
            tokio::spawn(assembled.sandboxes.clone().run_timers(stopped.clone())),
            tokio::spawn(assembled.hooks.clone().run_pruner(stopped.clone())),
            tokio::spawn(assembled.webhooks.clone().run(stopped)),
        ];
        Ok(Self {
            api: assembled.api,
            sandbox_api: assembled.sandbox_api,
            admin_key,
            clock: manual,
            audit_tasks,
            sandboxes: assembled.sandboxes.clone(),
            stop_reaper,
            workers,
        })
    }

    /// Serves the main API on a fresh port of 127.0.0.1, for clients that
    /// need a socket (the CLI); the server runs until the test ends.
    /// Sends `req` to the main API; the status and the JSON answer (a
    /// string when the answer is not JSON).
    pub async fn send(
        &self,
        req: axum::http::Request<axum::body::Body>,
    ) -> (axum::http::StatusCode, serde_json::Value) {
        use http_body_util::BodyExt as _;
        use tower::ServiceExt as _;
        let resp = self
            .api
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers");
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("the answer's body")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        (status, body)
    }

    /// `method path` on the main API with `key` as a Bearer (none: no
    /// credentials) and a JSON body.
    pub async fn call(
        &self,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (axum::http::StatusCode, serde_json::Value) {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(axum::body::Body::from(b.to_string())),
            None => req.body(axum::body::Body::empty()),
        };
        self.send(req.expect("a well-formed request")).await
    }

    /// One sample of the meter, written (at the manual clock's time), and
    /// the budgets checked against it.
    pub async fn sample_meter(&self) {
        self.sandboxes
            .meter_tick()
            .await
            .expect("the meter records a sample");
    }

    /// A new key of the operators' team with `role`; its secret.
    pub async fn key(&self, role: &str) -> String {
        let admin = self.admin_key.clone().expect("the operators' admin key");
        let (status, body) = self
            .call(
                Some(&admin),
                "POST",
                "/v1/keys",
                Some(serde_json::json!({"name": role, "role": role})),
            )
            .await;
        assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
        body["secret"].as_str().expect("a secret").to_owned()
    }

    pub async fn serve(&self) -> Result<std::net::SocketAddr, ServeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| startup("binding 127.0.0.1", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| startup("the bound address", e))?;
        let app = self
            .api
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(addr)
    }

    /// Stops the workers and the audit log's signer (after a last signature).
    pub async fn stop(self) {
        let _ = self.stop_reaper.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        self.audit_tasks.stop().await;
    }
}
