//! The on-disk store: blobs by digest, extracted layers by chain ID, image
//! records and names, the build cache index, working containers, locking,
//! leases and gc.
//!
//! Layout under the root (see DESIGN.md "On disk"); each path has exactly one
//! function on [`Store`] that builds it, and every path component that comes
//! from data is a validated [`Digest`]/[`ChainId`] or a checked container name:
//!
//! ```text
//! blobs/sha256/<hex>          content store: configs, manifests, compressed layers
//! layers/<chain-hex>/diff/    an extracted layer (overlay lowerdir), never modified
//! layers/<chain-hex>/meta.json
//! images/<id-hex>.json        image records; images/names.json maps name -> image ID
//! images/lists.json           manifest lists: name -> index blob + instance images
//! cache/<key-hex>.json        build cache entries
//! containers/<name>/          working containers
//! tmp/<pid>-<kind>-<rand>     staging; entries of dead pids are removed by gc
//! lock                        flock serialising index updates
//! leases/<pid>-<n>.json       what running builds protect from gc
//! ```
//!
//! How a build uses it: take a [`Lease`], [`Store::prepare_layer`] on the
//! parent's chain ID, let the sandbox mount overlay(lowers, upper, work) and
//! write, unmount, hash the upper dir's tar stream for the diff ID, then
//! [`Store::commit_layer`]; write config and manifest with [`Store::put_blob`]
//! and finish with [`Store::put_image`]. Every write is staged in `tmp/` and
//! renamed into place, so a crash never leaves a half-written object under
//! its name, and a rename that finds the target present counts as success.
//!
//! Concurrency: any number of threads and processes may use one root. The
//! index writers ([`Store::put_image`], [`Store::tag`], [`Store::untag`],
//! [`Store::remove_image`], [`Store::create_list`], [`Store::update_list`],
//! [`Store::replace_list`], [`Store::tag_list`],
//! [`Store::remove_list`], [`Store::cache_put`], [`Store::cache_get`] when it
//! drops a stale entry, [`Store::record_compressed_blob`]) and
//! [`Store::gc`]/[`Store::prune`]/[`Store::fsck`] take the store lock
//! themselves; do not call them while holding a [`LockGuard`] (it is not
//! re-entrant). Blob and layer commits need no lock: they are renames.

mod blob;
mod cache;
mod container;
mod error;
mod fsck;
mod fsutil;
mod gc;
mod image;
mod layer;
mod lock;
mod manifest_list;
mod mounts;
mod roots;

use std::path::{Path, PathBuf};

pub use blob::BlobWriter;
pub use cache::CacheEntry;
pub use container::{Container, ContainerRecord};
pub use error::{Result, StoreError};
pub use fsck::Problem;
pub use gc::{GcReport, PruneReport};
pub use image::ImageRecord;
pub use layer::{ChainId, CompressedBlob, LayerMeta, PreparedLayer};
pub use lock::{Lease, LockGuard};
pub use manifest_list::{ListArtifact, ListInstance, ManifestList};
pub use roots::{default_root, default_runroot, Caller, ROOTLESS_UID_ENV};

use crate::digest::Digest;
use fsutil::ensure_dir;

/// A handle on one store root. Cheap to clone; holds no open files, so
/// several handles (threads or processes) can use one root at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating the layout if missing.
    pub fn open(root: &Path) -> Result<Store> {
        ensure_dir(root)?;
        // Absolute paths: overlay lowerdirs and upperdirs must be absolute.
        let root = root
            .canonicalize()
            .map_err(StoreError::io("resolve store root", root))?;
        let store = Store { root };
        for dir in [
            store.blobs_dir(),
            store.layers_dir(),
            store.images_dir(),
            store.cache_dir(),
            store.containers_dir(),
            store.tmp_dir(),
            store.leases_dir(),
        ] {
            ensure_dir(&dir)?;
        }
        fsutil::open_or_create(&store.lock_path())?;
        Ok(store)
    }

    /// The store's root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    fn layer_dir(&self, chain: &ChainId) -> PathBuf {
        self.layers_dir().join(chain.digest().hex())
    }

    /// The extracted layer's directory: an overlay lowerdir.
    pub fn layer_diff_path(&self, chain: &ChainId) -> PathBuf {
        self.layer_dir(chain).join("diff")
    }

    fn layer_meta_path(&self, chain: &ChainId) -> PathBuf {
        self.layer_dir(chain).join("meta.json")
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.images_dir().join(format!("{}.json", id.hex()))
    }

    fn names_path(&self) -> PathBuf {
        self.images_dir().join("names.json")
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.cache_dir().join(format!("{}.json", key.hex()))
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn container_dir(&self, name: &container::ContainerName) -> PathBuf {
        self.containers_dir().join(name.as_str())
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("lock")
    }

    fn leases_dir(&self) -> PathBuf {
        self.root.join("leases")
    }
}

/// Now, as RFC 3339 (the format of every `created` field the store writes).
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_the_layout_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = Store::open(&root).unwrap();
        for sub in [
            "blobs/sha256",
            "layers",
            "images",
            "cache",
            "containers",
            "tmp",
            "leases",
        ] {
            assert!(root.join(sub).is_dir(), "{sub} missing");
        }
        assert!(root.join("lock").is_file());
        assert!(store.root().is_absolute());
        Store::open(&root).unwrap();
    }

    #[test]
    fn paths_come_from_digests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"x");
        assert_eq!(
            store.blob_path(&d),
            store.root().join("blobs/sha256").join(d.hex())
        );
        let c = ChainId::new(None, &d);
        assert_eq!(
            store.layer_diff_path(&c),
            store.root().join("layers").join(d.hex()).join("diff")
        );
    }
}
