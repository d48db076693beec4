//! `warren cp`: copy one file into or out of a sandbox.
//!
//! Uploads stream the local file as the request body (never held in memory).
//! Downloads stream into a temporary file next to the destination, which is
//! renamed over it only once every byte has arrived, so an interrupted copy
//! never leaves a truncated file behind.

use std::ffi::OsString;
use std::fs::Permissions;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;
use warren_core::SandboxId;

use super::Ctx;
use crate::client::Client;
use crate::exit;
use crate::location::{self, Transfer};
use crate::output::{Output, human_bytes};

/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 1024 * 1024;
/// Read size for uploads.
const CHUNK: usize = 256 * 1024;

/// Copy a file between this machine and a sandbox.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exactly one of SRC and DST is ID:/absolute/path. A remote DST ending in '/'
and a local DST that is a directory keep the source's file name.
A local DST of `-` writes to stdout. Directories are not supported yet:
pack them with tar first.

Examples:
  warren cp ./data.csv $ID:/home/user/data.csv
  warren cp ./model.bin $ID:/tmp/
  warren cp $ID:/home/user/out.png .
  warren cp $ID:/var/log/app.log - | tail")]
pub struct Args {
    /// Source: a local file or ID:/path.
    #[arg(value_name = "SRC")]
    src: OsString,
    /// Destination: a local path or ID:/path.
    #[arg(value_name = "DST")]
    dst: OsString,
    /// User whose permissions apply inside the sandbox [default: user].
    #[arg(short, long, value_name = "USER")]
    user: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<i32> {
    let transfer = location::transfer(&args.src, &args.dst)?;
    let client = ctx.client()?;
    let remote_side = RemoteSide {
        client: &client,
        user: args.user.as_deref(),
    };
    match transfer {
        Transfer::Upload { local, id, remote } => {
            upload(remote_side, ctx.out, &local, &id, &remote).await?;
        }
        Transfer::Download { id, remote, local } => {
            download(remote_side, ctx.out, &id, &remote, &local).await?;
        }
    }
    Ok(exit::OK)
}

/// The daemon and the user the transfer acts as inside the sandbox.
#[derive(Clone, Copy)]
struct RemoteSide<'a> {
    client: &'a Client,
    user: Option<&'a str>,
}

async fn upload(
    remote_side: RemoteSide<'_>,
    out: Output,
    local: &Path,
    id: &SandboxId,
    remote: &str,
) -> anyhow::Result<()> {
    let meta = tokio::fs::metadata(local)
        .await
        .with_context(|| format!("cannot read {}", local.display()))?;
    if meta.is_dir() {
        bail!(
            "{} is a directory: directories are not supported yet; use tar to pack it into one file and copy that",
            local.display()
        );
    }
    // Ask first: a daemon that refuses the upload mid-body resets the
    // connection, and its answer can be lost with it.
    remote_side.client.get(id).await?;
    let file = tokio::fs::File::open(local)
        .await
        .with_context(|| format!("cannot open {}", local.display()))?;
    let target = location::upload_target(remote, local);
    let size = meta.is_file().then_some(meta.len());
    let bar = progress_bar(out, size);
    let counter = bar.clone();
    let stream = ReaderStream::with_capacity(file, CHUNK).inspect(move |chunk| {
        if let Ok(c) = chunk {
            counter.inc(c.len() as u64);
        }
    });
    let result = remote_side
        .client
        .upload(
            id,
            &target,
            remote_side.user,
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    bar.finish_and_clear();
    let written = result?;
    if out.json {
        out.json(&written)?;
    } else {
        out.note(&format!(
            "copied {} to {id}:{}",
            human_bytes(written.size),
            written.path
        ));
    }
    Ok(())
}

async fn download(
    remote_side: RemoteSide<'_>,
    out: Output,
    id: &SandboxId,
    remote: &str,
    local: &Path,
) -> anyhow::Result<()> {
    if is_stream_target(local) {
        return download_to_stream(remote_side, out, id, remote, local).await;
    }
    let target = download_target(local, remote)?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    // Created before the request so a bad destination fails fast; removed
    // on every error path when `tmp` is dropped.
    let tmp = tempfile::Builder::new()
        .prefix(".warren-cp-")
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let mut file = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .context("cannot reopen the temporary file")?,
    );

    let resp = remote_side
        .client
        .download(id, remote, remote_side.user)
        .await?;
    let expected = resp.content_length();
    let bar = progress_bar(out, expected);
    let mut body = resp.bytes_stream();
    let mut received: u64 = 0;
    let write_err = || format!("cannot write to {}", tmp.path().display());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the download broke off")?;
        file.write_all(&chunk).await.with_context(write_err)?;
        received += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if let Some(expected) = expected
        && expected != received
    {
        bail!(
            "the download broke off after {received} of {expected} bytes; {} was left unchanged",
            target.display()
        );
    }
    file.flush().await.with_context(write_err)?;
    file.sync_all().await.with_context(write_err)?;
    drop(file);
    tmp.persist(&target).with_context(|| {
        format!(
            "cannot move the download into place at {}",
            target.display()
        )
    })?;

    if out.json {
        out.json(&json!({ "path": target, "size": received }))?;
    } else {
        out.note(&format!(
            "copied {} to {}",
            human_bytes(received),
            target.display()
        ));
    }
    Ok(())
}

