//! Service and API tests of the daemon's library, in process, one module per
//! area. They link into one test binary so a build stays small; nextest still
//! runs each test in its own process.

mod api_conformance;
mod audit_service;
mod budgets;
mod dashboard;
mod e2b_builds;
mod e2b_list;
mod e2b_secrets;
mod e2b_volume_content;
mod fixtures;
mod fs_pause;
mod metrics;
mod origin;
mod processes;
mod races;
mod router;
mod rules;
mod secrets_service;
mod sources;
mod template_aliases;
mod template_import;
mod usage;
mod volumes;
mod webhooks;
