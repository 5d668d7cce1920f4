//! [`ExportSource`] over an image in the [`Store`]: what `push` exports.
//!
//! Compression is lazy (DESIGN.md "On disk"): a layer's blob in the wanted
//! compression is copied if an earlier export made it; otherwise it is made
//! in one pass and, while it streams into the destination, also written into
//! the store and recorded against the layer, so the next push is a copy.
//! When the layer already has a blob in another compression (a pulled
//! layer, or an earlier push), that blob is transcoded: this keeps the diff
//! ID exactly, even for a layer whose original tar bytes the deterministic
//! tar writer would not reproduce. Otherwise the layer's extracted directory
//! is tarred again with `layer::export_layer`.

use std::io::{self, Write};
use std::path::PathBuf;

use super::config::{ConfigError, Image};
use super::manifest::Compression;
use super::source::{BlobInfo, ExportSource, LayerBlob, LayerRef, SourceError};
use crate::digest::{Digest, DigestWriter};
use crate::image::from_store::pulled_blob_key;
use crate::layer::compress::{decompressing_reader, default_threads, Compressor};
use crate::layer::tee::Tee;
use crate::layer::{export_layer, TarOptions};
use crate::store::{ChainId, ImageRecord, Store, StoreError};

/// Why an image in the store cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum StoreSourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("config of image {id}: {source}")]
    Config {
        id: Digest,
        #[source]
        source: ConfigError,
    },
    #[error("image {id} lists {records} layers but its config has {config} diff IDs: the image record is damaged; run `rbuild rmi` on it and rebuild")]
    LayerCount {
        id: Digest,
        records: usize,
        config: usize,
    },
    #[error("layer {chain} of image {id} has diff ID {found}, but the config says {expected}: the store is inconsistent")]
    DiffId {
        id: Digest,
        chain: String,
        expected: Digest,
        found: Digest,
    },
}

/// An image in the store, ready to export.
pub struct StoreSource<'a> {
    store: &'a Store,
    config: Vec<u8>,
    diff_ids: Vec<Digest>,
    chains: Vec<ChainId>,
    /// Layers whose config diff ID is the registry's: their original blob
    /// is the only source of the right bytes.
    pulled: Vec<bool>,
    tar_options: TarOptions,
    cache_blobs: bool,
}

impl<'a> StoreSource<'a> {
    /// `tar_options` must be those the layers' diff IDs were taken with
    /// (the mtime clamp of the build), or re-tarred layers are refused.
    pub fn new(
        store: &'a Store,
        record: &ImageRecord,
        tar_options: TarOptions,
    ) -> Result<StoreSource<'a>, StoreSourceError> {
        let config = store.read_blob(&record.id)?;
        let image = Image::from_json(&config).map_err(|source| StoreSourceError::Config {
            id: record.id,
            source,
        })?;
        let diff_ids = image.rootfs.diff_ids;
        if diff_ids.len() != record.layers.len() {
            return Err(StoreSourceError::LayerCount {
                id: record.id,
                records: record.layers.len(),
                config: diff_ids.len(),
            });
        }
        let mut pulled = Vec::new();
        for (chain, expected) in record.layers.iter().zip(&diff_ids) {
            let found = store.layer_meta(chain)?.diff_id;
            // A pulled layer is keyed by the registry's diff ID, yet its
            // directory does not re-tar to it: the recorded original blob
            // must be exported whenever there is one.
            let is_pulled = pulled_blob(store, chain, expected).is_some();
            pulled.push(is_pulled);
            if found != *expected && !is_pulled {
                return Err(StoreSourceError::DiffId {
                    id: record.id,
                    chain: chain.short(),
                    expected: *expected,
                    found,
                });
            }
        }
        Ok(StoreSource {
            store,
            config,
            diff_ids,
            chains: record.layers.clone(),
            pulled,
            tar_options,
            cache_blobs: true,
        })
    }

    /// Whether blobs made during the export are kept in the store (default
    /// yes; off costs no store space, and the next push compresses again).
    pub fn cache_blobs(mut self, keep: bool) -> StoreSource<'a> {
        self.cache_blobs = keep;
        self
    }

    /// The name a blob of layer `index` in `compression` is recorded under.
    fn blob_key(&self, index: usize, compression: Compression) -> String {
        if self.pulled[index] {
            pulled_blob_key(compression, &self.diff_ids[index])
        } else {
            compression.name().to_string()
        }
    }

    /// A cached blob of this layer in a compression other than `wanted`.
    fn other_blob(
        &self,
        chain: &ChainId,
        wanted: Compression,
    ) -> Result<Option<Digest>, StoreError> {
        let meta = self.store.layer_meta(chain)?;
        for name in meta.compressed.keys() {
            if name.parse::<Compression>().ok() == Some(wanted) {
                continue;
            }
            if let Some((digest, _)) = self.store.compressed_blob(chain, name)? {
                return Ok(Some(digest));
            }
        }
        Ok(None)
    }
}

