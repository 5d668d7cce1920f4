//! Matching what a user typed (`app`, `app:1`, `quay.io/x/app`) against the
//! names stored with images, the way buildah and podman look images up
//! (containers/common `libimage`): an exact name first, then a short name
//! under `localhost/`, then under Docker Hub, then any stored repository that
//! ends in `/` + the short name. A missing tag means `latest`.

use super::{Reference, DOCKER_HUB, LOCAL_REGISTRY};

/// How a stored name matched; a later variant is a better match, so the
/// store picks the maximum when several images match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchKind {
    /// A short name matched the end of the stored repository:
    /// `app` ~ `quay.io/team/app:latest`.
    RepositorySuffix,
    /// A short name normalised to Docker Hub: `alpine` ~ `docker.io/library/alpine:latest`.
    DockerHub,
    /// A short name under `localhost/`: `app` ~ `localhost/app:latest`.
    Local,
    /// Same registry, repository and tag.
    Exact,
}

impl Reference {
    /// How `stored` (a name kept with an image) matches `self` (what the
    /// user typed, as parsed); `None` when it does not. When `self` has a
    /// digest and `stored` has none, only the name is compared: the caller
    /// checks the digest against the image's manifests.
    pub fn match_stored(&self, stored: &Reference) -> Option<MatchKind> {
        let typed = self.clone().with_default_tag();
        if !version_matches(&typed, stored) {
            return None;
        }
        let stored_name = hub_name(stored.registry.as_deref(), &stored.repository);
        if typed.registry.is_some() || stored.registry.is_none() {
            let typed_name = hub_name(typed.registry.as_deref(), &typed.repository);
            return (typed_name == stored_name).then_some(MatchKind::Exact);
        }
        if stored_name == format!("{LOCAL_REGISTRY}/{}", typed.repository) {
            return Some(MatchKind::Local);
        }
        if stored_name == hub_name(Some(DOCKER_HUB), &typed.repository) {
            return Some(MatchKind::DockerHub);
        }
        stored_name
            .strip_suffix(typed.repository.as_str())
            .filter(|prefix| prefix.ends_with('/'))
            .map(|_| MatchKind::RepositorySuffix)
    }

    /// The full names to look up for `self`, best first, for a store that
    /// resolves exact names: the name itself when it has a registry, else
    /// `localhost/NAME` then Docker Hub's. A store that also wants podman's
    /// repository-suffix fallback uses [`Reference::best_match`].
    pub fn lookup_candidates(&self) -> Vec<Reference> {
        let typed = self.clone().with_default_tag();
        let under = |registry: &str| Reference {
            registry: Some(registry.to_string()),
            ..typed.clone()
        };
        match &typed.registry {
            Some(_) => vec![typed.clone()],
            None => {
                let mut hub = under(DOCKER_HUB);
                if !hub.repository.contains('/') {
                    hub.repository = format!("library/{}", hub.repository);
                }
                vec![under(LOCAL_REGISTRY), hub]
            }
        }
    }

    /// The best match among `stored` names (the first of equals), if any.
    pub fn best_match<'a, I>(&self, stored: I) -> Option<(&'a Reference, MatchKind)>
    where
        I: IntoIterator<Item = &'a Reference>,
    {
        let mut best: Option<(&'a Reference, MatchKind)> = None;
        for candidate in stored {
            if let Some(kind) = self.match_stored(candidate) {
                if best.is_none_or(|(_, k)| kind > k) {
                    best = Some((candidate, kind));
                }
            }
        }
        best
    }
}

/// Tag or digest agree: digests when both have one; a typed digest alone
/// leaves the check to the caller; otherwise tags (a bare stored name is `latest`).
fn version_matches(typed: &Reference, stored: &Reference) -> bool {
    match (&typed.digest, &stored.digest) {
        (Some(t), Some(s)) => t == s,
        (Some(_), None) => true,
        (None, Some(_)) => stored.tag.is_some() && stored.tag == typed.tag,
        (None, None) => Some(stored.tag_or_latest()) == typed.tag.as_deref(),
    }
}

