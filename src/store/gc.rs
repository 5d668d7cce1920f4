//! Garbage collection, prune and fsck.
//!
//! gc is mark and sweep under the store lock. Roots: every image record
//! (config, manifest, index, layers), every cache entry, every working
//! container, every live lease (what it names, plus everything written or
//! renewed since it began — see `lock.rs`). Marking a layer marks its
//! parents and its compressed blobs. Unmarked layers and blobs are removed,
//! and so are `tmp/` entries whose owning pid is dead. `prune` first removes
//! dangling images (no names), as `buildah rmi --prune` does.
//! fsck re-hashes every blob and checks every index entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use crate::digest::{Digest, DigestWriter};
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{self, read_json, remove_tree};
use crate::store::layer::{ChainId, LayerMeta};
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

/// One inconsistency fsck found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose bytes do not hash to its file name.
    BlobCorrupt { path: PathBuf, actual: Digest },
    /// A file or directory whose name is not a valid digest where one must be.
    Stray { path: PathBuf },
    /// A store file that cannot be read or parsed.
    Unreadable { path: PathBuf, reason: String },
    /// A layer whose meta.json does not give back its chain ID.
    LayerChainMismatch { layer: ChainId, computed: ChainId },
    /// A layer without its `diff/` directory.
    LayerDiffMissing { layer: ChainId },
    /// An index entry (at `path`) naming a layer that is not there.
    MissingLayer { path: PathBuf, layer: ChainId },
    /// An index entry (at `path`) naming a blob that is not there.
    MissingBlob { path: PathBuf, blob: Digest },
    /// A name in the names index pointing at an image that is not there.
    DanglingName { name: String, image: Digest },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BlobCorrupt { path, actual } => {
                write!(
                    f,
                    "{}: content hashes to {actual}, not its name",
                    path.display()
                )
            }
            Problem::Stray { path } => write!(
                f,
                "{}: unexpected entry (name is not a digest)",
                path.display()
            ),
            Problem::Unreadable { path, reason } => write!(f, "{}: {reason}", path.display()),
            Problem::LayerChainMismatch { layer, computed } => {
                write!(f, "layer {layer}: its meta.json gives chain ID {computed}")
            }
            Problem::LayerDiffMissing { layer } => {
                write!(f, "layer {layer}: diff/ directory missing")
            }
            Problem::MissingLayer { path, layer } => {
                write!(
                    f,
                    "{}: refers to layer {layer}, which is not in the store",
                    path.display()
                )
            }
            Problem::MissingBlob { path, blob } => {
                write!(
                    f,
                    "{}: refers to blob {blob}, which is not in the store",
                    path.display()
                )
            }
            Problem::DanglingName { name, image } => {
                write!(
                    f,
                    "name {name:?} points at image {image}, which is not in the store"
                )
            }
        }
    }
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
        let mut images_removed = Vec::new();
        for rec in self.images()? {
            if rec.names.is_empty() && !leased.contains(&rec.id) && !used.contains(&rec.id) {
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

    /// Re-hashes every blob and checks every index entry; an empty list
    /// means the store is consistent. Staging entries in `tmp/` are not
    /// problems (gc removes them).
    pub fn fsck(&self) -> Result<Vec<Problem>> {
        let _guard = self.lock()?;
        let mut problems = Vec::new();
        self.fsck_blobs(&mut problems)?;
        self.fsck_layers(&mut problems)?;
        self.fsck_images(&mut problems)?;
        for (key, entry) in self.cache_entries()? {
            let path = self.cache_path(&key);
            match entry {
                Err(e) => problems.push(Problem::Unreadable {
                    path,
                    reason: e.to_string(),
                }),
                Ok(entry) => {
                    if let Some(l) = entry.layer.filter(|l| !self.has_layer(l)) {
                        problems.push(Problem::MissingLayer {
                            path: path.clone(),
                            layer: l,
                        });
                    }
                    if let Some(b) = entry.blob.filter(|b| !self.has_blob(b)) {
                        problems.push(Problem::MissingBlob { path, blob: b });
                    }
                }
            }
        }
        let leases = self.leases_dir();
        for entry in fs::read_dir(&leases).map_err(StoreError::io("list", &leases))? {
            let path = entry.map_err(StoreError::io("list", &leases))?.path();
            if let Err(e) = read_json::<LeaseRecord>(&path) {
                problems.push(Problem::Unreadable {
                    path,
                    reason: e.to_string(),
                });
            }
        }
        let containers = self.containers_dir();
        for entry in fs::read_dir(&containers).map_err(StoreError::io("list", &containers))? {
            let entry = entry.map_err(StoreError::io("list", &containers))?;
            let path = entry.path().join("container.json");
            match read_json::<ContainerRecord>(&path) {
                Ok(Some(rec)) => {
                    if let Some(p) = rec.parent.filter(|p| !self.has_layer(p)) {
                        problems.push(Problem::MissingLayer { path, layer: p });
                    }
                }
                Ok(None) => problems.push(Problem::Unreadable {
                    path,
                    reason: "missing".into(),
                }),
                Err(e) => problems.push(Problem::Unreadable {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(problems)
    }

    fn fsck_blobs(&self, problems: &mut Vec<Problem>) -> Result<()> {
        let dir = self.blobs_dir();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let path = entry.path();
            let Some(expected) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                problems.push(Problem::Stray { path });
                continue;
            };
            let hashed = fs::File::open(&path).and_then(|mut f| {
                let mut w = DigestWriter::new(io::sink());
                io::copy(&mut f, &mut w)?;
                Ok(w.finish().1)
            });
            match hashed {
                Ok(actual) if actual == expected => {}
                Ok(actual) => problems.push(Problem::BlobCorrupt { path, actual }),
                Err(e) => problems.push(Problem::Unreadable {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    fn fsck_layers(&self, problems: &mut Vec<Problem>) -> Result<()> {
        let dir = self.layers_dir();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let Some(chain) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
                .map(ChainId::from_digest)
            else {
                problems.push(Problem::Stray { path: entry.path() });
                continue;
            };
            let meta_path = self.layer_meta_path(&chain);
            let meta = match read_json::<LayerMeta>(&meta_path) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    problems.push(Problem::Unreadable {
                        path: meta_path,
                        reason: "missing".into(),
                    });
                    continue;
                }
                Err(e) => {
                    problems.push(Problem::Unreadable {
                        path: meta_path,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            let computed = ChainId::new(meta.parent.as_ref(), &meta.diff_id);
            if computed != chain || meta.chain_id != chain {
                problems.push(Problem::LayerChainMismatch {
                    layer: chain,
                    computed,
                });
            }
            if !self.layer_diff_path(&chain).is_dir() {
                problems.push(Problem::LayerDiffMissing { layer: chain });
            }
            if let Some(p) = meta.parent.filter(|p| !self.has_layer(p)) {
                problems.push(Problem::MissingLayer {
                    path: meta_path.clone(),
                    layer: p,
                });
            }
            for blob in meta.compressed.values() {
                if !self.has_blob(&blob.digest) {
                    problems.push(Problem::MissingBlob {
                        path: meta_path.clone(),
                        blob: blob.digest,
                    });
                }
            }
        }
        Ok(())
    }

    fn fsck_images(&self, problems: &mut Vec<Problem>) -> Result<()> {
        let names = match self.name_index() {
            Ok(n) => n,
            Err(e) => {
                problems.push(Problem::Unreadable {
                    path: self.names_path(),
                    reason: e.to_string(),
                });
                Default::default()
            }
        };
        let ids = self.stored_image_ids()?;
        for (name, id) in &names {
            if !ids.contains(id) {
                problems.push(Problem::DanglingName {
                    name: name.clone(),
                    image: *id,
                });
            }
        }
        let dir = self.images_dir();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_record = name
                .strip_suffix(".json")
                .is_some_and(|h| Digest::from_hex(h).is_ok());
            if !is_record && name != "names.json" {
                problems.push(Problem::Stray { path: entry.path() });
            }
        }
        for id in ids {
            let path = self.image_path(&id);
            let rec = match self.image(&id) {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Problem::Unreadable {
                        path,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            for blob in [Some(rec.id), Some(rec.manifest), rec.index]
                .into_iter()
                .flatten()
            {
                if !self.has_blob(&blob) {
                    problems.push(Problem::MissingBlob {
                        path: path.clone(),
                        blob,
                    });
                }
            }
            for layer in rec.layers.iter().chain(rec.top_layer.iter()) {
                if !self.has_layer(layer) {
                    problems.push(Problem::MissingLayer {
                        path: path.clone(),
                        layer: *layer,
                    });
                }
            }
        }
        Ok(())
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
