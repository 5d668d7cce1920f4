//! Build state the store keeps beside the cache index: the directories of
//! `RUN --mount=type=cache` (`cache/mounts/<sha256 of the id>`, persisting
//! between builds, outside any layer, never part of a cache key) and the
//! stat cache of context file digests.

use std::fs;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::Store;

impl Store {
    /// Where the build keeps its stat cache of context file digests.
    pub fn context_stat_cache_path(&self) -> PathBuf {
        self.root().join("cache").join("context-stat.json")
    }

    /// The persistent directory of cache mount `id`, made on first use
    /// (returns whether it was new, so the caller can set owner and mode).
    pub fn cache_mount_dir(&self, id: &str) -> Result<(PathBuf, bool)> {
        let dir = self
            .root()
            .join("cache")
            .join("mounts")
            .join(Digest::of(id.as_bytes()).hex());
        if dir.is_dir() {
            return Ok((dir, false));
        }
        fs::create_dir_all(&dir).map_err(StoreError::io("create cache mount", dir.clone()))?;
        Ok((dir, true))
    }
}
