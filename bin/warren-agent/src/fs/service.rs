//! The `filesystem.Filesystem` service. File work runs on a worker thread
//! holding the caller's credentials ([`as_user`]).

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use warren_envd::filesystem::{self as f, EntryInfo, WatchKeepAlive};
use warren_envd::{Code, ConnectError};

use super::as_user::as_user;
use super::entry::entry_info;
use super::{FsError, create_dirs, paths, watch};
use crate::methods::{self, Method, streaming, unary};
use crate::rpc::{self, RpcResult};
use crate::state::Shared;
use crate::users::{Names, User};

pub(crate) struct Ctx {
    user: User,
    workdir: PathBuf,
    state: Shared,
}

/// What file work needs once it runs as the user: owner and group names
/// are read before the switch, as root.
struct Work {
    names: Names,
}

impl Work {
    fn entry(&self, path: &Path) -> RpcResult<EntryInfo> {
        Ok(entry_info(path, &self.names)?)
    }
}

impl Ctx {
    fn resolve(&self, path: &str) -> RpcResult<PathBuf> {
        paths::resolve(path, &self.user, &self.workdir)
    }

    /// Runs `f` with the caller's credentials.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(Work) -> RpcResult<T> + Send + 'static,
    ) -> RpcResult<T> {
        let work = Work {
            names: self.state.users.names(),
        };
        as_user(&self.user, move || f(work)).await?
    }
}

/// The methods of `filesystem.Filesystem`.
pub(crate) static METHODS: &[Method<Ctx>] = &[
    streaming!("WatchDir", watch_dir),
    unary!("Stat", stat),
    unary!("MakeDir", make_dir),
    unary!("Move", move_entry),
    unary!("ListDir", list_dir_rpc),
    unary!("Remove", remove),
    unary!("CreateWatcher", create_watcher),
    unary!("GetWatcherEvents", get_watcher_events),
    unary!("RemoveWatcher", remove_watcher),
];

/// Dispatches one `filesystem.Filesystem` method (see [`crate::methods`]);
/// every method runs as the caller's user.
pub async fn dispatch(state: Shared, method: String, headers: HeaderMap, body: Body) -> Response {
    let found = methods::find(METHODS, &method);
    let streaming = found.is_some_and(|m| m.streaming);
    if let Err(e) = rpc::check_content_type(&headers, streaming) {
        return rpc::error_response(&e);
    }
    let ctx = match state.rpc_user(&headers) {
        Ok(user) => Ctx {
            workdir: state.workdir(&user),
            user,
            state: state.clone(),
        },
        Err(e) if streaming => return rpc::stream_error(e),
        Err(e) => return rpc::error_response(&e),
    };
    match found {
        Some(m) => (m.handler)(ctx, headers, body).await,
        None => methods::unknown(f::SERVICE, &method),
    }
}

async fn watch_dir(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    match rpc::stream_request::<f::WatchDirRequest>(body).await {
        Ok(req) => match ctx.resolve(&req.path) {
            Ok(path) => match watch::watch_stream(&ctx.user, path, &req).await {
                Ok(events) => {
                    let keepalive = rpc::keepalive_interval(&headers)
                        .map(|d| (d, f::WatchDirResponse::Keepalive(WatchKeepAlive {})));
                    rpc::stream_response(events, keepalive)
                }
                Err(e) => rpc::stream_error(e),
            },
            Err(e) => rpc::stream_error(e),
        },
        Err(e) => rpc::stream_error(e),
    }
}

async fn stat(ctx: Ctx, req: f::StatRequest) -> RpcResult<f::StatResponse> {
    let path = ctx.resolve(&req.path)?;
    ctx.run(move |w| {
        Ok(f::StatResponse {
            entry: Some(w.entry(&path)?),
        })
    })
    .await
}

