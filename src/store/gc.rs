//! Garbage collection and prune.
//!
//! gc is mark and sweep under the store lock. Roots: every image record
//! (config, manifest, index, layers), every manifest list (its index blob,
//! instance manifests and the blobs of its attestation entries; its images are records, so roots already, and
//! prune never removes them), every cache entry, every working
//! container, every live lease (what it names, plus everything written or
//! renewed since it began — see `lock.rs`). Marking a layer marks its
//! parents and its compressed blobs. Unmarked layers and blobs are removed,
//! and so are `tmp/` entries whose owning pid is dead. `prune` first removes
//! dangling images (no names), as `buildah rmi --prune` does.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::digest::Digest;
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{self, remove_tree};
use crate::store::layer::ChainId;
use crate::store::lock::LeaseRecord;
use crate::store::{ContainerRecord, Store};

/// File timestamps are coarse (a clock tick behind `now`): an object written
/// just after a lease began can carry an mtime slightly before it.
const LEASE_SLACK: Duration = Duration::from_secs(2);

/// Blobs larger than this are not scanned for the digests they reference.
const JSON_SCAN_LIMIT: u64 = 4 << 20;

/// What gc removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs_removed: Vec<Digest>,
    /// Extracted layers removed.
    pub layers_removed: Vec<ChainId>,
    /// Staging entries of dead processes.
    pub tmp_removed: Vec<PathBuf>,
    /// Bytes of removed blobs (layer dirs are not measured).
    pub blob_bytes_freed: u64,
}

/// What prune removed: dangling images, then what gc found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PruneReport {
    /// Dangling images removed.
    pub images_removed: Vec<Digest>,
    /// What the gc after it removed.
    pub gc: GcReport,
}

/// Everything gc must keep.
#[derive(Default)]
struct Marks {
    blobs: BTreeSet<Digest>,
    layers: BTreeSet<ChainId>,
}

impl Marks {
    /// Marks `chain`, its parents and their compressed blobs.
    fn layer(&mut self, store: &Store, chain: &ChainId) {
        let mut next = Some(*chain);
        while let Some(c) = next {
            if !self.layers.insert(c) {
                return; // Already marked, and so are its parents.
            }
            next = match store.layer_meta(&c) {
                Ok(meta) => {
                    self.blobs
                        .extend(meta.compressed.values().map(|b| b.digest));
                    meta.parent
                }
                Err(_) => None,
            };
        }
    }

    /// Marks a JSON blob and every `sha256:` digest inside it that names a
    /// stored blob (a manifest's config, an index's manifests).
    fn json_blob(&mut self, store: &Store, digest: &Digest) {
        if !self.blobs.insert(*digest) {
            return;
        }
        // Configs, manifests and indexes are small; layer blobs are not
        // JSON and may be gigabytes, so they are not read at all.
        if !store.blob_size(digest).is_ok_and(|n| n <= JSON_SCAN_LIMIT) {
            return;
        }
        let Ok(bytes) = store.read_blob(digest) else {
            return;
        };
        if bytes.first() != Some(&b'{') {
            return;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return;
        };
        let mut found = Vec::new();
        collect_digests(&value, &mut found);
        for d in found {
            if store.has_blob(&d) {
                self.json_blob(store, &d);
            }
        }
    }
}

fn collect_digests(value: &serde_json::Value, out: &mut Vec<Digest>) {
    match value {
        serde_json::Value::String(s) => {
            if let Ok(d) = s.parse::<Digest>() {
                out.push(d);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_digests(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_digests(v, out)),
        _ => {}
    }
}

fn mtime_nanos(path: &std::path::Path) -> Option<u64> {
    let m = fs::symlink_metadata(path).ok()?.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).ok()?.as_nanos() as u64)
}

impl Store {
    /// Removes blobs and layers nothing references, and dead processes'
    /// staging entries.
    pub fn gc(&self) -> Result<GcReport> {
        let _guard = self.lock()?;
        self.gc_locked()
    }

    /// Removes dangling images (no names, not used by a working container,
    /// not leased), then runs gc.
    pub fn prune(&self) -> Result<PruneReport> {
        let _guard = self.lock()?;
        let leases = self.live_leases()?;
        let leased: BTreeSet<Digest> = leases
            .iter()
            .flat_map(|l| l.images.iter().copied())
            .collect();
        let used: BTreeSet<Digest> = self
            .containers()?
            .into_iter()
            .filter_map(|c| c.image)
            .collect();
        let listed: BTreeSet<Digest> = self
            .lists_locked()?
            .into_iter()
            .flat_map(|l| l.instances.into_iter().map(|i| i.image))
            .collect();
        let mut images_removed = Vec::new();
        for rec in self.images()? {
            if rec.names.is_empty()
                && !leased.contains(&rec.id)
                && !used.contains(&rec.id)
                && !listed.contains(&rec.id)
            {
                self.remove_image_locked(&rec.id)?;
                images_removed.push(rec.id);
            }
        }
        let gc = self.gc_locked()?;
        Ok(PruneReport { images_removed, gc })
    }

