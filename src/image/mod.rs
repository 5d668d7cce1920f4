//! OCI image types (config, manifest, index) and the transports that export
//! an image from the store: `oci:`, `oci-archive:`, `docker-archive:`, `dir:`.
//!
//! - [`config`]: the image config and [`ImageConfigBuilder`], driven by the
//!   executor one instruction at a time; [`created_by`] the history text.
//! - [`manifest`]: manifests, indexes, media types, [`Compression`].
//! - [`source`]: [`ExportSource`], what the store implements for an export.
//! - [`transport`]: destination parsing and the writers.
//! - [`inspect`]: `inspect` JSON and `history` rows; [`format`] the
//!   Go-template subset behind every `--format`.
//! - [`gojson`]: JSON and timestamps byte-identical to Go's, so digests
//!   match docker's and buildah's for the same content.
//!
//! Runs no builds and knows nothing of the store's layout.

pub mod config;
pub mod created_by;
pub mod format;
pub mod gojson;
pub mod inspect;
pub mod manifest;
pub mod source;
pub mod transport;

pub use config::{HealthConfig, History, Image, ImageConfigBuilder, Platform};
pub use gojson::Timestamp;
pub use manifest::{Compression, Descriptor, ImageManifest, ManifestFormat};
pub use source::{BlobInfo, ExportSource, LayerRef, SourceError};
pub use transport::{
    export, export_with_progress, Destination, ExportError, ExportEvent, ExportOptions, Exported,
};
pub mod lookup;
pub mod from_store;
