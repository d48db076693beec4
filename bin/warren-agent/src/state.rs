//! State shared by every handler: defaults set by `/init`, accounts, the
//! process table, watchers and the reaper.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use warren_envd::http_api::user_from_basic;
use warren_envd::{Code, ConnectError};

use crate::fs::watch::Watchers;
use crate::process::ProcessTable;
use crate::reaper::Reaper;
use crate::users::{User, UserDb, UserError};

/// Settings from `/init`.
#[derive(Debug, Default, Clone)]
pub struct Defaults {
    pub user: Option<String>,
    pub workdir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub token: Option<String>,
}

pub struct AppState {
    pub users: UserDb,
    pub defaults: RwLock<Defaults>,
    pub reaper: Arc<Reaper>,
    pub procs: ProcessTable,
    pub watchers: Watchers,
    pub is_pid1: bool,
    /// The root the files from `/init` (CA, token, environment) are
    /// written under (`/` in a sandbox).
    pub root: PathBuf,
    /// The start command's output (`crate::logs`).
    pub logs: crate::logs::LogBook,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(users: UserDb, reaper: Arc<Reaper>, is_pid1: bool, root: PathBuf) -> Self {
        Self {
            users,
            defaults: RwLock::new(Defaults::default()),
            reaper,
            procs: ProcessTable::default(),
            watchers: Watchers::default(),
            is_pid1,
            root,
            logs: Default::default(),
        }
    }

    pub fn defaults(&self) -> Defaults {
        self.defaults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The requested user, else the `/init` default, else `user` if it
    /// exists, else `root`.
    pub fn resolve_user(&self, requested: Option<&str>) -> Result<User, UserError> {
        let name = match requested.filter(|n| !n.is_empty()) {
            Some(name) => name.to_string(),
            None => match self.defaults().user {
                Some(name) => name,
                None if self.users.exists("user") => "user".to_string(),
                None => "root".to_string(),
            },
        };
        self.users.lookup(&name)
    }

    /// The user an RPC acts as, from `Authorization: Basic base64("user:")`.
    pub fn rpc_user(&self, headers: &HeaderMap) -> Result<User, ConnectError> {
        let requested = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(user_from_basic);
        self.resolve_user(requested.as_deref())
            .map_err(|e| match e {
                UserError::Unknown(_) => ConnectError::new(Code::InvalidArgument, e.to_string()),
                UserError::Read { .. } => ConnectError::internal(e.to_string()),
            })
    }

    /// Where relative paths and processes start: the `/init` workdir, else home.
    pub fn workdir(&self, user: &User) -> PathBuf {
        self.defaults().workdir.unwrap_or_else(|| user.home.clone())
    }
}
