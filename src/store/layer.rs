//! Extracted layers, by chain ID: `layers/<chain-hex>/{diff/,meta.json}`.
//!
//! The vocabulary is containerd's snapshotter: [`Store::prepare_layer`] makes
//! an active, writable staging dir in `tmp/` (`diff/` is the overlay upper
//! dir, `work/` its workdir); [`Store::commit_layer`] makes it immutable and
//! visible under its chain ID, where it can be a parent (an overlay lowerdir).
//! Pulled or imported layers take the same path: extract into
//! [`PreparedLayer::upper`] and commit ([`Store::import_layer`] wraps that).
//! Committed diff dirs are never modified; only `meta.json` is rewritten, to
//! remember compressed blobs made on export.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, DigestError};
use crate::store::error::{Result, StoreError};
use crate::store::fsutil::{self, create_tmp_dir, ensure_dir, read_json, remove_tree, write_json};
use crate::store::Store;

/// A layer's chain ID, as the OCI image spec defines it:
/// `ChainID(L1) = DiffID(L1)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`
/// with both digests in their `sha256:<hex>` form. It names a layer *and*
/// everything below it, so it is the key for an extracted, stackable layer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(Digest);

impl ChainId {
    /// The chain ID of `diff_id` on top of `parent` (or at the bottom).
    pub fn new(parent: Option<&ChainId>, diff_id: &Digest) -> ChainId {
        match parent {
            None => ChainId(*diff_id),
            Some(p) => ChainId(Digest::of(format!("{} {}", p.0, diff_id).as_bytes())),
        }
    }

    /// The chain ID of a whole stack of diff IDs, bottom first.
    pub fn from_diff_ids(diff_ids: &[Digest]) -> Option<ChainId> {
        diff_ids
            .iter()
            .fold(None, |parent, d| Some(ChainId::new(parent.as_ref(), d)))
    }

    /// Wraps a digest that is known to be a chain ID (as stored in records).
    pub fn from_digest(digest: Digest) -> ChainId {
        ChainId(digest)
    }

    /// The chain ID as a digest (its hex names the layer's directory).
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The first 12 hex characters, for messages.
    pub fn short(&self) -> String {
        self.0.short()
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl FromStr for ChainId {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<ChainId, DigestError> {
        s.parse().map(ChainId)
    }
}

/// A compressed form of a layer made on export, remembered so the next
/// export or push is a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedBlob {
    /// The compressed blob's digest (a blob in the store).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// `layers/<chain>/meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// The layer's own chain ID (its directory name).
    pub chain_id: ChainId,
    /// Digest of the layer's uncompressed tar stream.
    pub diff_id: Digest,
    /// Size in bytes of that tar stream.
    pub size: u64,
    /// The layer below, `None` for a bottom layer.
    pub parent: Option<ChainId>,
    /// Compression name (`gzip`, `zstd`, …) → the blob made with it.
    #[serde(default)]
    pub compressed: BTreeMap<String, CompressedBlob>,
    /// RFC 3339 commit time.
    pub created: String,
}

/// A writable layer being made, in `tmp/`. Dropping it uncommitted removes it.
/// Unmount any overlay on it before [`Store::commit_layer`].
#[derive(Debug)]
pub struct PreparedLayer {
    dir: PathBuf,
    parent: Option<ChainId>,
    lowers: Vec<PathBuf>,
    done: bool,
}

impl PreparedLayer {
    /// The overlay upper dir: the layer's content, which becomes `diff/`.
    pub fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }

    /// The overlay workdir (same filesystem as `upper`; removed at commit).
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// The parent chain's diff dirs, topmost first, as overlay's `lowerdir` wants.
    pub fn lowers(&self) -> &[PathBuf] {
        &self.lowers
    }

    /// The layer this one goes on top of.
    pub fn parent(&self) -> Option<&ChainId> {
        self.parent.as_ref()
    }
}

