//! Store tests against real SQLite databases in temporary directories, one
//! module per table family. They link into one test binary so a build stays
//! small; nextest still runs each test in its own process.

mod audit;
mod common;
mod disk_full;
mod durability;
mod events;
mod grants;
mod hooks;
mod keys;
mod network;
mod pools;
mod quotas;
mod sandboxes;
mod secrets;
mod slots;
mod snapshots;
mod teams;
mod template_snapshots;
mod template_versions;
mod transitions;
mod usage;
mod volumes;
