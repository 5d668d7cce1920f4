//! The store's error type: one variant per kind of failure, each naming the
//! path or digest involved, so callers can branch on the kind (not found,
//! mismatch, in use) while the message keeps the detail.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::layer::ChainId;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot pick a storage root: {0}")]
    NoRoot(String),
    #[error("blob digest mismatch: expected {expected}, wrote {actual} (the data was discarded)")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob size mismatch: expected {digest} of {expected} bytes, got {actual} bytes hashing to {actual_digest} (the data was discarded)")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
        actual_digest: Digest,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("layer {0} is not in the store")]
    LayerNotFound(ChainId),
    #[error("image {0:?} is not in the store (try `rbuild images` to list what is)")]
    ImageNotFound(String),
    #[error("image ID prefix {prefix:?} is ambiguous: it matches {}", .matches.iter().map(|d| d.short()).collect::<Vec<_>>().join(", "))]
    AmbiguousId {
        prefix: String,
        matches: Vec<Digest>,
    },
    #[error("name {0:?} is not in the store")]
    NameNotFound(String),
    #[error("invalid image name {0:?}: names must be non-empty, at most 4096 bytes and contain no whitespace or control characters")]
    InvalidName(String),
    #[error("invalid container name {0:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit")]
    InvalidContainerName(String),
    #[error("container {0:?} already exists (remove it first or pick another name)")]
    ContainerExists(String),
    #[error("container {0:?} does not exist")]
    ContainerNotFound(String),
    #[error("image {image} refers to {what} {digest}, which is not in the store")]
    MissingReference {
        image: Digest,
        what: &'static str,
        digest: Digest,
    },
    #[error("manifest list {0:?} already exists (add to it with `rbuild manifest add`, or remove it with `rbuild manifest rm`)")]
    ListExists(String),
    #[error("manifest list {0:?} is not in the store (create it with `rbuild manifest create`)")]
    ListNotFound(String),
    #[error("manifest list {0:?} was changed by another command while this one edited it; run the command again")]
    ListChanged(String),
    #[error("name {name:?} already names image {image}; pick another name for the manifest list or untag the image")]
    NameInUse { name: String, image: Digest },
    #[error("image {image} is part of manifest list(s) {}; remove the list first (`rbuild manifest rm`)", .lists.join(", "))]
    ImageInList { image: Digest, lists: Vec<String> },
    #[error("manifest list {list:?} refers to {what} {digest}, which is not in the store")]
    ListMissingReference {
        list: String,
        what: &'static str,
        digest: Digest,
    },
    #[error("manifest list {list:?} has no image for platform {wanted}; it holds {available} (`rbuild manifest add` an image for {wanted}, or name one of its images)")]
    ListNoInstance {
        list: String,
        wanted: String,
        available: String,
    },
    #[error("corrupt store file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("importing layer on top of {parent}: {source}")]
    Import {
        parent: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Wraps an I/O error with what was being done and to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }

    /// True for the "does not exist" kinds, so callers can fall back (pull, rebuild).
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::BlobNotFound(_)
            | StoreError::LayerNotFound(_)
            | StoreError::ImageNotFound(_)
            | StoreError::NameNotFound(_)
            | StoreError::ListNotFound(_)
            | StoreError::ContainerNotFound(_) => true,
            StoreError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
