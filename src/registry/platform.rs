//! Picking one image out of an OCI index or docker manifest list by
//! platform (`--platform os/arch[/variant]`, default the host's).

use serde::Deserialize;

use crate::digest::Digest;
use crate::image::Platform;

/// `os/arch[/variant]` as users type it.
pub fn parse_platform(s: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        [os, arch] => (*os, *arch, ""),
        [os, arch, variant] => (*os, *arch, *variant),
        _ => {
            return Err(format!(
                "--platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8"
            ))
        }
    };
    if os.is_empty() || arch.is_empty() {
        return Err(format!(
            "--platform {s:?}: the OS and architecture must not be empty"
        ));
    }
    Ok(Platform {
        os: os.to_string(),
        architecture: arch.to_string(),
        variant: variant.to_string(),
        ..Platform::default()
    })
}

/// `os/arch[/variant]` for messages.
pub fn platform_string(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

/// One entry of an index or manifest list.
#[derive(Clone, Debug, Deserialize)]
pub struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<EntryPlatform>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct EntryPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: String,
}

/// An OCI index or docker manifest list.
#[derive(Clone, Debug, Deserialize)]
pub struct Index {
    pub manifests: Vec<IndexEntry>,
}

impl EntryPlatform {
    fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
            ..Platform::default()
        }
    }
}

/// ARM's implied default variants, as containerd normalises them.
fn default_variant(arch: &str) -> &'static str {
    match arch {
        "arm64" => "v8",
        "arm" => "v7",
        _ => "",
    }
}

impl Index {
    /// The entry for `wanted`: same OS and architecture, and the same variant
    /// when one is asked for (an entry without a variant counts as the
    /// architecture's default). Attestation entries (`unknown/unknown`) never match.
    pub fn select(&self, wanted: &Platform) -> Option<&IndexEntry> {
        let want_variant = if wanted.variant.is_empty() {
            default_variant(&wanted.architecture)
        } else {
            wanted.variant.as_str()
        };
        let candidates: Vec<&IndexEntry> = self
            .manifests
            .iter()
            .filter(|e| {
                e.platform
                    .as_ref()
                    .is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture)
            })
            .collect();
        let variant_of = |e: &IndexEntry| {
            let v = e.platform.as_ref().map_or("", |p| p.variant.as_str());
            if v.is_empty() {
                default_variant(&wanted.architecture).to_string()
            } else {
                v.to_string()
            }
        };
        candidates
            .iter()
            .find(|e| variant_of(e) == want_variant)
            .or_else(|| {
                if wanted.variant.is_empty() {
                    candidates.first()
                } else {
                    None
                }
            })
            .copied()
    }

    /// Every platform listed, for the error when none matches.
    pub fn platforms(&self) -> String {
        let list: Vec<String> = self
            .manifests
            .iter()
            .map(|e| {
                e.platform
                    .as_ref()
                    .map_or("(no platform)".to_string(), |p| {
                        platform_string(&p.to_platform())
                    })
            })
            .collect();
        if list.is_empty() {
            "no entries".into()
        } else {
            list.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let d = |s: &str| Digest::of(s.as_bytes());
        serde_json::from_value(serde_json::json!({"manifests": [
            {"mediaType": "m", "digest": d("amd").to_string(), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "m", "digest": d("arm7").to_string(), "size": 1, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"mediaType": "m", "digest": d("arm64").to_string(), "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "m", "digest": d("att").to_string(), "size": 1, "platform": {"os": "unknown", "architecture": "unknown"}}
        ]}))
        .unwrap()
    }

    #[test]
    fn selects_by_platform() {
        let i = index();
        let pick = |s: &str| i.select(&parse_platform(s).unwrap()).map(|e| e.digest);
        assert_eq!(pick("linux/amd64"), Some(Digest::of(b"amd")));
        assert_eq!(pick("linux/arm64/v8"), Some(Digest::of(b"arm64")));
        assert_eq!(pick("linux/arm64"), Some(Digest::of(b"arm64")));
        assert_eq!(pick("linux/arm"), Some(Digest::of(b"arm7")));
        assert_eq!(pick("linux/arm/v6"), None);
        assert_eq!(pick("windows/amd64"), None);
        assert!(i.platforms().contains("linux/arm/v7"));
    }

    #[test]
    fn platform_strings() {
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//").is_err());
        assert_eq!(
            platform_string(&parse_platform("linux/arm64/v8").unwrap()),
            "linux/arm64/v8"
        );
    }
}
