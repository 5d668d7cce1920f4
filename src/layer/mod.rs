//! Layers as tar streams: the deterministic tar writer, overlay ↔ OCI
//! whiteouts, compression, and safe extraction into a directory.
//!
//! Knows nothing about images or registries.
pub mod rootfs;
