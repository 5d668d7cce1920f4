//! [`ExportSource`] over an image in the store: the config blob as stored,
//! and layer blobs made from the extracted layers in one pass (tar → diff
//! ID check → compress → digest) while they are also kept in the store, so
//! the next export or push of the same layer is a copy.
//!
//! Pulled layers: the store keys an extracted layer by the deterministic tar
//! digest of its directory, while a pulled image's config keeps the
//! registry's `rootfs.diff_ids`. The layers an export declares are the
//! config's; the original blob recorded at pull time (under
//! [`pulled_blob_key`]) is sent as it is, or decompressed and re-compressed
//! when another compression is asked for, so the uncompressed stream always
//! matches the config's diff ID and a pulled image pushes back byte-identical.

use std::io::{self, BufReader, Write};
use std::path::PathBuf;

use crate::digest::{Digest, DigestWriter};
use crate::image::manifest::Compression;
use crate::image::source::{BlobInfo, ExportSource, LayerRef, SourceError};
use crate::layer::TarOptions;
use crate::store::{ChainId, ImageRecord, Store};

/// The key under which a pulled layer's original blob is recorded on the
/// layer: its compression and the registry's diff ID (the digest of its
/// uncompressed stream), e.g. `gzip:sha256:…`.
pub fn pulled_blob_key(compression: Compression, registry_diff_id: &Digest) -> String {
    format!("{}:{registry_diff_id}", compression.name())
}

/// One layer of the image.
#[derive(Clone, Copy, Debug)]
struct Layer {
    chain: ChainId,
    /// The diff ID the store computed from the extracted directory.
    stored: Digest,
    /// The diff ID the image's config declares (differs for pulled layers).
    declared: Digest,
}

/// A stored image, ready to export.
pub struct StoreImage<'a> {
    store: &'a Store,
    config: Vec<u8>,
    layers: Vec<Layer>,
}

#[derive(serde::Deserialize)]
struct ConfigDiffIds {
    rootfs: RootfsDiffIds,
}

#[derive(serde::Deserialize)]
struct RootfsDiffIds {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

impl<'a> StoreImage<'a> {
    pub fn open(
        store: &'a Store,
        record: &ImageRecord,
    ) -> Result<StoreImage<'a>, crate::store::StoreError> {
        let config = store.read_blob(&record.id)?;
        let declared = serde_json::from_slice::<ConfigDiffIds>(&config)
            .map(|c| c.rootfs.diff_ids)
            .unwrap_or_default();
        let mut layers = Vec::new();
        for (i, chain) in record.layers.iter().enumerate() {
            let stored = store.layer_meta(chain)?.diff_id;
            let declared = if declared.len() == record.layers.len() {
                declared[i]
            } else {
                stored
            };
            layers.push(Layer {
                chain: *chain,
                stored,
                declared,
            });
        }
        Ok(StoreImage {
            store,
            config,
            layers,
        })
    }

    /// A blob recorded at pull time whose uncompressed stream is `declared`.
    fn original_blob(&self, layer: &Layer) -> Option<(Digest, u64)> {
        [Compression::Gzip, Compression::Zstd, Compression::None]
            .into_iter()
            .find_map(|c| {
                self.store
                    .compressed_blob(&layer.chain, &pulled_blob_key(c, &layer.declared))
                    .ok()
                    .flatten()
            })
    }

    /// Re-compresses a pulled layer's original blob: decompress, check the
    /// diff ID, compress with `compression` into the store and `out`.
    fn recompress(
        &self,
        layer: &Layer,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<BlobInfo, SourceError> {
        let (original, _) = self.original_blob(layer).ok_or_else(|| {
            format!(
                "layer {} was pulled, but its original blob is no longer in the store, so a layer with diff ID {} cannot be made; pull the image again",
                layer.chain, layer.declared
            )
        })?;
        let file = self.store.open_blob(&original)?;
        let mut plain =
            crate::layer::decompressing_reader(BufReader::with_capacity(1 << 20, file))?;
        let mut writer = self.store.blob_writer()?;
        let blob = DigestWriter::new(Tee(&mut writer, out));
        let compressor = crate::layer::compress::Compressor::new(
            layer_compression(compression),
            crate::layer::compress::default_threads(),
            blob,
        )?;
        let mut tar = DigestWriter::new(compressor);
        io::copy(&mut plain, &mut tar)?;
        let (compressor, diff_id, _) = tar.finish();
        let (_, blob_digest, blob_size) = compressor.finish()?.finish();
        if diff_id != layer.declared {
            return Err(format!(
                "blob {original} of layer {} uncompresses to {diff_id}, not the diff ID {} the image declares",
                layer.chain, layer.declared
            )
            .into());
        }
        let digest = writer.commit(Some((blob_digest, blob_size)))?;
        self.store.record_compressed_blob(
            &layer.chain,
            &pulled_blob_key(compression, &layer.declared),
            digest,
            blob_size,
        )?;
        Ok(BlobInfo {
            digest,
            size: blob_size,
        })
    }
}

fn layer_compression(c: Compression) -> crate::layer::Compression {
    match c {
        Compression::None => crate::layer::Compression::None,
        Compression::Gzip => crate::layer::Compression::Gzip,
        Compression::Zstd => crate::layer::Compression::Zstd,
    }
}

/// Writes every byte to both sides.
struct Tee<A, B>(A, B);

impl<A: Write, B: Write> Write for Tee<A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

impl ExportSource for StoreImage<'_> {
    fn config(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.config.clone())
    }

    fn layers(&self) -> Vec<LayerRef> {
        self.layers
            .iter()
            .map(|l| LayerRef {
                diff_id: l.declared,
            })
            .collect()
    }

    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<BlobInfo, SourceError> {
        let layer = self.layers[index];
        if layer.declared != layer.stored {
            return self.recompress(&layer, compression, out);
        }
        let (chain, diff_id) = (layer.chain, layer.stored);
        let dir = self.store.layer_diff_path(&chain);
        let mut writer = self.store.blob_writer()?;
        let exported = crate::layer::export_layer(
            &dir,
            &TarOptions::default(),
            layer_compression(compression),
            Tee(&mut writer, out),
        )?;
        if exported.diff_id != diff_id {
            return Err(format!(
                "layer {chain} changed on disk: its tar stream hashes to {} but the image records {diff_id}; run `rbuild rmi` on the image and rebuild it",
                exported.diff_id
            )
            .into());
        }
        let digest = writer.commit(Some((exported.blob_digest, exported.blob_size)))?;
        if compression != Compression::None {
            self.store.record_compressed_blob(
                &chain,
                compression.name(),
                digest,
                exported.blob_size,
            )?;
        }
        Ok(BlobInfo {
            digest,
            size: exported.blob_size,
        })
    }

    fn cached_layer_blob(
        &self,
        index: usize,
        compression: Compression,
    ) -> Option<(BlobInfo, PathBuf)> {
        let layer = self.layers[index];
        let pulled = self
            .store
            .compressed_blob(&layer.chain, &pulled_blob_key(compression, &layer.declared))
            .ok()
            .flatten();
        let blob = match pulled {
            Some(b) => b,
            None if compression == Compression::None || layer.declared != layer.stored => {
                return None
            }
            None => self
                .store
                .compressed_blob(&layer.chain, compression.name())
                .ok()??,
        };
        Some((
            BlobInfo {
                digest: blob.0,
                size: blob.1,
            },
            self.store.blob_path(&blob.0),
        ))
    }
}
