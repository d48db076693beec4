//! End-to-end tests against real `warren serve` daemons and real gVisor
//! sandboxes, one module per capability. They link into one test binary so a
//! build stays small; nextest still runs each test in its own process.

mod root_secrets;
mod sandbox_api;
mod sandbox_api_fuzz;
mod sandbox_audit;
mod sandbox_bootstrap;
mod sandbox_chaos;
mod sandbox_cli;
mod sandbox_clock;
mod sandbox_credentials;
mod sandbox_daemon_memory;
mod sandbox_dead;
mod sandbox_disk;
mod sandbox_disk_full;
mod sandbox_disk_limit;
mod sandbox_dockerfile;
mod sandbox_dockerfile_cache;
mod sandbox_e2b;
mod sandbox_exec;
mod sandbox_files_permissions;
mod sandbox_firewall;
mod sandbox_first_call;
mod sandbox_grants;
mod sandbox_inbox;
mod sandbox_integrity;
mod sandbox_lifecycle;
mod sandbox_listeners;
mod sandbox_load;
mod sandbox_metering;
mod sandbox_network;
mod sandbox_pools;
mod sandbox_ports;
mod sandbox_quotas;
mod sandbox_secrets;
mod sandbox_snapshot_cli;
mod sandbox_snapshots;
mod sandbox_sources;
mod sandbox_template_import;
mod sandbox_template_snapshots;
mod sandbox_tenancy;
mod sandbox_terminal;
mod sandbox_traces;
mod sandbox_unrecorded_end;
mod sandbox_volumes;
mod sandbox_webhooks;