async fn make_dir(ctx: Ctx, req: f::MakeDirRequest) -> RpcResult<f::MakeDirResponse> {
    let path = ctx.resolve(&req.path)?;
    ctx.run(move |w| {
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(ConnectError::new(
                Code::AlreadyExists,
                format!("{} already exists", path.display()),
            ));
        }
        create_dirs(&path)?;
        Ok(f::MakeDirResponse {
            entry: Some(w.entry(&path)?),
        })
    })
    .await
}

async fn move_entry(ctx: Ctx, req: f::MoveRequest) -> RpcResult<f::MoveResponse> {
    let source = ctx.resolve(&req.source)?;
    let destination = ctx.resolve(&req.destination)?;
    ctx.run(move |w| {
        std::fs::symlink_metadata(&source).map_err(|e| FsError::new("move", &source, e))?;
        if let Some(parent) = destination.parent() {
            create_dirs(parent)?;
        }
        std::fs::rename(&source, &destination)
            .map_err(|e| FsError::new("move to", &destination, e))?;
        Ok(f::MoveResponse {
            entry: Some(w.entry(&destination)?),
        })
    })
    .await
}

async fn list_dir_rpc(ctx: Ctx, req: f::ListDirRequest) -> RpcResult<f::ListDirResponse> {
    let path = ctx.resolve(&req.path)?;
    ctx.run(move |w| list_dir(&w, &path, req.depth.max(1)))
        .await
}

/// Removes a file, link or whole tree. A path that is not there (or is gone
/// by the time it is removed) is removed already: success, as in envd.
async fn remove(ctx: Ctx, req: f::RemoveRequest) -> RpcResult<f::RemoveResponse> {
    let path = ctx.resolve(&req.path)?;
    ctx.run(move |_| {
        let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if gone(&e) => return Ok(f::RemoveResponse {}),
            Err(e) => return Err(FsError::new("remove", &path, e).into()),
        };
        let result = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Err(e) if !gone(&e) => Err(FsError::new("remove", &path, e).into()),
            _ => Ok(f::RemoveResponse {}),
        }
    })
    .await
}

async fn create_watcher(
    ctx: Ctx,
    req: f::CreateWatcherRequest,
) -> RpcResult<f::CreateWatcherResponse> {
    let path = ctx.resolve(&req.path)?;
    let watcher_id = ctx.state.watchers.create(&ctx.user, path, &req).await?;
    Ok(f::CreateWatcherResponse { watcher_id })
}

async fn get_watcher_events(
    ctx: Ctx,
    req: f::GetWatcherEventsRequest,
) -> RpcResult<f::GetWatcherEventsResponse> {
    Ok(f::GetWatcherEventsResponse {
        events: ctx.state.watchers.drain(&req.watcher_id)?,
    })
}

async fn remove_watcher(
    ctx: Ctx,
    req: f::RemoveWatcherRequest,
) -> RpcResult<f::RemoveWatcherResponse> {
    ctx.state.watchers.remove(&req.watcher_id)?;
    Ok(f::RemoveWatcherResponse {})
}

/// Lists `root` down to `depth` levels, sorted by path. Symlinked
/// directories are listed but not descended into.
fn list_dir(w: &Work, root: &Path, depth: u32) -> RpcResult<f::ListDirResponse> {
    let meta = std::fs::metadata(root).map_err(|e| FsError::new("list", root, e))?;
    if !meta.is_dir() {
        return Err(ConnectError::invalid_argument(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut entries = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 1u32)];
    while let Some((dir, level)) = stack.pop() {
        let read = match std::fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if dir == root => return Err(FsError::new("list", &dir, e).into()),
            Err(_) => continue,
        };
        for item in read.flatten() {
            let path = item.path();
            let Ok(entry) = entry_info(&path, &w.names) else {
                continue;
            };
            let descend =
                level < depth && !entry.is_symlink && entry.kind == f::FileType::Directory;
            entries.push(entry);
            if descend {
                stack.push((path, level + 1));
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(f::ListDirResponse { entries })
}
