//! The build cache index: `cache/<key-hex>.json`, one entry per cache key.
//!
//! The executor computes the key (parent, instruction, inputs); the store
//! only keeps the result and checks on read that what it names still exists,
//! dropping entries whose layer or blob gc or a manual removal took away.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{read_json, write_json};
use crate::store::layer::ChainId;
use crate::store::Store;

/// What a cached build step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The resulting layer, or `None` for metadata-only steps (ENV, CMD, …).
    pub layer: Option<ChainId>,
    /// A blob the executor stored for this step (config and history after it).
    #[serde(default)]
    pub blob: Option<Digest>,
    /// Small inline data the executor wants back verbatim.
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Store {
    /// The entry for `key`, if present and everything it names still exists.
    pub fn cache_get(&self, key: &Digest) -> Result<Option<CacheEntry>> {
        let path = self.cache_path(key);
        let entry = match read_json::<CacheEntry>(&path) {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(None),
            Err(StoreError::Corrupt { .. }) => {
                log::warn!("dropping unreadable cache entry {}", path.display());
                self.cache_drop(key)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if self.cache_entry_valid(&entry) {
            Ok(Some(entry))
        } else {
            self.cache_drop(key)?;
            Ok(None)
        }
    }

    pub(crate) fn cache_entry_valid(&self, entry: &CacheEntry) -> bool {
        entry.layer.is_none_or(|l| self.has_layer(&l))
            && entry.blob.is_none_or(|b| self.has_blob(&b))
    }

    /// Stores the entry for `key` atomically (replacing any older one).
    pub fn cache_put(&self, key: &Digest, entry: &CacheEntry) -> Result<()> {
        // Checked under the lock so gc cannot remove a part in between.
        let _guard = self.lock()?;
        if let Some(l) = &entry.layer {
            if !self.has_layer(l) {
                return Err(StoreError::LayerNotFound(*l));
            }
        }
        if let Some(b) = &entry.blob {
            if !self.has_blob(b) {
                return Err(StoreError::BlobNotFound(*b));
            }
        }
        write_json(&self.tmp_dir(), &self.cache_path(key), entry)
    }

    fn cache_drop(&self, key: &Digest) -> Result<()> {
        let _guard = self.lock()?;
        let path = self.cache_path(key);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StoreError::io("remove cache entry", path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Drops every cache entry (`prune --all`); the layers and blobs they
    /// kept go at the next gc unless something else uses them.
    pub fn clear_cache(&self) -> Result<usize> {
        self.prune_cache(None)
    }

    /// Drops the cache entries last written before `until` (all when
    /// `None`), as `cache prune --filter until=…` asks; and with `None`
    /// also the `RUN --mount=type=cache` directories.
    pub fn prune_cache(&self, until: Option<std::time::SystemTime>) -> Result<usize> {
        let _guard = self.lock()?;
        let mut removed = 0;
        if until.is_none() {
            let mounts = self.cache_dir().join("mounts");
            if mounts.is_dir() {
                crate::store::fsutil::remove_tree(&mounts)?;
            }
        }
        for (key, _) in self.cache_entries()? {
            let path = self.cache_path(&key);
            if let Some(until) = until {
                let written = fs::metadata(&path).and_then(|m| m.modified());
                if matches!(written, Ok(t) if t >= until) {
                    continue;
                }
            }
            match fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove cache entry", path)(e)),
            }
        }
        Ok(removed)
    }

    /// Every cache key and its entry, unvalidated (for gc and fsck).
    pub(crate) fn cache_entries(
        &self,
    ) -> Result<Vec<(Digest, std::result::Result<CacheEntry, StoreError>)>> {
        let dir = self.cache_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let name = entry.file_name();
            let Some(key) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|h| Digest::from_hex(h).ok())
            else {
                continue;
            };
            let parsed = read_json::<CacheEntry>(&entry.path()).and_then(|e| {
                e.ok_or_else(|| StoreError::Corrupt {
                    path: entry.path(),
                    reason: "vanished while reading".into(),
                })
            });
            out.push((key, parsed));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_stale_layer_drops_entry() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"RUN make");
        assert_eq!(s.cache_get(&key).unwrap(), None);
        let layer = s
            .import_layer(None, |_| Ok::<_, io::Error>((Digest::of(b"l"), 1)))
            .unwrap();
        let blob = s.put_blob(b"{}").unwrap();
        let entry = CacheEntry {
            layer: Some(layer),
            blob: Some(blob),
            data: serde_json::json!({"created_by": "RUN make"}),
        };
        s.cache_put(&key, &entry).unwrap();
        assert_eq!(s.cache_get(&key).unwrap(), Some(entry.clone()));
        s.remove_layer(&layer).unwrap();
        assert_eq!(s.cache_get(&key).unwrap(), None);
        assert!(!s.cache_path(&key).exists());
        assert!(s.cache_put(&key, &entry).unwrap_err().is_not_found());
    }

    #[test]
    fn metadata_only_entries_have_no_layer() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"ENV A=1");
        let entry = CacheEntry {
            layer: None,
            blob: None,
            data: serde_json::Value::Null,
        };
        s.cache_put(&key, &entry).unwrap();
        assert_eq!(s.cache_get(&key).unwrap(), Some(entry));
        assert_eq!(s.clear_cache().unwrap(), 1);
        assert_eq!(s.cache_get(&key).unwrap(), None);
    }
}