    fn gc_locked(&self) -> Result<GcReport> {
        let leases = self.live_leases()?;
        let marks = self.mark(&leases)?;
        let mut report = GcReport::default();

        let doomed: Vec<ChainId> = self
            .layers()?
            .into_iter()
            .filter(|c| !marks.layers.contains(c))
            .collect();
        for chain in self.children_first(doomed) {
            self.remove_layer(&chain)?;
            report.layers_removed.push(chain);
        }
        let blobs = self.blobs_dir();
        for entry in fs::read_dir(&blobs).map_err(StoreError::io("list", &blobs))? {
            let entry = entry.map_err(StoreError::io("list", &blobs))?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if marks.blobs.contains(&digest) {
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    report.blobs_removed.push(digest);
                    report.blob_bytes_freed += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove blob", entry.path())(e)),
            }
        }
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(StoreError::io("list", &tmp))? {
            let entry = entry.map_err(StoreError::io("list", &tmp))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let made = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            if fsutil::owner_alive(&name, made) {
                continue;
            }
            remove_tree(&entry.path())?;
            report.tmp_removed.push(entry.path());
        }
        Ok(report)
    }

    /// Orders layers so each comes before its parent: a gc killed midway
    /// then leaves no layer whose parent is gone.
    fn children_first(&self, layers: Vec<ChainId>) -> Vec<ChainId> {
        let mut left: BTreeMap<ChainId, Option<ChainId>> = layers
            .into_iter()
            .map(|c| (c, self.layer_meta(&c).ok().and_then(|m| m.parent)))
            .collect();
        let mut out = Vec::with_capacity(left.len());
        while !left.is_empty() {
            let parents: BTreeSet<ChainId> = left.values().flatten().copied().collect();
            let mut leaves: Vec<ChainId> = left
                .keys()
                .filter(|c| !parents.contains(c))
                .copied()
                .collect();
            if leaves.is_empty() {
                // A parent cycle (corrupt meta): no order is right.
                leaves = left.keys().copied().collect();
            }
            for leaf in &leaves {
                left.remove(leaf);
            }
            out.extend(leaves);
        }
        out
    }

    fn mark(&self, leases: &[LeaseRecord]) -> Result<Marks> {
        let mut marks = Marks::default();
        for rec in self.images()? {
            marks.json_blob(self, &rec.id);
            marks.json_blob(self, &rec.manifest);
            if let Some(index) = &rec.index {
                marks.json_blob(self, index);
            }
            for layer in rec.layers.iter().chain(rec.top_layer.iter()) {
                marks.layer(self, layer);
            }
        }
        for list in self.lists_locked()? {
            for blob in list.blobs() {
                marks.json_blob(self, &blob);
            }
        }
        for (_, entry) in self.cache_entries()? {
            let Ok(entry) = entry else { continue };
            if let Some(l) = &entry.layer {
                marks.layer(self, l);
            }
            if let Some(b) = &entry.blob {
                marks.json_blob(self, b);
            }
        }
        for ContainerRecord { parent, .. } in self.containers()? {
            if let Some(p) = &parent {
                marks.layer(self, p);
            }
        }
        for lease in leases {
            lease.blobs.iter().for_each(|b| marks.json_blob(self, b));
            lease.layers.iter().for_each(|l| marks.layer(self, l));
        }
        // Objects made or renewed since the oldest live lease began belong to
        // a running build that has not recorded them yet.
        if let Some(since) = leases.iter().map(|l| l.started_unix_nanos).min() {
            let since = since.saturating_sub(LEASE_SLACK.as_nanos() as u64);
            for chain in self.layers()? {
                if mtime_nanos(&self.layer_dir(&chain)).is_some_and(|t| t >= since) {
                    marks.layer(self, &chain);
                }
            }
            let blobs = self.blobs_dir();
            for entry in fs::read_dir(&blobs).map_err(StoreError::io("list", &blobs))? {
                let entry = entry.map_err(StoreError::io("list", &blobs))?;
                if let Some(d) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| Digest::from_hex(n).ok())
                {
                    if mtime_nanos(&entry.path()).is_some_and(|t| t >= since) {
                        marks.json_blob(self, &d);
                    }
                }
            }
        }
        Ok(marks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_removed_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let mut chain = Vec::new();
        let mut parent = None;
        for i in 0..5 {
            let l = s
                .import_layer(parent.as_ref(), |_| {
                    Ok::<_, io::Error>((Digest::of(format!("{i}").as_bytes()), 1))
                })
                .unwrap();
            chain.push(l);
            parent = Some(l);
        }
        let side = s
            .import_layer(Some(&chain[1]), |_| {
                Ok::<_, io::Error>((Digest::of(b"side"), 1))
            })
            .unwrap();
        let order = s.children_first(s.layers().unwrap());
        let pos = |c: &ChainId| order.iter().position(|x| x == c).unwrap();
        for w in chain.windows(2) {
            assert!(pos(&w[1]) < pos(&w[0]));
        }
        assert!(pos(&side) < pos(&chain[1]));
        assert_eq!(order.len(), 6);
    }
}
