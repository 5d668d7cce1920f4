//! Image references: `[host[:port]/]path[:tag][@digest]`, validated and
//! normalised. Pure: no I/O.
//!
//! The grammar is distribution/reference's (what docker, podman, buildah and
//! skopeo accept); the registry split is docker's: the first `/`-separated
//! component is a registry when it contains `.` or `:`, is `localhost`, or has
//! an upper-case letter. Resolving short names against `registries.conf`
//! belongs to the registry client, not here.

mod error;
mod grammar;
mod matching;

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

pub use error::ReferenceError;
pub use matching::MatchKind;

/// The registry of names rbuild builds or tags without one (buildah's rule).
pub const LOCAL_REGISTRY: &str = "localhost";
/// Docker Hub, as image names spell it.
pub const DOCKER_HUB: &str = "docker.io";
/// The tag a name without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed image reference. Fields are valid by construction: build one with
/// [`Reference::parse`] (or `str::parse`), never by hand from user text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `host[:port]`, or `None` for a short name such as `alpine`.
    pub registry: Option<String>,
    /// The path after the registry: `library/alpine`, `app`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and validates `s` as written: no registry, tag or `library/`
    /// is added (see [`normalize_local`] and [`normalize_docker`]).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        grammar::parse(s)
    }

    /// `registry/repository`, or just the repository for a short name.
    pub fn name(&self) -> String {
        match &self.registry {
            Some(registry) => format!("{registry}/{}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// The tag, or `latest` when there is none.
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// True for a name without a registry (`app`, `library/alpine`).
    pub fn is_short(&self) -> bool {
        self.registry.is_none()
    }

    /// Adds `latest` when there is neither a tag nor a digest, and drops the
    /// tag when there are both (docker: the digest alone decides).
    fn with_default_tag(mut self) -> Reference {
        if self.digest.is_some() {
            self.tag = None;
        } else if self.tag.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

/// A name rbuild builds or tags: without a registry it becomes
/// `localhost/NAME`, without a tag or digest `:latest` (`app` →
/// `localhost/app:latest`, `quay.io/x/app` → `quay.io/x/app:latest`).
pub fn normalize_local(name: &str) -> Result<Reference, ReferenceError> {
    let mut reference = parse_name(name)?;
    if reference.registry.is_none() {
        reference.registry = Some(LOCAL_REGISTRY.to_string());
    }
    grammar::check_length(&reference.name())?;
    Ok(reference.with_default_tag())
}

/// A name to pull, with docker's rules: no registry means Docker Hub,
/// `index.docker.io` is `docker.io`, a one-component Hub path gets
/// `library/`, and `:latest` is added (`alpine` →
/// `docker.io/library/alpine:latest`).
pub fn normalize_docker(name: &str) -> Result<Reference, ReferenceError> {
    let mut reference = parse_name(name)?;
    match reference.registry.as_deref() {
        None | Some("index.docker.io") => reference.registry = Some(DOCKER_HUB.to_string()),
        Some(_) => {}
    }
    if reference.registry.as_deref() == Some(DOCKER_HUB) && !reference.repository.contains('/') {
        reference.repository = format!("library/{}", reference.repository);
    }
    grammar::check_length(&reference.name())?;
    Ok(reference.with_default_tag())
}

/// Parses a name to normalise, refusing a bare 64-hex image ID (docker and
/// podman do too: it would shadow the image of that ID).
fn parse_name(name: &str) -> Result<Reference, ReferenceError> {
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ReferenceError::LooksLikeId {
            name: name.to_string(),
        });
    }
    let reference = Reference::parse(name)?;
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn local_names_get_localhost_and_latest() {
        let cases = [
            ("app", "localhost/app:latest"),
            ("app:1", "localhost/app:1"),
            ("foo/app", "localhost/foo/app:latest"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:v2", "localhost:5000/app:v2"),
            ("quay.io/x/app", "quay.io/x/app:latest"),
            ("docker.io/library/alpine:3", "docker.io/library/alpine:3"),
            ("Registry/app", "Registry/app:latest"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_local(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        let digested = normalize_local(&format!("app:1@sha256:{HEX}")).unwrap();
        assert_eq!(digested.to_string(), format!("localhost/app@sha256:{HEX}"));
    }

    #[test]
    fn docker_names_get_hub_library_and_latest() {
        let cases = [
            ("alpine", "docker.io/library/alpine:latest"),
            ("alpine:3.20", "docker.io/library/alpine:3.20"),
            ("user/app", "docker.io/user/app:latest"),
            ("docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/alpine", "docker.io/library/alpine:latest"),
            ("index.docker.io/user/app:x", "docker.io/user/app:x"),
            ("quay.io/alpine", "quay.io/alpine:latest"),
            ("localhost/alpine", "localhost/alpine:latest"),
            ("[::1]:5000/a/b", "[::1]:5000/a/b:latest"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_docker(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        let digested = normalize_docker(&format!("alpine@sha256:{HEX}")).unwrap();
        assert_eq!(
            digested.to_string(),
            format!("docker.io/library/alpine@sha256:{HEX}")
        );
        assert_eq!(digested.tag, None);
    }

    #[test]
    fn bare_image_ids_are_not_names() {
        let err = normalize_local(HEX).unwrap_err();
        assert!(matches!(err, ReferenceError::LooksLikeId { .. }), "{err}");
        assert!(normalize_docker(HEX).is_err());
        // Parsing alone accepts it, as distribution's Parse does.
        assert_eq!(Reference::parse(HEX).unwrap().repository, HEX);
    }

    #[test]
    fn accessors() {
        let r = Reference::parse("quay.io:443/a/b:c").unwrap();
        assert_eq!(r.name(), "quay.io:443/a/b");
        assert_eq!(r.tag_or_latest(), "c");
        assert!(!r.is_short());
        let short: Reference = "a/b".parse().unwrap();
        assert_eq!(short.name(), "a/b");
        assert_eq!(short.tag_or_latest(), "latest");
        assert!(short.is_short());
    }
}