impl Drop for PreparedLayer {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = remove_tree(&self.dir) {
                log::warn!("discarding uncommitted layer: {e}");
            }
        }
    }
}

impl Store {
    /// Makes a staging layer on top of `parent` (which must exist).
    pub fn prepare_layer(&self, parent: Option<&ChainId>) -> Result<PreparedLayer> {
        let lowers = match parent {
            Some(p) => self
                .layer_chain(p)?
                .iter()
                .rev()
                .map(|c| self.layer_diff_path(c))
                .collect(),
            None => Vec::new(),
        };
        let dir = create_tmp_dir(&self.tmp_dir(), "layer")?;
        let prepared = PreparedLayer {
            dir,
            parent: parent.copied(),
            lowers,
            done: false,
        };
        ensure_dir(&prepared.upper())?;
        ensure_dir(&prepared.work())?;
        Ok(prepared)
    }

    /// Makes `prepared` an immutable layer under its chain ID.
    ///
    /// `diff_id` and `size` describe the tar stream of `upper()` (the layer
    /// module computes them). If another build already committed the same
    /// chain ID, that layer is kept, the staging dir removed, and this is
    /// success.
    pub fn commit_layer(
        &self,
        mut prepared: PreparedLayer,
        diff_id: Digest,
        size: u64,
    ) -> Result<ChainId> {
        if let Some(p) = &prepared.parent {
            if !self.has_layer(p) {
                return Err(StoreError::LayerNotFound(*p));
            }
        }
        let chain = ChainId::new(prepared.parent.as_ref(), &diff_id);
        let target = self.layer_dir(&chain);
        if target.is_dir() {
            fsutil::touch(&target)?;
            return Ok(chain); // Drop removes the staging dir.
        }
        remove_tree(&prepared.work())?;
        let meta = LayerMeta {
            chain_id: chain,
            diff_id,
            size,
            parent: prepared.parent,
            compressed: BTreeMap::new(),
            created: super::now_rfc3339(),
        };
        write_json(&self.tmp_dir(), &prepared.dir.join("meta.json"), &meta)?;
        // One syncfs instead of an fsync per file: the layer's data must be
        // on disk before its name is.
        sync_filesystem(&prepared.dir)?;
        match fs::rename(&prepared.dir, &target) {
            Ok(()) => {
                prepared.done = true;
                if let Err(e) = fsutil::fsync_dir(&self.layers_dir()) {
                    log::warn!("layer {chain} committed, but: {e}");
                }
                Ok(chain)
            }
            // Lost a race with another build making the same layer.
            Err(_) if target.is_dir() => {
                fsutil::touch(&target)?;
                Ok(chain)
            }
            Err(e) => Err(StoreError::io("rename layer into", target)(e)),
        }
    }

