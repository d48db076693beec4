//! `GET /files` and `POST /files`: raw file transfer.
//!
//! The file is opened, created and renamed with the caller's credentials
//! ([`as_user`]); only the bytes move on the async side, through the
//! descriptor the user's thread opened. Uploads stream into a temporary
//! file next to the target, owned by the caller, and are renamed over the
//! target once complete, so a reader never sees a half-written file (and
//! watchers see envd's in-place write: [`staged`]). Missing
//! parent directories are created, owned by the caller. Errors are
//! `{"code": <HTTP status>, "message"}`: 400 for an unknown user or a bad
//! path, 403 when the user may not do it, 404 when it does not exist, 507
//! when the sandbox's disk is full (the temporary file is removed, the
//! target left as it was). After a failed write the rest of the request
//! body is read and dropped (up to [`DRAIN_LIMIT`]) before the answer: a
//! client still sending when the connection closed would see a broken pipe
//! instead of the answer.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{Multipart, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, extract::FromRequest};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use warren_envd::http_api::{HttpError, WriteInfo};

use super::as_user::{AsUserError, as_user};
use super::{FsError, create_dirs, metadata, paths, staged};
use crate::state::Shared;
use crate::users::{User, UserError};

/// Most bytes read and dropped after a failed upload before the
/// connection is let go unread.
const DRAIN_LIMIT: u64 = 4 << 30;

/// Query of `/files`.
#[derive(Debug, Deserialize, Default)]
pub struct FilesQuery {
    pub path: Option<String>,
    pub username: Option<String>,
    pub signature: Option<String>,
    pub signature_expiration: Option<i64>,
}

/// An error answer of the file endpoints.
#[derive(Debug)]
pub struct FilesError(StatusCode, String);

impl FilesError {
    pub fn from_status(status: StatusCode, msg: impl Into<String>) -> Self {
        Self(status, msg.into())
    }

    fn bad_request(msg: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl From<FsError> for FilesError {
    fn from(e: FsError) -> Self {
        use std::io::ErrorKind as K;
        let status = match e.source.kind() {
            K::NotFound => StatusCode::NOT_FOUND,
            K::PermissionDenied => StatusCode::FORBIDDEN,
            K::IsADirectory | K::NotADirectory | K::InvalidInput => StatusCode::BAD_REQUEST,
            K::StorageFull | K::QuotaExceeded => {
                return Self(
                    StatusCode::INSUFFICIENT_STORAGE,
                    format!(
                        "not enough disk space in the sandbox to write {}: its disk is full ({}); free space in the sandbox or create it with a larger disk",
                        e.path, e.source
                    ),
                );
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.to_string())
    }
}

impl From<AsUserError> for FilesError {
    fn from(e: AsUserError) -> Self {
        Self(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(HttpError {
                code: self.0.as_u16(),
                message: self.1,
            }),
        )
            .into_response()
    }
}

fn target(
    state: &Shared,
    q: &FilesQuery,
    path: Option<&str>,
) -> Result<(User, PathBuf), FilesError> {
    let user = state
        .resolve_user(q.username.as_deref())
        .map_err(|e| match e {
            UserError::Unknown(_) => FilesError::bad_request(e.to_string()),
            UserError::Read { .. } => FilesError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })?;
    let raw =
        path.ok_or_else(|| FilesError::bad_request("the path query parameter is required"))?;
    let resolved = paths::resolve(raw, &user, &state.workdir(&user))
        .map_err(|e| FilesError::bad_request(e.message))?;
    Ok((user, resolved))
}

/// The most read of a file whose length reads 0 (see [`download`]).
const PSEUDO_FILE_LIMIT: u64 = 64 << 20;

/// `GET /files?path=`: the file's bytes.
pub async fn download(
    State(state): State<Shared>,
    Query(q): Query<FilesQuery>,
) -> Result<Response, FilesError> {
    let (user, path) = target(&state, &q, q.path.as_deref())?;
    let opened = path.clone();
    let (file, meta) = as_user(&user, move || {
        // Non-blocking, so a FIFO cannot hold the worker until a writer
        // comes; only regular files are sent (below).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&opened)
            .map_err(|e| FsError::new("open", &opened, e))?;
        let meta = file
            .metadata()
            .map_err(|e| FsError::new("stat", &opened, e))?;
        Ok::<_, FsError>((file, meta))
    })
    .await??;
    let file = tokio::fs::File::from_std(file);
    if meta.is_dir() {
        return Err(FilesError::bad_request(format!(
            "{} is a directory",
            path.display()
        )));
    }
    // A device or FIFO has no length and may never end.
    if !meta.is_file() {
        return Err(FilesError::bad_request(format!(
            "{} is not a regular file (a device, FIFO or socket cannot be downloaded)",
            path.display()
        )));
    }
    // A file of length 0 may still have content: the kernel's files under
    // `/proc` and `/sys` say 0 and are read to their end (chunked, up to
    // `PSEUDO_FILE_LIMIT`). Any other file is sent as long as it was when
    // opened, so one growing meanwhile still matches its Content-Length.
    let (limit, length) = match meta.len() {
        0 => (PSEUDO_FILE_LIMIT, None),
        len => (len, Some(len)),
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(
        tokio::io::AsyncReadExt::take(file, limit),
        64 * 1024,
    );
    let mut resp = Body::from_stream(stream).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(len) = length {
        headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(len));
    }
    Ok(resp)
}

/// `POST /files?path=`: octet-stream or multipart upload.
pub async fn upload(
    State(state): State<Shared>,
    Query(q): Query<FilesQuery>,
    req: Request,
) -> Result<Response, FilesError> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let metadata = metadata::from_headers(req.headers()).map_err(FilesError::bad_request)?;
    let mut written = Vec::new();
    if media == "application/octet-stream" {
        let (user, path) = target(&state, &q, q.path.as_deref())?;
        let body = req.into_body().into_data_stream();
        written.push(write_atomically(&user, &path, body, &metadata).await?);
    } else if media.starts_with("multipart/") {
        let mut form = Multipart::from_request(req, &state)
            .await
            .map_err(|e| FilesError::bad_request(format!("malformed multipart body: {e}")))?;
        loop {
            let field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    return Err(FilesError::bad_request(format!(
                        "malformed multipart body: {e}"
                    )));
                }
            };
            if field.name() != Some("file") {
                continue;
            }
            let name = q
                .path
                .clone()
                .or_else(|| field.file_name().map(str::to_string));
            let (user, path) = target(&state, &q, name.as_deref())?;
            if written
                .iter()
                .any(|w: &WriteInfo| w.path == path.display().to_string())
            {
                return Err(FilesError::bad_request(format!(
                    "{} appears twice in one upload",
                    path.display()
                )));
            }
            match write_atomically(&user, &path, field, &metadata).await {
                Ok(info) => written.push(info),
                Err(e) => {
                    drain_fields(&mut form).await;
                    return Err(e);
                }
            }
        }
    } else {
        return Err(FilesError::bad_request(format!(
            "unsupported content type {media:?}; send application/octet-stream or multipart/form-data"
        )));
    }
    Ok(Json(written).into_response())
}

