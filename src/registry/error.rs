//! Why a registry operation failed, with the registry, repository and what
//! was being done, so a message tells the user where to look.

use std::path::PathBuf;

use crate::digest::Digest;

/// Every failure of the registry client.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// ureq's message already names the URL and the underlying error, so
    /// it is the message rather than a chained source (no repetition).
    #[error("{what}: {cause}")]
    Transport {
        what: String,
        url: String,
        cause: Box<ureq::Transport>,
    },
    #[error("{what} at {url}: the registry answered {status}{}", detail_suffix(.detail))]
    Status {
        what: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{what} at {url}: authentication required (HTTP 401){}; log in with `rbuild login {registry}` or pass --creds USER:PASS", detail_suffix(.detail))]
    Unauthorized {
        what: String,
        url: String,
        registry: String,
        detail: String,
    },
    #[error("{what} at {url}: not found (HTTP 404){}", detail_suffix(.detail))]
    NotFound {
        what: String,
        url: String,
        detail: String,
    },
    #[error("blob {expected} from {url} has the wrong content: it hashes to {actual} ({size} bytes); refusing it")]
    DigestMismatch {
        url: String,
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("reading the body of {url}: {source}")]
    Body {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {why}")]
    Protocol { url: String, why: String },
    #[error("{url}: the manifest is not valid ({why})")]
    BadManifest { url: String, why: String },
    #[error("{name}: not found; tried {}", tried.join("; "))]
    NotFoundAnywhere { name: String, tried: Vec<String> },
    #[error("{image}: no image for platform {wanted}; the index has {available}")]
    NoSuchPlatform {
        image: String,
        wanted: String,
        available: String,
    },
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a valid auth file: {why}", path.display())]
    AuthFile { path: PathBuf, why: String },
    #[error("credential helper docker-credential-{helper} failed for {registry}: {why}")]
    CredentialHelper {
        helper: String,
        registry: String,
        why: String,
    },
    #[error("TLS setup for {host}: {why}")]
    Tls { host: String, why: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error("{what}: {source}")]
    Source {
        what: String,
        #[source]
        source: crate::image::SourceError,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl RegistryError {
    pub fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> RegistryError {
        let (what, path) = (what.into(), path.into());
        move |source| RegistryError::Io { what, path, source }
    }

    /// True for 404s (a tag or blob that is not there).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::NotFound { .. } | RegistryError::NotFoundAnywhere { .. }
        )
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
