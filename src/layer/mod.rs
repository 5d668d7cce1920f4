//! Layers as tar streams: the deterministic tar writer, overlay ↔ OCI
//! whiteouts, compression, and safe extraction into a directory.
//!
//! Knows nothing about images or registries. The store uses it in three
//! moments of a layer's life:
//!
//! 1. commit: [`diff_id`] hashes the deterministic tar of an upper dir in
//!    one pass, writing nothing;
//! 2. export/push: [`export_layer`] streams tar → sha256 (diff ID) →
//!    gzip/zstd (multi-threaded, reproducible) → sha256 → the blob file;
//! 3. pull/import: [`extract_layer`] (OCI whiteouts → overlay form) or
//!    [`extract_plain`] writes a tar stream, compressed or not, into a
//!    directory without ever writing outside it, hashing as it reads.
//!
//! ```no_run
//! use rbuild::layer::{diff_id, export_layer, extract_layer, Compression, ExtractOptions, TarOptions};
//! # fn main() -> Result<(), rbuild::layer::LayerError> {
//! let opts = TarOptions { mtime_clamp: Some(0) };
//! let (id, _size) = diff_id("/upper".as_ref(), &opts)?;
//! let blob = std::fs::File::create("/tmp/blob").unwrap();
//! let exported = export_layer("/upper".as_ref(), &opts, Compression::Zstd, blob)?;
//! assert_eq!(exported.diff_id, id);
//! let stats = extract_layer(std::fs::File::open("/tmp/blob").unwrap(), "/lower".as_ref(), &ExtractOptions::default())?;
//! assert_eq!(stats.diff_id, id);
//! # Ok(()) }
//! ```

pub mod compress;
pub mod copy;
pub mod diff;
pub mod error;
pub mod extract;
pub mod pgzip;
mod pipe;
mod scoped;
pub mod tar_reader;
pub mod tar_writer;
pub mod tee;
pub mod xattrs;

pub use compress::{
    decompressing_reader, export_layer, export_layer_threads, export_layer_verified, Compression,
    Exported,
};
pub use diff::{diff_id, write_diff_tar, DiffStats, TarOptions};
pub use error::LayerError;
pub use extract::{extract_layer, extract_plain, ExtractOptions, ExtractStats};
pub mod rootfs;
