//! fsck: re-hashes every blob and checks every index entry, so tests (and
//! users after a crash) can tell a consistent store from a damaged one.
//! Staging entries in `tmp/` are not problems: gc removes them.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestWriter};
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::read_json;
use crate::store::layer::{ChainId, LayerMeta};
use crate::store::lock::LeaseRecord;
use crate::store::{ContainerRecord, Store};

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
    /// A manifest list naming an image that is not there.
    ListMissingImage { list: String, image: Digest },
    /// A name held by an image and by a manifest list at once (a name
    /// means one thing; `rbuild tag` or `rmi` of one of them repairs it).
    NameOnImageAndList {
        name: String,
        image: Digest,
        list: Digest,
    },
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
            Problem::ListMissingImage { list, image } => {
                write!(
                    f,
                    "manifest list {list:?} holds image {image}, which is not in the store"
                )
            }
            Problem::NameOnImageAndList { name, image, list } => {
                write!(
                    f,
                    "name {name:?} names both image {image} and manifest list {list}; remove one (`rbuild rmi {name}` removes the list) or tag the other"
                )
            }
        }
    }
}

impl Store {
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

    /// Each list's blobs (index, manifests, attestations) and instance images.
    fn fsck_lists(
        &self,
        ids: &[Digest],
        names: &std::collections::BTreeMap<String, Digest>,
        problems: &mut Vec<Problem>,
    ) {
        let path = self.images_dir().join("lists.json");
        let lists = match self.lists_locked() {
            Ok(l) => l,
            Err(e) => {
                problems.push(Problem::Unreadable {
                    path,
                    reason: e.to_string(),
                });
                return;
            }
        };
        for list in lists {
            // Index, instance manifests, attestation manifests and blobs.
            for blob in list.blobs() {
                if !self.has_blob(&blob) {
                    problems.push(Problem::MissingBlob {
                        path: path.clone(),
                        blob,
                    });
                }
            }
            if let Some(image) = names.get(&list.name) {
                problems.push(Problem::NameOnImageAndList {
                    name: list.name.clone(),
                    image: *image,
                    list: list.id,
                });
            }
            for inst in &list.instances {
                if !ids.contains(&inst.image) {
                    problems.push(Problem::ListMissingImage {
                        list: list.name.clone(),
                        image: inst.image,
                    });
                }
            }
        }
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
            if !is_record && name != "names.json" && name != "lists.json" {
                problems.push(Problem::Stray { path: entry.path() });
            }
        }
        self.fsck_lists(&ids, &names, problems);
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
