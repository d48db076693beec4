//! What every handler, native or E2B, is given.

use std::sync::Arc;

use crate::audit::Audit;
use crate::auth::Grants;
use crate::service::{Hooks, Sandboxes, Secrets, Tenancy};
use crate::templates::TemplateBuilds;

/// Everything handlers need.
#[derive(Clone)]
pub struct AppState {
    pub sandboxes: Arc<Sandboxes>,
    pub templates: Arc<TemplateBuilds>,
    /// The daemon's Prometheus series (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// E2B's template builds in flight and their uploaded files.
    pub e2b_builds: Arc<crate::e2b::Builds>,
    pub tenancy: Arc<Tenancy>,
    pub secrets: Arc<Secrets>,
    /// Inbound webhook hooks and their deliveries.
    pub hooks: Arc<Hooks>,
    pub audit: Audit,
    /// The domain of exposed-port hosts (`crate::ports`).
    pub ports_domain: Arc<str>,
    /// The `domain` E2B's answers carry: the SDKs' `getHost(port)` is
    /// `{port}-{id}.{e2b_domain}`, which must reach the port proxy.
    pub e2b_domain: Arc<str>,
    /// Hands out the tokens that open a sandbox's agent and ports.
    pub grants: Grants,
    /// Lifecycle webhooks out.
    pub webhooks: Arc<crate::service::webhooks::Webhooks>,
    /// Open live sandbox lists (`GET /v1/sandboxes/watch`), per key.
    pub watchers: crate::api::Watchers,
}
