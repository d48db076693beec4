//! `GET /v1/sandboxes/watch`: the caller's team's sandboxes, live, as
//! server-sent events.
//!
//! Protocol: the stream opens with `event: sandboxes` (a `SandboxList`,
//! every sandbox that is not killed, as `GET /v1/sandboxes` lists them),
//! then sends `event: sandbox` (a `Sandbox`: created, or its row changed)
//! and `event: removed` (`{"id"}`: killed or gone) as they happen, from
//! `service::changes`. A watcher that fell behind gets a fresh
//! `sandboxes` list. A comment line is sent every [`KEEPALIVE`] so that
//! proxies keep the connection open.
//!
//! Bounds: at most [`MAX_WATCHES_PER_KEY`] streams per key at once (more
//! answer 429); a stream ends when its client goes away, and at the
//! latest [`LIFETIME`] after it opened. Credentials are checked when a
//! stream opens, so the end makes a browser's `EventSource` reconnect
//! (after [`RETRY`]) and authenticate again: a revoked key or an ended
//! session stops receiving within [`LIFETIME`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Extension, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use warren_api_types::{SandboxList, SandboxRemoved};
use warren_core::{ErrorKind, KeyId, SandboxState, TeamId, WarrenError};
use warren_store::SandboxFilter;

use super::sandboxes::to_api;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::service::Sandboxes;
use crate::state::AppState;

/// Streams one key may hold open at once.
pub const MAX_WATCHES_PER_KEY: usize = 8;
/// How often an idle stream sends a comment.
pub const KEEPALIVE: Duration = Duration::from_secs(15);
/// How long one stream lasts at most.
pub const LIFETIME: Duration = Duration::from_secs(300);
/// How long a browser waits before it reconnects a stream that ended.
pub const RETRY: Duration = Duration::from_secs(1);

/// Open streams per key.
#[derive(Debug, Clone, Default)]
pub struct Watchers {
    open: Arc<Mutex<HashMap<KeyId, usize>>>,
}

/// One open stream; dropping it frees its place.
#[derive(Debug)]
pub struct WatchSlot {
    watchers: Watchers,
    key: KeyId,
}

impl Watchers {
    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, usize>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more stream of `key`, unless it has
    /// [`MAX_WATCHES_PER_KEY`].
    pub fn admit(&self, key: &KeyId) -> Result<WatchSlot, WarrenError> {
        let mut open = self.locked();
        let count = open.entry(key.clone()).or_default();
        if *count >= MAX_WATCHES_PER_KEY {
            return Err(WarrenError::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "this key has {MAX_WATCHES_PER_KEY} sandbox watches open already: close one first"
                ),
            ));
        }
        *count += 1;
        Ok(WatchSlot {
            watchers: self.clone(),
            key: key.clone(),
        })
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.watchers.locked();
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The caller's team's sandboxes, then every change to them, as
/// server-sent events.
#[utoipa::path(get, path = "/v1/sandboxes/watch", tag = "sandboxes",
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "`event: sandboxes` (a SandboxList) first, then `event: sandbox` (a Sandbox, created or changed) and `event: removed` (a SandboxRemoved) as they happen; comment lines keep the connection alive"),
        (status = 429, description = "this key has too many watches open", body = warren_api_types::ApiError)))]
pub async fn watch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = state.watchers.admit(&caller.key_id)?;
    // Subscribed before the first list is read: nothing falls between.
    let changes = state.sandboxes.changes().subscribe();
    let first = list(&state.sandboxes, &caller.team).await?;
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(forward(
        state.sandboxes.clone(),
        caller.team,
        changes,
        first,
        tx,
        slot,
    ));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(KeepAlive::new().interval(KEEPALIVE)))
}

async fn list(sandboxes: &Sandboxes, team: &TeamId) -> Result<Event, WarrenError> {
    let rows = sandboxes.list(team, SandboxFilter::default()).await?;
    let body = SandboxList {
        sandboxes: rows.into_iter().map(to_api).collect(),
    };
    json_event("sandboxes", &body)
}

fn json_event(name: &str, body: &impl serde::Serialize) -> Result<Event, WarrenError> {
    Event::default()
        .event(name)
        .json_data(body)
        .map_err(|e| WarrenError::internal(format!("encoding a watch event: {e}")))
}

/// What the stream says about sandbox `id` now.
async fn describe(
    sandboxes: &Sandboxes,
    id: &warren_core::SandboxId,
) -> Result<Event, WarrenError> {
    match sandboxes.lookup(id).await? {
        Some(rec) if rec.state != SandboxState::Killed => json_event("sandbox", &to_api(rec)),
        _ => json_event("removed", &SandboxRemoved { id: id.to_string() }),
    }
}

/// Sends `first`, then the team's changes, until the client goes away.
async fn forward(
    sandboxes: Arc<Sandboxes>,
    team: TeamId,
    mut changes: broadcast::Receiver<crate::service::changes::Change>,
    first: Event,
    tx: mpsc::Sender<Result<Event, Infallible>>,
    _slot: WatchSlot,
) {
    if tx.send(Ok(first.retry(RETRY))).await.is_err() {
        return;
    }
    let end = tokio::time::sleep(LIFETIME);
    tokio::pin!(end);
    loop {
        let change = tokio::select! {
            () = tx.closed() => return,
            () = &mut end => return,
            change = changes.recv() => change,
        };
        let event = match change {
            Ok(change) if change.team == team => describe(&sandboxes, &change.id).await,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(_)) => list(&sandboxes, &team).await,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(team = %team, error = %e.message, "sandbox watch ends");
                return;
            }
        };
        if tx.send(Ok(event)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_a_bounded_number_of_watches_and_frees_them() {
        let watchers = Watchers::default();
        let key: KeyId = "abcdefghijkl".parse().unwrap();
        let other: KeyId = "mnopqrstuvwx".parse().unwrap();
        let slots: Vec<_> = (0..MAX_WATCHES_PER_KEY)
            .map(|_| watchers.admit(&key).unwrap())
            .collect();
        let refused = watchers.admit(&key).unwrap_err();
        assert_eq!(refused.kind, ErrorKind::ResourceExhausted);
        // Another key is not held back.
        let _theirs = watchers.admit(&other).unwrap();
        drop(slots);
        assert!(watchers.admit(&key).is_ok());
        assert_eq!(
            watchers.locked().get(&key),
            None,
            "freed slots are forgotten"
        );
    }
}