    /// Imports a layer: `fill` extracts into the empty diff dir it is given and
    /// returns the (diff ID, size) of the tar stream it read.
    pub fn import_layer<E>(
        &self,
        parent: Option<&ChainId>,
        fill: impl FnOnce(&Path) -> std::result::Result<(Digest, u64), E>,
    ) -> Result<ChainId>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let prepared = self.prepare_layer(parent)?;
        let (diff_id, size) = fill(&prepared.upper()).map_err(|e| StoreError::Import {
            parent: parent.map_or_else(|| "scratch".to_string(), |p| p.to_string()),
            source: e.into(),
        })?;
        self.commit_layer(prepared, diff_id, size)
    }

    /// Whether the layer is committed.
    pub fn has_layer(&self, chain: &ChainId) -> bool {
        self.layer_meta_path(chain).is_file()
    }

    /// The layer's metadata.
    pub fn layer_meta(&self, chain: &ChainId) -> Result<LayerMeta> {
        read_json(&self.layer_meta_path(chain))?.ok_or(StoreError::LayerNotFound(*chain))
    }

    /// The layer and its ancestors, bottom to top (the last is `chain`).
    pub fn layer_chain(&self, chain: &ChainId) -> Result<Vec<ChainId>> {
        Ok(self
            .layer_stack(chain)?
            .into_iter()
            .map(|m| m.chain_id)
            .collect())
    }

    /// The metadata of the layer and its ancestors, bottom to top: the diff
    /// IDs and sizes a manifest or an image config lists.
    pub fn layer_stack(&self, chain: &ChainId) -> Result<Vec<LayerMeta>> {
        let mut out = vec![self.layer_meta(chain)?];
        while let Some(parent) = out.last().and_then(|m| m.parent) {
            // Longer than any image could be: a cycle in corrupt metadata.
            if out.len() > 10_000 {
                return Err(StoreError::Corrupt {
                    path: self.layer_meta_path(chain),
                    reason: "layer parent chain loops".into(),
                });
            }
            out.push(self.layer_meta(&parent)?);
        }
        out.reverse();
        Ok(out)
    }

    /// Every committed layer's chain ID.
    pub fn layers(&self) -> Result<Vec<ChainId>> {
        let dir = self.layers_dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(StoreError::io("list", &dir))? {
            let entry = entry.map_err(StoreError::io("list", &dir))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(ChainId(d));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remembers that `blob` (already in the store) is this layer compressed
    /// with `compression`.
    pub fn record_compressed_blob(
        &self,
        chain: &ChainId,
        compression: &str,
        blob: Digest,
        size: u64,
    ) -> Result<()> {
        let _guard = self.lock()?;
        let actual = self.blob_size(&blob)?;
        if actual != size {
            return Err(StoreError::SizeMismatch {
                digest: blob,
                expected: size,
                actual,
                actual_digest: blob,
            });
        }
        let mut meta = self.layer_meta(chain)?;
        meta.compressed.insert(
            compression.to_string(),
            CompressedBlob { digest: blob, size },
        );
        write_json(&self.tmp_dir(), &self.layer_meta_path(chain), &meta)
    }

    /// The blob made earlier with `compression`, if it is still in the store.
    pub fn compressed_blob(
        &self,
        chain: &ChainId,
        compression: &str,
    ) -> Result<Option<(Digest, u64)>> {
        let meta = self.layer_meta(chain)?;
        Ok(meta
            .compressed
            .get(compression)
            .and_then(|b| match self.blob_size(&b.digest) {
                Ok(size) if size == b.size => Some((b.digest, b.size)),
                _ => None,
            }))
    }

    /// Removes a committed layer: renamed into `tmp/` first, so a crash
    /// mid-removal never leaves a partial layer under its chain ID.
    pub(crate) fn remove_layer(&self, chain: &ChainId) -> Result<()> {
        let dir = self.layer_dir(chain);
        // rename(2) replaces an empty directory, so a fresh staging dir is the target.
        let doomed = create_tmp_dir(&self.tmp_dir(), "rm")?;
        match fs::rename(&dir, &doomed) {
            Ok(()) => remove_tree(&doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("move layer out of", dir)(e)),
        }
    }
}

fn sync_filesystem(path: &Path) -> Result<()> {
    let f = fs::File::open(path).map_err(StoreError::io("open to sync", path))?;
    // SAFETY: syncfs takes a valid open fd and touches no memory of ours.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(StoreError::io("syncfs", path)(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::of(s.as_bytes())
    }

    #[test]
    fn chain_id_follows_the_oci_rule() {
        let (a, b) = (d("a"), d("b"));
        let c1 = ChainId::new(None, &a);
        assert_eq!(c1.digest(), &a);
        let c2 = ChainId::new(Some(&c1), &b);
        assert_eq!(*c2.digest(), Digest::of(format!("{a} {b}").as_bytes()));
        assert_eq!(ChainId::from_diff_ids(&[a, b]), Some(c2));
        assert_eq!(ChainId::from_diff_ids(&[]), None);
        // Golden value computed independently (Python hashlib) over
        // "sha256:<hex a> sha256:<hex b>".
        assert_eq!(
            c2.to_string(),
            "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"
        );
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn prepare_commit_and_stack() {
        let (_t, s) = store();
        let p = s.prepare_layer(None).unwrap();
        assert!(p.lowers().is_empty());
        fs::write(p.upper().join("f"), b"1").unwrap();
        let c1 = s.commit_layer(p, d("l1"), 100).unwrap();
        assert_eq!(c1, ChainId::new(None, &d("l1")));
        assert_eq!(fs::read(s.layer_diff_path(&c1).join("f")).unwrap(), b"1");
        assert!(!s
            .layer_diff_path(&c1)
            .parent()
            .unwrap()
            .join("work")
            .exists());

        let p2 = s.prepare_layer(Some(&c1)).unwrap();
        assert_eq!(p2.lowers(), &[s.layer_diff_path(&c1)]);
        let c2 = s.commit_layer(p2, d("l2"), 5).unwrap();
        let p3 = s.prepare_layer(Some(&c2)).unwrap();
        assert_eq!(
            p3.lowers(),
            &[s.layer_diff_path(&c2), s.layer_diff_path(&c1)]
        );
        drop(p3);
        assert_eq!(s.layer_chain(&c2).unwrap(), vec![c1, c2]);
        let stack = s.layer_stack(&c2).unwrap();
        assert_eq!(
            stack.iter().map(|m| m.diff_id).collect::<Vec<_>>(),
            vec![d("l1"), d("l2")]
        );
        let meta = s.layer_meta(&c2).unwrap();
        assert_eq!(
            (meta.diff_id, meta.size, meta.parent),
            (d("l2"), 5, Some(c1))
        );
        assert_eq!(s.layers().unwrap().len(), 2);
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn committing_an_existing_layer_is_success() {
        let (_t, s) = store();
        let p = s.prepare_layer(None).unwrap();
        fs::write(p.upper().join("f"), b"first").unwrap();
        let c = s.commit_layer(p, d("x"), 1).unwrap();
        let p = s.prepare_layer(None).unwrap();
        fs::write(p.upper().join("f"), b"second").unwrap();
        assert_eq!(s.commit_layer(p, d("x"), 1).unwrap(), c);
        assert_eq!(fs::read(s.layer_diff_path(&c).join("f")).unwrap(), b"first");
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn missing_parent_is_refused() {
        let (_t, s) = store();
        let ghost = ChainId::new(None, &d("ghost"));
        assert!(matches!(
            s.prepare_layer(Some(&ghost)),
            Err(StoreError::LayerNotFound(_))
        ));
    }

    #[test]
    fn compressed_blobs_are_remembered_and_verified() {
        let (_t, s) = store();
        let c = s
            .import_layer(None, |_dir| Ok::<_, io::Error>((d("y"), 3)))
            .unwrap();
        assert_eq!(s.compressed_blob(&c, "gzip").unwrap(), None);
        let blob = s.put_blob(b"gz bytes").unwrap();
        assert!(s.record_compressed_blob(&c, "gzip", blob, 99).is_err());
        s.record_compressed_blob(&c, "gzip", blob, 8).unwrap();
        assert_eq!(s.compressed_blob(&c, "gzip").unwrap(), Some((blob, 8)));
        assert_eq!(s.compressed_blob(&c, "zstd").unwrap(), None);
        let path = s.blob_path(&blob);
        fs::remove_file(path).unwrap();
        assert_eq!(s.compressed_blob(&c, "gzip").unwrap(), None);
    }

    #[test]
    fn failed_import_leaves_nothing() {
        let (_t, s) = store();
        let err = s
            .import_layer(None, |dir| {
                fs::write(dir.join("half"), b"x").unwrap();
                Err(io::Error::other("truncated gzip stream"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("scratch"), "{err}");
        assert!(s.layers().unwrap().is_empty());
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }
}