/// `registry/repository` with Docker Hub's aliases folded: `index.docker.io`
/// is `docker.io`, and a one-component Hub path is under `library/`.
fn hub_name(registry: Option<&str>, repository: &str) -> String {
    match registry {
        Some(DOCKER_HUB | "index.docker.io") if !repository.contains('/') => {
            format!("{DOCKER_HUB}/library/{repository}")
        }
        Some(DOCKER_HUB | "index.docker.io") => format!("{DOCKER_HUB}/{repository}"),
        Some(registry) => format!("{registry}/{repository}"),
        None => repository.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const OTHER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn kind(typed: &str, stored: &str) -> Option<MatchKind> {
        let typed = Reference::parse(typed).unwrap();
        let stored = Reference::parse(stored).unwrap();
        typed.match_stored(&stored)
    }

    #[test]
    fn short_names_match_like_podman() {
        use MatchKind::*;
        assert_eq!(kind("app", "localhost/app:latest"), Some(Local));
        assert_eq!(kind("app:1", "localhost/app:1"), Some(Local));
        assert_eq!(kind("app", "localhost/app:1"), None);
        assert_eq!(kind("app:1", "localhost/app:latest"), None);
        assert_eq!(
            kind("alpine", "docker.io/library/alpine:latest"),
            Some(DockerHub)
        );
        assert_eq!(
            kind("user/app", "docker.io/user/app:latest"),
            Some(DockerHub)
        );
        assert_eq!(
            kind("app", "quay.io/team/app:latest"),
            Some(RepositorySuffix)
        );
        assert_eq!(
            kind("team/app", "quay.io/team/app:latest"),
            Some(RepositorySuffix)
        );
        assert_eq!(kind("app", "quay.io/team/myapp:latest"), None);
        assert_eq!(kind("foo/app", "localhost/foo/app:latest"), Some(Local));
    }

    #[test]
    fn full_names_match_exactly() {
        use MatchKind::*;
        assert_eq!(kind("localhost/app", "localhost/app:latest"), Some(Exact));
        assert_eq!(kind("localhost/app:2", "localhost/app:2"), Some(Exact));
        assert_eq!(kind("quay.io/team/app", "localhost/team/app:latest"), None);
        assert_eq!(kind("quay.io/app", "quay.io/team/app:latest"), None);
        assert_eq!(
            kind("docker.io/alpine", "docker.io/library/alpine:latest"),
            Some(Exact)
        );
        assert_eq!(
            kind("index.docker.io/library/alpine", "docker.io/library/alpine"),
            Some(Exact)
        );
        assert_eq!(kind("localhost:5000/app", "localhost/app:latest"), None);
    }

    #[test]
    fn digests() {
        let typed = format!("app@sha256:{HEX}");
        assert_eq!(kind(&typed, "localhost/app:latest"), Some(MatchKind::Local));
        assert_eq!(
            kind(&typed, &format!("localhost/app@sha256:{HEX}")),
            Some(MatchKind::Local)
        );
        assert_eq!(kind(&typed, &format!("localhost/app@sha256:{OTHER}")), None);
        // Tag and digest typed together: the digest alone decides.
        assert_eq!(
            kind(&format!("app:9@sha256:{HEX}"), "localhost/app:latest"),
            Some(MatchKind::Local)
        );
        assert_eq!(kind("app", &format!("localhost/app@sha256:{HEX}")), None);
        assert_eq!(
            kind("app", &format!("localhost/app:latest@sha256:{HEX}")),
            Some(MatchKind::Local)
        );
    }

    #[test]
    fn lookup_candidates_best_first() {
        let names = |typed: &str| -> Vec<String> {
            let typed = Reference::parse(typed).unwrap();
            typed
                .lookup_candidates()
                .iter()
                .map(|r| r.to_string())
                .collect()
        };
        assert_eq!(
            names("app"),
            ["localhost/app:latest", "docker.io/library/app:latest"]
        );
        assert_eq!(
            names("team/app:2"),
            ["localhost/team/app:2", "docker.io/team/app:2"]
        );
        assert_eq!(names("quay.io/app"), ["quay.io/app:latest"]);
        assert_eq!(
            names(&format!("app:1@sha256:{HEX}")),
            [
                format!("localhost/app@sha256:{HEX}"),
                format!("docker.io/library/app@sha256:{HEX}")
            ]
        );
        for typed in ["app", "team/app:2", "quay.io/app"] {
            let parsed = Reference::parse(typed).unwrap();
            for candidate in parsed.lookup_candidates() {
                assert!(
                    parsed.match_stored(&candidate).is_some(),
                    "{typed} vs {candidate}"
                );
            }
        }
    }

    #[test]
    fn best_match_prefers_exact_then_local() {
        let stored: Vec<Reference> = [
            "quay.io/x/app:latest",
            "docker.io/library/app:latest",
            "localhost/app:latest",
        ]
        .iter()
        .map(|s| Reference::parse(s).unwrap())
        .collect();
        let typed = Reference::parse("app").unwrap();
        let (found, how) = typed.best_match(&stored).unwrap();
        assert_eq!(found.to_string(), "localhost/app:latest");
        assert_eq!(how, MatchKind::Local);
        let typed = Reference::parse("quay.io/x/app").unwrap();
        assert_eq!(typed.best_match(&stored).unwrap().1, MatchKind::Exact);
        assert!(Reference::parse("nope")
            .unwrap()
            .best_match(&stored)
            .is_none());
    }
}
