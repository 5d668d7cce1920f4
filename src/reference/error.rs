//! Why a string is not an image reference: one variant per part that can be
//! wrong, each naming the part, the input and the rule it breaks.

use crate::digest::DigestError;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {reference:?} has no repository name (expected [host[:port]/]path[:tag][@digest])")]
    Empty { reference: String },
    #[error("invalid reference format: repository name {name:?} is {len} characters; it must not be more than 255")]
    TooLong { name: String, len: usize },
    #[error("invalid reference format: repository name {name:?} must be lowercase")]
    Uppercase { name: String },
    #[error("invalid reference format: registry {registry:?} in {reference:?}: {reason}")]
    Registry {
        reference: String,
        registry: String,
        reason: String,
    },
    #[error("invalid reference format: path component {component:?} in {reference:?}: {reason}")]
    PathComponent {
        reference: String,
        component: String,
        reason: String,
    },
    #[error("invalid reference format: tag {tag:?} in {reference:?}: {reason}")]
    Tag {
        reference: String,
        tag: String,
        reason: String,
    },
    #[error("invalid reference format: digest {digest:?} in {reference:?}: {source}")]
    Digest {
        reference: String,
        digest: String,
        source: DigestError,
    },
    #[error("invalid repository name {name:?}: a 64-character hexadecimal string is an image ID, not a name; choose another name")]
    LooksLikeId { name: String },
}
