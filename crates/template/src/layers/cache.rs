//! Layers on disk, by key, within a size cap (see the module docs above).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::LayerError;

/// A temporary layer file untouched this long is a crash's leftover.
pub const STALE_TEMP: Duration = Duration::from_secs(600);
const TEMP_PREFIX: &str = ".tmp-";
const SUFFIX: &str = ".tar";

/// Size bounds of a [`LayerCache`].
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// All layers together.
    pub total: u64,
    /// One layer; a larger one is not kept.
    pub per_layer: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            total: 20 << 30,
            per_layer: 4 << 30,
        }
    }
}

impl Caps {
    /// The default caps, the total at most a quarter of the filesystem
    /// holding `dir`.
    pub fn for_dir(dir: &Path) -> Self {
        let mut caps = Self::default();
        if let Ok(fs) = nix::sys::statvfs::statvfs(dir) {
            let quarter = fs.blocks().saturating_mul(fs.fragment_size()) / 4;
            caps.total = caps.total.min(quarter);
            caps.per_layer = caps.per_layer.min(caps.total);
        }
        caps
    }
}

/// The layer directory; see the module docs.
#[derive(Debug, Clone)]
pub struct LayerCache {
    dir: PathBuf,
    caps: Caps,
}

impl LayerCache {
    /// Opens (creating) `dir` and sweeps stale temporaries.
    pub fn open(dir: impl Into<PathBuf>, caps: Caps) -> Result<Self, LayerError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(LayerError::io(format!("create {}", dir.display())))?;
        let cache = Self { dir, caps };
        cache.sweep(STALE_TEMP)?;
        Ok(cache)
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes temporaries not modified for `age`.
    pub fn sweep(&self, age: Duration) -> Result<(), LayerError> {
        let now = SystemTime::now();
        for (path, name, modified, _) in self.files()? {
            if name.starts_with(TEMP_PREFIX)
                && now.duration_since(modified).unwrap_or_default() >= age
            {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{SUFFIX}"))
    }

    /// The layer of `key`, opened (so it cannot vanish while read) and
    /// marked used.
    pub fn get(&self, key: &str) -> Option<File> {
        if !valid_key(key) {
            return None;
        }
        let file = File::open(self.path(key)).ok()?;
        let _ = file.set_modified(SystemTime::now());
        Some(file)
    }

    /// Drops the layer of `key` (say, one that would not apply).
    pub fn remove(&self, key: &str) {
        if valid_key(key) {
            let _ = fs::remove_file(self.path(key));
        }
    }

    /// Keeps the layer `write` produces under `key`: written to a
    /// temporary, refused past the per-layer cap (`size` is what it will
    /// roughly hold, checked first), then older layers dropped until it
    /// fits, then renamed into place. Returns the layer's size, or `None`
    /// when it was not kept for its size.
    pub fn put(
        &self,
        key: &str,
        size: u64,
        write: impl FnOnce(&mut dyn Write) -> Result<(), LayerError>,
    ) -> Result<Option<u64>, LayerError> {
        if !valid_key(key) {
            return Err(LayerError::NotCacheable(format!("{key:?} is not a key")));
        }
        if size > self.caps.per_layer {
            return Ok(None);
        }
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(SUFFIX)
            .tempfile_in(&self.dir)
            .map_err(LayerError::io(format!(
                "create a layer in {}",
                self.dir.display()
            )))?;
        {
            let mut out = BufWriter::new(temp.as_file());
            write(&mut out)?;
            out.flush().map_err(LayerError::io("write a layer"))?;
        }
        temp.as_file()
            .sync_all()
            .map_err(LayerError::io("sync a layer"))?;
        let len = temp
            .as_file()
            .metadata()
            .map_err(LayerError::io("stat a layer"))?
            .len();
        if len > self.caps.per_layer || len > self.caps.total {
            return Ok(None);
        }
        self.make_room(len)?;
        temp.persist(self.path(key))
            .map_err(|e| LayerError::io("keep a layer")(e.error))?;
        Ok(Some(len))
    }

    /// Drops least recently used layers until `len` more bytes fit.
    fn make_room(&self, len: u64) -> Result<(), LayerError> {
        let mut layers: Vec<_> = self
            .files()?
            .into_iter()
            .filter(|(_, name, _, _)| !name.starts_with(TEMP_PREFIX) && name.ends_with(SUFFIX))
            .collect();
        let mut used: u64 = layers.iter().map(|l| l.3).sum();
        layers.sort_by_key(|l| l.2);
        for (path, _, _, size) in layers {
            if used + len <= self.caps.total {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                used -= size;
            }
        }
        Ok(())
    }

    /// (path, name, mtime, size) of every file in the directory.
    fn files(&self) -> Result<Vec<(PathBuf, String, SystemTime, u64)>, LayerError> {
        let list = |e| LayerError::io(format!("list {}", self.dir.display()))(e);
        let mut out = Vec::new();
        for item in fs::read_dir(&self.dir).map_err(list)? {
            let item = item.map_err(list)?;
            let Ok(meta) = item.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = item.file_name().to_string_lossy().into_owned();
            out.push((item.path(), name, modified, meta.len()));
        }
        Ok(out)
    }
}

/// Keys are lowercase hex digests; nothing else names a file here.
fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