/// Reads and drops what is left of a multipart body (see the module doc).
async fn drain_fields(form: &mut Multipart) {
    let mut seen: u64 = 0;
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            seen += chunk.len() as u64;
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}

/// Reads and drops what is left of `body` (see the module doc).
async fn drain<S, E>(body: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut seen: u64 = 0;
    while let Some(Ok(chunk)) = body.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            return;
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(staged::staging_name(&name, n))
}

/// Opens the temporary file for `path` as the user, after creating missing
/// parents; it takes the mode of the file it replaces.
fn open_temporary(path: &Path, tmp: &Path) -> Result<std::fs::File, FilesError> {
    if path.is_dir() {
        return Err(FilesError::bad_request(format!(
            "{} is a directory",
            path.display()
        )));
    }
    create_dirs(path.parent().unwrap_or(Path::new("/")))?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    Ok(std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(|e| FsError::new("create", tmp, e))?)
}

async fn write_atomically<S, E>(
    user: &User,
    path: &Path,
    body: S,
    metadata: &BTreeMap<String, String>,
) -> Result<WriteInfo, FilesError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let tmp = temp_path(path);
    let (target, temporary) = (path.to_path_buf(), tmp.clone());
    let file = as_user(user, move || open_temporary(&target, &temporary)).await??;
    let mut body = body;
    let written = async {
        let mut file = tokio::fs::File::from_std(file);
        while let Some(chunk) = body.next().await {
            let chunk = chunk
                .map_err(|e| FilesError::bad_request(format!("reading the upload failed: {e}")))?;
            if let Err(e) = file.write_all(&chunk).await {
                drain(&mut body).await;
                return Err(FsError::new("write", path, e).into());
            }
        }
        file.flush()
            .await
            .map_err(|e| FsError::new("write", path, e))?;
        metadata::write(&file, metadata).map_err(|e| FsError::new("set metadata on", path, e))?;
        Ok::<_, FilesError>(())
    }
    .await;
    let (target, temporary) = (path.to_path_buf(), tmp);
    as_user(user, move || {
        let renamed = written.and_then(|()| {
            staged::expect_landing(&target, std::fs::symlink_metadata(&target).is_ok());
            std::fs::rename(&temporary, &target).map_err(|e| {
                staged::withdraw_landing(&target);
                FsError::new("rename onto", &target, e).into()
            })
        });
        if renamed.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        renamed
    })
    .await??;
    Ok(WriteInfo {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        kind: "file".into(),
        path: path.display().to_string(),
        metadata: metadata::read(path),
    })
}

#[cfg(test)]
mod fuzz;
