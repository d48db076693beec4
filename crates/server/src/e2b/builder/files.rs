//! The file sets of E2B builds' COPY steps.
//!
//! Protocol: for each COPY the SDK asks `GET /templates/{id}/files/{hash}`
//! (hash: its own SHA-256 over the paths and contents it will send); a set
//! the caller's team uploaded before is `present`, otherwise the answer
//! carries a URL to PUT the tar (gzipped or not) to. The SDK sends that
//! PUT without its API key, as to E2B's object store, so the URL carries
//! its own authority: `/e2b/uploads/{team}/{hash}?expires=…&signature=…`,
//! an HMAC-SHA256 under the daemon's `upload-secret` over team, hash and
//! expiry, good for [`URL_TTL_S`].
//!
//! Sets live at `<templates>/.e2b-files/<team>/<hash>`, one team's never
//! visible to another (whether a set is present says nothing across
//! teams). An upload is streamed to a temporary name beside its place,
//! refused past [`CONTEXT_LIMIT`], and renamed into place when complete,
//! so a set is either whole or absent. A set unused for [`KEEP_S`] is
//! deleted at the next upload. A build unpacks the sets it names with the
//! hostile-layer applier, so a tar cannot write outside its directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use warren_core::{ErrorKind, TeamId, WarrenError};
use warren_template::oci::{Applier, Limits};

use crate::auth::Pepper;
use crate::templates::CONTEXT_LIMIT;

/// How long an upload URL is good for.
pub const URL_TTL_S: i64 = 3600;
/// How long a set nobody used is kept.
pub const KEEP_S: u64 = 7 * 24 * 3600;
/// Where uploads arrive (a public route: the URL is its own authority).
pub const UPLOAD_ROUTE: &str = "/e2b/uploads/{team}/{hash}";

pub struct BuildFiles {
    dir: PathBuf,
    secret: Pepper,
}

/// The query of an upload URL.
#[derive(Debug, serde::Deserialize)]
pub struct Signed {
    pub expires: i64,
    pub signature: String,
}

impl BuildFiles {
    pub fn new(templates_dir: &Path, secret: Pepper) -> Self {
        Self {
            dir: templates_dir.join(".e2b-files"),
            secret,
        }
    }

    fn path(&self, team: &TeamId, hash: &str) -> PathBuf {
        self.dir.join(team.as_str()).join(hash)
    }

    /// Whether `team` uploaded the set `hash`.
    pub fn present(&self, team: &TeamId, hash: &str) -> bool {
        self.path(team, hash).is_file()
    }

    /// The path and query of the URL that takes `team`'s set `hash` until
    /// `now + URL_TTL_S`.
    pub fn upload_path(&self, team: &TeamId, hash: &str, now: i64) -> String {
        let expires = now + URL_TTL_S;
        let signature = URL_SAFE_NO_PAD.encode(self.mac(team, hash, expires));
        format!(
            "/e2b/uploads/{}/{hash}?expires={expires}&signature={signature}",
            team.as_str()
        )
    }

    fn mac(&self, team: &TeamId, hash: &str, expires: i64) -> Vec<u8> {
        self.secret
            .mac(format!("e2b-upload\n{}\n{hash}\n{expires}", team.as_str()).as_bytes())
    }

    /// Whether `signed` authorises an upload of `team`'s set `hash` now.
    pub fn check(
        &self,
        team: &TeamId,
        hash: &str,
        signed: &Signed,
        now: i64,
    ) -> Result<(), WarrenError> {
        let given = URL_SAFE_NO_PAD
            .decode(&signed.signature)
            .unwrap_or_default();
        let expected = self.mac(team, hash, signed.expires);
        if !bool::from(given.ct_eq(&expected)) {
            return Err(WarrenError::new(
                ErrorKind::Unauthenticated,
                "the upload URL's signature does not match; ask GET /templates/{id}/files/{hash} for a new one",
            ));
        }
        if now > signed.expires {
            return Err(WarrenError::new(
                ErrorKind::Unauthenticated,
                "the upload URL has expired; ask GET /templates/{id}/files/{hash} for a new one",
            ));
        }
        Ok(())
    }

    /// Streams `body` into place as `team`'s set `hash`.
    pub async fn receive<S, E>(&self, team: &TeamId, hash: &str, body: S) -> Result<(), WarrenError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let dir = self.dir.join(team.as_str());
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| WarrenError::internal(format!("could not make {}: {e}", dir.display())))?;
        self.sweep().await;
        let temp = tempfile::Builder::new()
            .prefix(".upload-")
            .tempfile_in(&dir)
            .map_err(|e| WarrenError::internal(format!("could not make an upload file: {e}")))?;
        let mut file = tokio::fs::File::from_std(
            temp.reopen()
                .map_err(|e| WarrenError::internal(format!("could not open the upload: {e}")))?,
        );
        let mut body = body;
        let mut total: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| WarrenError::invalid(format!("the upload broke off: {e}")))?;
            total += chunk.len() as u64;
            if total > CONTEXT_LIMIT {
                return Err(WarrenError::new(
                    ErrorKind::PayloadTooLarge,
                    format!("a COPY's files may be at most {CONTEXT_LIMIT} bytes packed"),
                ));
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| WarrenError::internal(format!("could not write the upload: {e}")))?;
        }
        file.sync_all()
            .await
            .map_err(|e| WarrenError::internal(format!("could not write the upload: {e}")))?;
        temp.persist(self.path(team, hash))
            .map_err(|e| WarrenError::internal(format!("could not keep the upload: {e}")))?;
        Ok(())
    }

    /// Unpacks `team`'s set `hash` into `into` (created).
    pub fn unpack(&self, team: &TeamId, hash: &str, into: &Path) -> Result<(), WarrenError> {
        let path = self.path(team, hash);
        let file = std::fs::File::open(&path).map_err(|_| {
            WarrenError::invalid(format!(
                "the files of COPY {hash} were not uploaded: GET /templates/{{id}}/files/{hash} gives the URL to upload them to"
            ))
        })?;
        // In use: not swept for another KEEP_S.
        let _ = file.set_modified(SystemTime::now());
        std::fs::create_dir_all(into).map_err(|e| {
            WarrenError::internal(format!("could not make {}: {e}", into.display()))
        })?;
        let limits = Limits {
            max_bytes: CONTEXT_LIMIT * 4,
            max_entries: 200_000,
        };
        let mut applier =
            Applier::new(into, limits).map_err(|e| WarrenError::internal(e.to_string()))?;
        let reader = warren_template::oci::decompress(Box::new(file), hash)
            .map_err(|e| WarrenError::invalid(e.to_string()))?;
        applier.apply(1, reader).map_err(|e| {
            WarrenError::invalid(format!(
                "the files of COPY {hash} are not a usable tar: {e}"
            ))
        })?;
        Ok(())
    }

    /// Deletes sets unused for [`KEEP_S`] and uploads that never finished.
    async fn sweep(&self) {
        let dir = self.dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let keep = Duration::from_secs(KEEP_S);
            let teams = std::fs::read_dir(&dir).into_iter().flatten().flatten();
            for team in teams {
                let sets = std::fs::read_dir(team.path())
                    .into_iter()
                    .flatten()
                    .flatten();
                for set in sets {
                    let age = set
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok());
                    let stale_upload = set.file_name().to_string_lossy().starts_with(".upload-")
                        && age.is_some_and(|a| a > Duration::from_secs(URL_TTL_S as u64 * 2));
                    if stale_upload || age.is_some_and(|a| a > keep) {
                        let _ = std::fs::remove_file(set.path());
                    }
                }
            }
        })
        .await;
    }
}
