//! The one error type of the `layer` module: every variant names the file or
//! tar entry involved and says what to do about it.

use std::io;
use std::path::PathBuf;

/// What went wrong while writing, compressing or extracting a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A filesystem call on the host failed.
    #[error("{op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The output (a blob file, a pipe, a compressor) refused bytes.
    #[error("writing the layer stream: {0}")]
    Write(#[source] io::Error),
    /// The input stream could not be read or decompressed.
    #[error("reading the layer stream{}: {source}", entry_suffix(.entry))]
    Read {
        entry: Option<String>,
        #[source]
        source: io::Error,
    },
    /// A file's size changed between `lstat` and reading it.
    #[error(
        "{path:?} changed while it was archived (size {expected} at lstat, {found} bytes read): \
         nothing may write to a layer directory while it is exported"
    )]
    FileChanged {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// The upper dir uses an overlay feature whose diff a tar layer cannot express.
    #[error(
        "{path:?} carries the overlay xattr {xattr:?} ({feature}): this upper dir cannot be turned \
         into a tar layer; mount the overlay with userxattr and redirect_dir=off,metacopy=off"
    )]
    OverlayFeature {
        path: PathBuf,
        xattr: String,
        feature: &'static str,
    },
    /// A tar entry tried to leave the destination or is malformed.
    #[error("layer entry #{index} {entry:?}: {reason}")]
    BadEntry {
        index: u64,
        entry: String,
        reason: String,
    },
    /// Creating an entry inside the destination failed.
    #[error("layer entry #{index} {entry:?}: {op} failed: {source}")]
    Extract {
        index: u64,
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The 0/0 character device an overlay whiteout needs could not be made.
    #[error(
        "layer entry #{index} {entry:?}: creating the overlay whiteout {path:?} (a 0/0 character \
         device) was refused: {source}; Linux >= 5.8 lets any user make one, older kernels need \
         root (CAP_MKNOD), and the layer store's filesystem or a security module may forbid it"
    )]
    WhiteoutRefused {
        index: u64,
        entry: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The `user.overlay.opaque` xattr could not be set.
    #[error(
        "layer entry #{index} {entry:?}: marking {path:?} opaque (xattr user.overlay.opaque=y) \
         was refused: {source}; the layer store needs a filesystem with user xattrs \
         (ext4, xfs, btrfs, tmpfs >= 6.6)"
    )]
    OpaqueRefused {
        index: u64,
        entry: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// chown to the entry's owner failed (typically an id outside the user namespace's map).
    #[error(
        "layer entry #{index} {entry:?}: setting owner {uid}:{gid} failed: {source}; the id is \
         probably not mapped in this user namespace — add a range for your user to /etc/subuid \
         and /etc/subgid (and install newuidmap/newgidmap)"
    )]
    Chown {
        index: u64,
        entry: String,
        uid: u64,
        gid: u64,
        #[source]
        source: io::Error,
    },
    /// A re-export hashed to another diff ID than the one recorded at commit.
    #[error(
        "layer {dir:?} no longer matches its diff ID: expected {expected}, the tar stream hashes \
         to {found}; the extracted layer was modified after commit — remove it and pull or \
         build it again"
    )]
    DiffIdMismatch {
        dir: PathBuf,
        expected: crate::digest::Digest,
        found: crate::digest::Digest,
    },
}

fn entry_suffix(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e:?}"),
        None => String::new(),
    }
}

pub type Result<T, E = LayerError> = std::result::Result<T, E>;

impl LayerError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> LayerError {
        LayerError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
