//! OCI image types (config, manifest, index) and the transports that export
//! an image from the store: `oci:`, `oci-archive:`, `docker-archive:`, `dir:`.
//!
//! - [`config`]: the image config and [`ImageConfigBuilder`], driven by the
//!   executor one instruction at a time; [`created_by`] the history text.
//! - [`manifest`]: manifests, indexes, media types, [`Compression`].
//! - [`source`]: [`ExportSource`], what an export reads; [`store_source`]
//!   implements it over an image in the store, caching compressed blobs.
//! - [`transport`]: destination parsing and the writers.
//! - [`inspect`]: `inspect` JSON and `history` rows; [`mod@format`] the
//!   Go-template subset behind every `--format`.
//! - [`gojson`]: JSON and timestamps byte-identical to Go's, so digests
//!   match docker's and buildah's for the same content.
//!
//! How the executor and `push` use it:
//!
//! - build: [`ImageConfigBuilder::from_base`] (or `scratch`), one call per
//!   instruction (`set_env`, `expose`, `set_entrypoint`, …) plus a history
//!   entry from [`created_by`] (`add_empty_history` for metadata steps,
//!   `add_layer` with the diff ID for COPY/ADD/RUN); then `clamp_timestamps`
//!   under `SOURCE_DATE_EPOCH`, and [`Image::to_oci_json`] (or
//!   `to_docker_json` for `--format docker`) gives the config bytes whose
//!   digest is the image ID.
//! - push: parse the destination (`"oci:/tmp/l:v1".parse::<Destination>()`),
//!   wrap the stored image in a [`store_source::StoreSource`], and call
//!   [`export_with_progress`] (or [`export_index`] for several platforms).
//! - inspect/history: [`inspect::ImageInspect`], [`inspect::history_rows`],
//!   and [`format::Template`] for every `--format`.
//!
//! Runs no builds, and reads the store only through its public API.

pub mod config;
pub mod created_by;
pub mod format;
pub mod gojson;
pub mod inspect;
pub mod manifest;
pub mod source;
pub mod store_source;
pub mod transport;

pub use config::{HealthConfig, History, Image, ImageConfigBuilder, Platform};
pub use gojson::Timestamp;
pub use manifest::{Compression, Descriptor, ImageManifest, ManifestFormat};
pub use source::{BlobInfo, ExportSource, LayerBlob, LayerRef, SourceError};
pub use transport::{
    export, export_index, export_with_progress, Destination, ExportError, ExportEvent,
    ExportOptions, Exported, ExportedIndex,
};
pub mod from_store;
pub mod lookup;
