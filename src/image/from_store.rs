//! [`ExportSource`] over an image in the store: the config blob as stored,
//! and layer blobs made from the extracted layers in one pass (tar → diff
//! ID check → compress → digest) while they are also kept in the store, so
//! the next export or push of the same layer is a copy.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::digest::Digest;
use crate::image::manifest::Compression;
use crate::image::source::{BlobInfo, ExportSource, LayerRef, SourceError};
use crate::layer::TarOptions;
use crate::store::{ChainId, ImageRecord, Store};

/// A stored image, ready to export.
pub struct StoreImage<'a> {
    store: &'a Store,
    config: Vec<u8>,
    layers: Vec<(ChainId, Digest)>,
}

impl<'a> StoreImage<'a> {
    pub fn open(store: &'a Store, record: &ImageRecord) -> Result<StoreImage<'a>, crate::store::StoreError> {
        let config = store.read_blob(&record.id)?;
        let mut layers = Vec::new();
        for chain in &record.layers {
            layers.push((*chain, store.layer_meta(chain)?.diff_id));
        }
        Ok(StoreImage {
            store,
            config,
            layers,
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
            .map(|(_, diff_id)| LayerRef { diff_id: *diff_id })
            .collect()
    }

    fn write_layer_blob(
        &self,
        index: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<BlobInfo, SourceError> {
        let (chain, diff_id) = self.layers[index];
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
        if compression == Compression::None {
            return None;
        }
        let (chain, _) = self.layers[index];
        let blob = self
            .store
            .compressed_blob(&chain, compression.name())
            .ok()??;
        Some((
            BlobInfo {
                digest: blob.0,
                size: blob.1,
            },
            self.store.blob_path(&blob.0),
        ))
    }
}
