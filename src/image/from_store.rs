//! [`StoreImage`]: the name `push` opens a stored image by. It is
//! [`StoreSource`] with the default tar options — the executor clamps
//! mtimes on disk at commit, so re-tarring a layer reproduces its diff ID
//! without knowing the clamp — with its blob cache and transcoding.
//!
//! Pulled layers: the store keys a pulled layer by the registry's diff ID
//! (checked while extracting), but re-tarring its directory with the
//! deterministic tar writer gives another stream. The pull records the original blob on the
//! layer under [`pulled_blob_key`]; an export sends it as it is, or
//! transcodes it to another compression, so the uncompressed stream always
//! matches the config's diff ID and a pulled image pushes back
//! byte-identical.

use crate::digest::Digest;
use crate::image::manifest::Compression;
use crate::image::store_source::{StoreSource, StoreSourceError};
use crate::layer::TarOptions;
use crate::store::{ImageRecord, Store};

/// The key under which a pulled layer's original blob is recorded on the
/// layer: its compression and the registry's diff ID (the digest of its
/// uncompressed stream), e.g. `gzip:sha256:…`.
pub fn pulled_blob_key(compression: Compression, registry_diff_id: &Digest) -> String {
    format!("{}:{registry_diff_id}", compression.name())
}

/// A stored image, ready to export.
pub type StoreImage<'a> = StoreSource<'a>;

impl<'a> StoreSource<'a> {
    /// Opens `record` for export.
    pub fn open(
        store: &'a Store,
        record: &ImageRecord,
    ) -> Result<StoreImage<'a>, StoreSourceError> {
        StoreSource::new(store, record, TarOptions::default())
    }
}