/// The original blob a pull recorded for `chain` whose uncompressed stream
/// is `declared`, in any compression.
fn pulled_blob(store: &Store, chain: &ChainId, declared: &Digest) -> Option<Digest> {
    [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .find_map(|c| {
            store
                .compressed_blob(chain, &pulled_blob_key(c, declared))
                .ok()
                .flatten()
                .map(|(d, _)| d)
        })
}

/// Decompresses any layer blob and compresses it as `compression`, hashing
/// the tar (diff ID) and the output (blob) on the way.
fn transcode(
    blob: std::fs::File,
    compression: Compression,
    out: &mut dyn Write,
) -> Result<LayerBlob, SourceError> {
    let mut reader = decompressing_reader(blob)?;
    let mut blob_writer = DigestWriter::new(out);
    let mut compressor = Compressor::new(compression, default_threads(), &mut blob_writer)?;
    let mut tar_writer = DigestWriter::new(&mut compressor);
    io::copy(&mut reader, &mut tar_writer)?;
    let (_, diff_id, _) = tar_writer.finish();
    compressor.finish()?;
    let (_, digest, size) = blob_writer.finish();
    Ok(LayerBlob {
        diff_id,
        blob: BlobInfo { digest, size },
    })
}

impl ExportSource for StoreSource<'_> {
    fn config(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.config.clone())
    }

    fn layers(&self) -> Vec<LayerRef> {
        self.diff_ids
            .iter()
            .map(|d| LayerRef { diff_id: *d })
            .collect()
    }

    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<LayerBlob, SourceError> {
        let chain = &self.chains[index];
        // An uncompressed blob would only duplicate the extracted layer.
        let mut copy = if self.cache_blobs && compression != Compression::None {
            // The export hashes these bytes on their way to `out`.
            Some(self.store.blob_copy_writer()?)
        } else {
            None
        };
        let mut no_copy = io::sink();
        let mut tee = Tee {
            main: out,
            copy: match copy.as_mut() {
                Some(c) => c as &mut dyn Write,
                None => &mut no_copy,
            },
        };
        let source_blob = if self.pulled[index] {
            let blob = pulled_blob(self.store, chain, &self.diff_ids[index]).ok_or_else(|| {
                format!(
                    "layer {chain} was pulled, but its original blob is no longer in the store; pull the image again"
                )
            })?;
            Some(blob)
        } else {
            self.other_blob(chain, compression)?
        };
        let written = match source_blob {
            Some(digest) => transcode(self.store.open_blob(&digest)?, compression, &mut tee)?,
            None => export_layer(
                &self.store.layer_diff_path(chain),
                &self.tar_options,
                compression,
                &mut tee,
            )?
            .into(),
        };
        // Only a blob of the right layer is remembered; a wrong one is
        // dropped here and refused by the export.
        if let Some(copy) = copy {
            if written.diff_id == self.diff_ids[index] {
                let blob = written.blob;
                copy.commit(Some((blob.digest, blob.size)))?;
                self.store.record_compressed_blob(
                    chain,
                    &self.blob_key(index, compression),
                    blob.digest,
                    blob.size,
                )?;
            }
        }
        Ok(written)
    }

    fn cached_layer_blob(
        &self,
        index: usize,
        compression: Compression,
    ) -> Option<(BlobInfo, PathBuf)> {
        let chain = &self.chains[index];
        match self
            .store
            .compressed_blob(chain, &self.blob_key(index, compression))
        {
            Ok(Some((digest, size))) => {
                Some((BlobInfo { digest, size }, self.store.blob_path(&digest)))
            }
            Ok(None) => None,
            Err(e) => {
                log::warn!("ignoring the blob cache of layer {}: {e}", chain.short());
                None
            }
        }
    }
}
