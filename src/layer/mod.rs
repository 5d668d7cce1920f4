//! Layers as tar streams: the deterministic tar writer, overlay ↔ OCI
//! whiteouts, compression, and safe extraction into a directory.
//!
//! Knows nothing about images or registries.

pub mod compress;
pub mod diff;
pub mod error;
pub mod extract;
pub mod pgzip;
mod scoped;
pub mod tar_writer;
pub mod xattrs;

pub use compress::{
    decompressing_reader, export_layer, export_layer_threads, Compression, Exported,
};
pub use diff::{diff_id, write_diff_tar, DiffStats, TarOptions};
pub use error::LayerError;
pub use extract::{extract_layer, extract_plain, ExtractOptions, ExtractStats};
pub mod rootfs;
