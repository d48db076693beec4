//! The build context files of one COPY, packed on the host for unpacking
//! inside the build sandbox. Paths that leave the context or pass one of
//! its symlinks are refused; symlinks are packed as symlinks; entries are
//! owned by root with mtime 0 and packed in name order, so the same files
//! always pack to the same bytes (the step cache keys a COPY by them).

use std::path::{Component, Path, PathBuf};

/// The context files of one COPY, packed for unpacking at `unpack_dir`.
pub(super) struct Packed {
    pub archive: tempfile::NamedTempFile,
    pub unpack_dir: String,
    /// The paths the unpack creates at the top of `unpack_dir` (to chown).
    pub top: Vec<String>,
}

/// Packs `sources` (relative to `context`) for `dest`: into `dest` when it
/// is a directory (a directory source's contents, a file by its name), or
/// a single file as `dest`. Refuses paths that leave the context or pass a
/// symlink in it.
pub(super) async fn pack(
    context: &Path,
    sources: &[String],
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    let context = context.to_path_buf();
    let sources = sources.to_vec();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || pack_blocking(&context, &sources, &dest, chmod))
        .await
        .map_err(|e| e.to_string())?
}

fn pack_blocking(
    context: &Path,
    sources: &[String],
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    let archive = tempfile::NamedTempFile::new()
        .map_err(|e| format!("could not create a temporary file: {e}"))?;
    let mut tar = tar::Builder::new(archive.reopen().map_err(|e| e.to_string())?);
    tar.follow_symlinks(false);
    let into_dir = dest.ends_with('/');
    let (unpack_dir, single_name) = if into_dir {
        (dest.trim_end_matches('/').to_owned(), None)
    } else {
        let (parent, name) = dest.rsplit_once('/').unwrap_or(("", dest));
        (parent.to_owned(), Some(name.to_owned()))
    };
    let unpack_dir = if unpack_dir.is_empty() {
        "/".to_owned()
    } else {
        unpack_dir
    };
    let mut top = Vec::new();
    for source in sources {
        if source.contains(['*', '?', '[']) {
            return Err(format!(
                "{source}: wildcards in COPY sources are not supported; name the files"
            ));
        }
        let path = inside_context(context, source)?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("{source}: {e} (in the build context)"))?;
        if meta.is_dir() {
            if single_name.is_some() {
                // A directory copied to a path: its contents go there.
                return pack_dir_as(tar, archive, &path, dest, chmod);
            }
            for entry in sorted(&path).map_err(|e| format!("{source}: {e}"))? {
                let name = entry.file_name().to_string_lossy().into_owned();
                append(&mut tar, &entry.path(), Path::new(&name), chmod)?;
                top.push(format!("{unpack_dir}/{name}"));
            }
        } else {
            let base = Path::new(source)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = single_name.clone().unwrap_or(base);
            append(&mut tar, &path, Path::new(&name), chmod)?;
            top.push(format!("{}/{name}", unpack_dir.trim_end_matches('/')));
        }
    }
    tar.finish()
        .map_err(|e| format!("could not pack the context: {e}"))?;
    drop(tar);
    Ok(Packed {
        archive,
        unpack_dir,
        top,
    })
}

/// A directory source whose destination is a path, not `…/`.
fn pack_dir_as(
    mut tar: tar::Builder<std::fs::File>,
    archive: tempfile::NamedTempFile,
    dir: &Path,
    dest: &str,
    chmod: Option<u32>,
) -> Result<Packed, String> {
    for entry in sorted(dir).map_err(|e| e.to_string())? {
        let name = entry.file_name().to_string_lossy().into_owned();
        append(&mut tar, &entry.path(), Path::new(&name), chmod)?;
    }
    tar.finish()
        .map_err(|e| format!("could not pack the context: {e}"))?;
    drop(tar);
    Ok(Packed {
        archive,
        unpack_dir: dest.to_owned(),
        top: vec![dest.to_owned()],
    })
}

/// Adds `path` (recursively, symlinks as symlinks) under `name`, owned by
/// root, with `chmod` as every entry's mode if given.
fn append(
    tar: &mut tar::Builder<std::fs::File>,
    path: &Path,
    name: &Path,
    chmod: Option<u32>,
) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", name.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata(&meta);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    if let Some(mode) = chmod
        && !meta.file_type().is_symlink()
    {
        header.set_mode(mode);
    }
    let fail = |e: std::io::Error| format!("could not pack {}: {e}", name.display());
    if meta.is_dir() {
        header.set_size(0);
        tar.append_data(&mut header, name, std::io::empty())
            .map_err(fail)?;
        for entry in sorted(path).map_err(fail)? {
            append(tar, &entry.path(), &name.join(entry.file_name()), chmod)?;
        }
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(fail)?;
        header.set_size(0);
        tar.append_link(&mut header, name, target).map_err(fail)?;
    } else if meta.is_file() {
        let file = std::fs::File::open(path).map_err(fail)?;
        tar.append_data(&mut header, name, file).map_err(fail)?;
    }
    Ok(())
}

/// `source` under `context`, refusing `..` above it and symlinks on the way.
fn inside_context(context: &Path, source: &str) -> Result<PathBuf, String> {
    let mut path = context.to_path_buf();
    let parts: Vec<_> = Path::new(source.trim_start_matches('/'))
        .components()
        .collect();
    for (i, part) in parts.iter().enumerate() {
        match part {
            Component::Normal(p) => path.push(p),
            Component::CurDir => continue,
            _ => {
                return Err(format!(
                    "{source}: COPY sources stay inside the build context"
                ));
            }
        }
        let last = i + 1 == parts.len();
        if !last && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!("{source}: passes a symlink in the build context"));
        }
    }
    Ok(path)
}

/// The entries of `dir`, by name.
fn sorted(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}
