//! What an export reads from: the [`ExportSource`] trait the store
//! implements, so transports never know the store's layout.
//!
//! Layer blobs are streamed from the source straight into the destination
//! and hashed on the way; a blob the source already has compressed (its
//! cache) is copied instead of being made again.

use std::io::Write;
use std::path::PathBuf;

use super::manifest::Compression;
use crate::digest::Digest;

/// Any failure inside a source; transports wrap it with what they were doing.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// One layer of the image, base first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRef {
    /// Digest of the uncompressed tar stream (`rootfs.diff_ids[i]`).
    pub diff_id: Digest,
}

/// A blob's digest and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// What [`ExportSource::write_layer_blob`] wrote: the blob, and the digest
/// of the uncompressed stream it was made from, which the export checks
/// against the config's diff ID (a layer changed on disk is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    pub diff_id: Digest,
    pub blob: BlobInfo,
}

impl From<crate::layer::Exported> for LayerBlob {
    fn from(e: crate::layer::Exported) -> LayerBlob {
        LayerBlob {
            diff_id: e.diff_id,
            blob: BlobInfo {
                digest: e.blob_digest,
                size: e.blob_size,
            },
        }
    }
}

/// An image that can be exported.
pub trait ExportSource {
    /// The config bytes exactly as stored: their digest is the image ID and
    /// they are written verbatim.
    fn config(&self) -> Result<Vec<u8>, SourceError>;

    /// The layers, base first; as many as `rootfs.diff_ids`.
    fn layers(&self) -> Vec<LayerRef>;

    /// Streams layer `index`'s blob, compressed with `compression`, into
    /// `out` in one pass (`layer::export_layer` does exactly this), returning
    /// what it wrote. The caller hashes the same bytes and refuses the blob
    /// if the two disagree, or if the diff ID is not the config's.
    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<LayerBlob, SourceError>;

    /// A finished blob for layer `index` in `compression`, if the source has
    /// one on disk (made by an earlier export or push).
    fn cached_layer_blob(
        &self,
        index: usize,
        compression: Compression,
    ) -> Option<(BlobInfo, PathBuf)> {
        let _ = (index, compression);
        None
    }
}
