//! Keeping template versions while rows name them, and deleting them after.
//!
//! A version is in use while a live sandbox (not killed or failed) or a
//! snapshot with an image names it (`Store::template_versions_in_use`); a
//! row older than versions (no version recorded) keeps every version of
//! its template. A create resolves a version before its row names it, so a
//! version is deleted only after it was seen unused for [`GRACE`] on the
//! service clock, and only if no tag names it (the template store checks
//! that under the template's lock). Runs in the reaper's round.
//!
//! At start, rows older than versions get the version their template has
//! then (`pin_template_versions`): the only one they can have run on.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};
use warren_core::WarrenError;

use super::Sandboxes;

/// How long a version stays unused before it is deleted.
pub const GRACE: Duration = Duration::seconds(60);

/// When each unused version was first seen unused.
#[derive(Default)]
pub(crate) struct UnusedSince(Mutex<HashMap<(String, String), OffsetDateTime>>);

impl Sandboxes {
    /// Deletes the versions unused for longer than [`GRACE`]; returns them
    /// as `NAME@VERSION`.
    pub async fn collect_templates(&self) -> Result<Vec<String>, WarrenError> {
        let rows = self.store.template_versions_in_use().await?;
        let mut in_use: HashSet<(String, String)> = HashSet::new();
        let mut pinned_whole: HashSet<String> = HashSet::new();
        for (name, version) in rows {
            match version {
                Some(v) => {
                    in_use.insert((name, v));
                }
                None => {
                    pinned_whole.insert(name);
                }
            }
        }
        let now = self.clock.now();
        let templates = self.templates.clone();
        let unused_since = &self.template_gc;
        let mut deleted = Vec::new();
        for name in templates.names()? {
            if pinned_whole.contains(&name) {
                continue;
            }
            let gone = templates.collect(&name, |version| {
                let key = (name.clone(), version.to_owned());
                let mut seen = unused_since.0.lock().unwrap_or_else(|p| p.into_inner());
                if in_use.contains(&key) {
                    seen.remove(&key);
                    return true;
                }
                let first = *seen.entry(key).or_insert(now);
                now - first < GRACE
            })?;
            for version in gone {
                tracing::info!(template = %name, %version, "template version collected");
                deleted.push(format!("{name}@{version}"));
            }
        }
        Ok(deleted)
    }

    /// Gives rows older than template versions their template's version.
    pub async fn pin_template_versions(&self) -> Result<(), WarrenError> {
        for t in self.templates.list()? {
            if let Some(version) = &t.version {
                let pinned = self.store.pin_template_version(&t.name, version).await?;
                if pinned > 0 {
                    tracing::info!(template = %t.name, %version, rows = pinned, "recorded the template version of older rows");
                }
            }
        }
        Ok(())
    }
}
