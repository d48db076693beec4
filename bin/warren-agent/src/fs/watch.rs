//! Directory watching with inotify (through `notify`).
//!
//! `WatchDir` streams events as they come; `CreateWatcher` buffers them
//! until `GetWatcherEvents` drains the buffer. Both are bounded: a stream
//! queue drops events when the client does not keep up, a buffer keeps the
//! latest events up to its cap. Event names are relative to the watched
//! directory.
//!
//! A watcher is made on a thread holding the caller's credentials, so its
//! inotify loop thread (which adds the watches, also those of directories
//! created later in a recursive watch, and describes entries) inherits them:
//! a user watches only what the user may read.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use warren_envd::filesystem::{
    EventType, FilesystemEvent, WatchDirRequest, WatchDirResponse, WatchStart,
};
use warren_envd::{Code, ConnectError};

use super::as_user::as_user;
use super::entry::entry_info;
use super::{FsError, staged};
use crate::users::{Names, User};

const STREAM_QUEUE: usize = 1024;
const BUFFER_CAP: usize = 10_000;
const MAX_WATCHERS: usize = 256;

/// The envd event for an inotify event, mapped as envd (Go's fsnotify)
/// maps them: a name moved into the directory is a `Create` (so a file
/// written by rename over a temporary, as uploads are, reads as created),
/// the name it left is a `Rename`; notify's extra paired `Both` event would
/// repeat the two and is dropped.
fn event_type(kind: &EventKind) -> Option<EventType> {
    match kind {
        EventKind::Create(_) => Some(EventType::Create),
        EventKind::Remove(_) => Some(EventType::Remove),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Some(EventType::Create),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => None,
        EventKind::Modify(ModifyKind::Name(_)) => Some(EventType::Rename),
        EventKind::Modify(ModifyKind::Metadata(_)) => Some(EventType::Chmod),
        EventKind::Modify(_) => Some(EventType::Write),
        _ => None,
    }
}

/// The envd events of one inotify event; an upload's staging name never
/// shows, and its landing reads as envd's in-place write ([`staged`]).
fn to_events(root: &Path, include_entry: bool, event: notify::Event) -> Vec<FilesystemEvent> {
    let Some(kind) = event_type(&event.kind) else {
        return Vec::new();
    };
    let arrival = matches!(
        event.kind,
        EventKind::Modify(ModifyKind::Name(RenameMode::To))
    );
    let names = include_entry.then(Names::default);
    let mut out = Vec::new();
    for p in event.paths.iter().filter(|p| !staged::is_staging(p)) {
        let kinds = if arrival {
            staged::arrival_events(p)
        } else {
            vec![kind]
        };
        let entry = names.as_ref().and_then(|n| entry_info(p, n).ok());
        for kind in kinds {
            out.push(FilesystemEvent {
                name: p.strip_prefix(root).unwrap_or(p).display().to_string(),
                kind,
                entry: entry.clone(),
            });
        }
    }
    out
}

fn start_watcher(
    root: &Path,
    req: &WatchDirRequest,
    sink: impl Fn(FilesystemEvent) + Send + 'static,
) -> Result<RecommendedWatcher, ConnectError> {
    let meta = std::fs::metadata(root).map_err(|e| FsError::new("watch", root, e))?;
    if !meta.is_dir() {
        return Err(ConnectError::invalid_argument(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let owned_root = root.to_path_buf();
    let include_entry = req.include_entry;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            for e in to_events(&owned_root, include_entry, event) {
                sink(e);
            }
        }
    })
    .map_err(|e| {
        ConnectError::new(
            Code::ResourceExhausted,
            format!("creating a watcher failed: {e}"),
        )
    })?;
    let mode = if req.recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    watcher.watch(root, mode).map_err(|e| match e.kind {
        notify::ErrorKind::Io(io) => FsError::new("watch", root, io).into(),
        notify::ErrorKind::PathNotFound => ConnectError::not_found(format!(
            "cannot watch {}: it does not exist",
            root.display()
        )),
        kind => ConnectError::new(
            Code::ResourceExhausted,
            format!("watching {} failed: {kind:?}", root.display()),
        ),
    })?;
    Ok(watcher)
}

/// Starts a watcher as `user`.
async fn start_watcher_as(
    user: &User,
    root: PathBuf,
    req: &WatchDirRequest,
    sink: impl Fn(FilesystemEvent) + Send + 'static,
) -> Result<RecommendedWatcher, ConnectError> {
    let req = req.clone();
    as_user(user, move || start_watcher(&root, &req, sink)).await?
}

/// The `WatchDir` stream as `user`: `start`, then events until the client
/// goes away.
pub async fn watch_stream(
    user: &User,
    root: PathBuf,
    req: &WatchDirRequest,
) -> Result<impl Stream<Item = Result<WatchDirResponse, ConnectError>> + Send + 'static, ConnectError>
{
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_QUEUE);
    let watcher = start_watcher_as(user, root, req, move |e| {
        let _ = tx.try_send(e);
    })
    .await?;
    let start = futures::stream::once(async { Ok(WatchDirResponse::Start(WatchStart {})) });
    let events = futures::stream::unfold((rx, watcher), |(mut rx, watcher)| async move {
        let event = rx.recv().await?;
        Some((
            Ok(WatchDirResponse::Filesystem(Box::new(event))),
            (rx, watcher),
        ))
    });
    Ok(futures::StreamExt::chain(start, events))
}

struct Buffered {
    _watcher: RecommendedWatcher,
    events: Arc<Mutex<VecDeque<FilesystemEvent>>>,
}

/// Watchers created with `CreateWatcher`.
#[derive(Default)]
pub struct Watchers {
    next: AtomicU64,
    by_id: Mutex<HashMap<String, Buffered>>,
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Buffered>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a buffered watcher of `root` as `user`; returns its id.
    pub async fn create(
        &self,
        user: &User,
        root: PathBuf,
        req: &WatchDirRequest,
    ) -> Result<String, ConnectError> {
        if self.lock().len() >= MAX_WATCHERS {
            return Err(ConnectError::new(
                Code::ResourceExhausted,
                format!("at most {MAX_WATCHERS} watchers; remove one first"),
            ));
        }
        let events = Arc::new(Mutex::new(VecDeque::new()));
        let sink = events.clone();
        let watcher = start_watcher_as(user, root, req, move |e| {
            let mut q = sink.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() >= BUFFER_CAP {
                q.pop_front();
            }
            q.push_back(e);
        })
        .await?;
        let id = format!("w{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        self.lock().insert(
            id.clone(),
            Buffered {
                _watcher: watcher,
                events,
            },
        );
        Ok(id)
    }

    pub fn drain(&self, id: &str) -> Result<Vec<FilesystemEvent>, ConnectError> {
        let watchers = self.lock();
        let w = watchers
            .get(id)
            .ok_or_else(|| ConnectError::not_found(format!("watcher {id:?} not found")))?;
        Ok(w.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect())
    }

    pub fn remove(&self, id: &str) -> Result<(), ConnectError> {
        self.lock()
            .remove(id)
            .map(drop)
            .ok_or_else(|| ConnectError::not_found(format!("watcher {id:?} not found")))
    }
}

#[cfg(test)]
mod event_type_tests {
    use super::*;

    #[test]
    fn names_map_as_envd_maps_them() {
        let name = |m| EventKind::Modify(ModifyKind::Name(m));
        assert_eq!(event_type(&name(RenameMode::To)), Some(EventType::Create));
        assert_eq!(event_type(&name(RenameMode::From)), Some(EventType::Rename));
        assert_eq!(event_type(&name(RenameMode::Both)), None);
    }
}
