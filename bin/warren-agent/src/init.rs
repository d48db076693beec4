//! `GET /health` and `POST /init`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use warren_envd::http_api::{InitRequest, SANDBOX_ENV_FILE, SANDBOX_TOKEN_FILE};
use warren_envd::json::Timestamp;

use crate::fs::files::FilesError;
use crate::state::Shared;

pub async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Applies an `/init`. Authentication already happened in the middleware:
/// once a token is set, only a caller holding it gets here.
pub async fn init(State(state): State<Shared>, body: Bytes) -> Response {
    let req: InitRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InitRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad(format!("malformed /init body: {e}")),
        }
    };
    if let Some(user) = &req.default_user
        && !state.users.exists(user)
    {
        return bad(format!(
            "defaultUser {user:?} does not exist in /etc/passwd"
        ));
    }
    if let Some(ts) = &req.timestamp {
        match Timestamp::parse(ts) {
            Some(t) if state.is_pid1 => set_clock(t),
            Some(_) => {}
            None => return bad(format!("timestamp {ts:?} is not RFC 3339")),
        }
    }
    if let Some(pem) = &req.warren_ca_cert {
        match crate::ca::install(&state.root, pem) {
            Ok(()) => {}
            Err(e @ crate::ca::CaInstallError::NotACertificate) => return bad(e.to_string()),
            Err(e) => {
                return FilesError::from_status(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    .into_response();
            }
        }
    }
    if let Some(token) = &req.warren_token
        && let Err(e) = write_whole(&under(&state.root, SANDBOX_TOKEN_FILE), token.as_bytes())
    {
        return unwritten(SANDBOX_TOKEN_FILE, e);
    }
    let mut d = state.defaults.write().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = req.env_vars {
        d.env.extend(env);
    }
    if req.warren_ca_cert.is_some() {
        crate::ca::add_default_env(&mut d.env);
    }
    let env = serde_json::to_vec(&d.env).unwrap_or_default();
    if let Err(e) = write_whole(&under(&state.root, SANDBOX_ENV_FILE), &env) {
        return unwritten(SANDBOX_ENV_FILE, e);
    }
    if let Some(user) = req.default_user {
        d.user = Some(user);
    }
    if let Some(dir) = req.default_workdir {
        d.workdir = (!dir.is_empty()).then(|| dir.into());
    }
    if let Some(token) = req.access_token {
        d.token = (!token.is_empty()).then_some(token);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `path` (absolute) under `root`.
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Writes a file whole, readable by every user: a temporary name beside
/// it, renamed over it.
fn write_whole(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{name}-{}", std::process::id()));
    std::fs::write(&temp, contents)?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&temp, path)
}

fn unwritten(path: &str, e: std::io::Error) -> Response {
    FilesError::from_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("could not write {path}: {e}"),
    )
    .into_response()
}

fn bad(message: String) -> Response {
    FilesError::from_status(StatusCode::BAD_REQUEST, message).into_response()
}

/// Sets the wall clock (inside a sandbox, as PID 1, after a restore).
fn set_clock(t: Timestamp) {
    let ts = libc::timespec {
        tv_sec: t.seconds,
        tv_nsec: i64::from(t.nanos),
    };
    // SAFETY: clock_settime reads one timespec from a valid pointer.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "setting the clock failed");
    }
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn a_file_is_written_whole_and_readable_by_every_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/warren/token");
        write_whole(&path, b"first").unwrap();
        write_whole(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
    }
}