/// `-`, or an existing destination that is neither a file nor a directory
/// (a terminal, `/dev/null`, a FIFO): written in place, never replaced.
fn is_stream_target(local: &Path) -> bool {
    local.as_os_str() == "-" || std::fs::metadata(local).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Streams a download straight into stdout or a special file.
async fn download_to_stream(
    remote_side: RemoteSide<'_>,
    out: Output,
    id: &SandboxId,
    remote: &str,
    local: &Path,
) -> anyhow::Result<()> {
    let (mut sink, name): (Box<dyn tokio::io::AsyncWrite + Unpin + Send>, String) =
        if local.as_os_str() == "-" {
            (Box::new(tokio::io::stdout()), "stdout".into())
        } else {
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .open(local)
                .await
                .with_context(|| format!("cannot open {}", local.display()))?;
            (Box::new(f), local.display().to_string())
        };
    let resp = remote_side
        .client
        .download(id, remote, remote_side.user)
        .await?;
    let mut body = resp.bytes_stream();
    let mut received: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.context("the download broke off")?;
        sink.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write to {name}"))?;
        received += chunk.len() as u64;
    }
    sink.flush()
        .await
        .with_context(|| format!("cannot write to {name}"))?;
    if out.json && local.as_os_str() != "-" {
        out.json(&json!({ "path": local, "size": received }))?;
    }
    Ok(())
}

/// Where a download lands: into an existing directory under the remote
/// file's name, else at `local` itself.
fn download_target(local: &Path, remote: &str) -> anyhow::Result<PathBuf> {
    let names_dir = local.is_dir() || local.as_os_str().to_string_lossy().ends_with('/');
    if !names_dir {
        return Ok(local.to_owned());
    }
    let Some(name) = location::remote_file_name(remote) else {
        bail!("{remote} names no file; give the local file name explicitly");
    };
    Ok(local.join(name))
}

/// A byte progress bar on stderr for large transfers to a terminal, else hidden.
fn progress_bar(out: Output, size: Option<u64>) -> ProgressBar {
    let show = !out.quiet
        && !out.json
        && size.is_some_and(|s| s >= PROGRESS_THRESHOLD)
        && std::io::stderr().is_terminal();
    let Some(size) = size.filter(|_| show) else {
        return ProgressBar::hidden();
    };
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_into_directories_keep_the_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            download_target(dir.path(), "/a/b.txt").unwrap(),
            dir.path().join("b.txt")
        );
        assert_eq!(
            download_target(&dir.path().join("c"), "/a/b.txt").unwrap(),
            dir.path().join("c")
        );
        assert!(download_target(dir.path(), "/a/").is_err());
    }
}
