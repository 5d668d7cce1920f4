//! Manifests and indexes, OCI and docker schema2, with their media types.
//!
//! Serialised through [`super::gojson`] in Go's field order, so a
//! manifest's digest matches the one containers/image computes for the same
//! content.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::config::Platform;
use super::gojson;
use crate::digest::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation naming an image inside an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why a manifest cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("docker schema2 manifests cannot hold zstd layers: use --format oci or --compression-format gzip")]
    ZstdInDocker,
    #[error("manifest is not valid JSON: {0}")]
    Parse(#[from] serde_json::Error),
}

/// How a layer blob is compressed: the layer module's type, so one value
/// flows from `--compression-format` through export to the manifest.
pub use crate::layer::Compression;

/// Which family of manifests and media types to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ManifestFormat {
    #[default]
    Oci,
    Docker,
}

impl ManifestFormat {
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }

    pub fn config_media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        }
    }

    pub fn layer_media_type(self, compression: Compression) -> Result<&'static str, ManifestError> {
        Ok(match (self, compression) {
            (ManifestFormat::Oci, Compression::None) => OCI_LAYER,
            (ManifestFormat::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
            (ManifestFormat::Oci, Compression::Zstd) => OCI_LAYER_ZSTD,
            (ManifestFormat::Docker, Compression::None) => DOCKER_LAYER,
            (ManifestFormat::Docker, Compression::Gzip) => DOCKER_LAYER_GZIP,
            (ManifestFormat::Docker, Compression::Zstd) => return Err(ManifestError::ZstdInDocker),
        })
    }
}

/// An OCI content descriptor (field order of image-spec's `Descriptor`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// An OCI image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A docker schema2 descriptor: docker orders `size` before `digest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerDescriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
}

/// A docker schema2 image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerManifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub config: DockerDescriptor,
    pub layers: Vec<DockerDescriptor>,
}

/// Config and layer descriptors of one image, format-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageManifest {
    pub format: ManifestFormat,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// OCI only: docker schema2 has no annotations (buildah drops them too).
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// The manifest bytes, whose digest is the manifest digest.
    pub fn to_json(&self) -> Vec<u8> {
        let bytes = match self.format {
            ManifestFormat::Oci => gojson::to_vec(&OciManifest {
                schema_version: 2,
                media_type: OCI_MANIFEST.to_string(),
                config: self.config.clone(),
                layers: self.layers.clone(),
                annotations: self.annotations.clone(),
            }),
            ManifestFormat::Docker => {
                let d = |x: &Descriptor| DockerDescriptor {
                    media_type: x.media_type.clone(),
                    size: x.size,
                    digest: x.digest,
                    urls: x.urls.clone(),
                };
                gojson::to_vec(&DockerManifest {
                    schema_version: 2,
                    media_type: DOCKER_MANIFEST.to_string(),
                    config: d(&self.config),
                    layers: self.layers.iter().map(d).collect(),
                })
            }
        };
        bytes.expect("a manifest always serialises")
    }

    pub fn media_type(&self) -> &'static str {
        self.format.manifest_media_type()
    }

    /// Reads either kind of manifest back.
    pub fn from_json(bytes: &[u8]) -> Result<ImageManifest, ManifestError> {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(rename = "mediaType", default)]
            media_type: String,
        }
        let probe: Probe = serde_json::from_slice(bytes)?;
        if probe.media_type == DOCKER_MANIFEST {
            let m: DockerManifest = serde_json::from_slice(bytes)?;
            let d = |x: DockerDescriptor| Descriptor {
                urls: x.urls,
                ..Descriptor::new(&x.media_type, x.digest, x.size)
            };
            Ok(ImageManifest {
                format: ManifestFormat::Docker,
                config: d(m.config),
                layers: m.layers.into_iter().map(d).collect(),
                annotations: BTreeMap::new(),
            })
        } else {
            let m: OciManifest = serde_json::from_slice(bytes)?;
            Ok(ImageManifest {
                format: ManifestFormat::Oci,
                config: m.config,
                layers: m.layers,
                annotations: m.annotations,
            })
        }
    }
}

/// An OCI image index (also the `index.json` of a layout).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciIndex {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(
        rename = "mediaType",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Default for OciIndex {
    fn default() -> OciIndex {
        OciIndex {
            schema_version: 2,
            media_type: OCI_INDEX.to_string(),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

impl OciIndex {
    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self).expect("an index always serialises")
    }
}

/// A docker manifest list entry's platform (containers/image field order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerPlatform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerListEntry {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub size: u64,
    pub digest: Digest,
    pub platform: DockerPlatform,
}

/// A docker manifest list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerManifestList {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub manifests: Vec<DockerListEntry>,
}

impl DockerManifestList {
    /// One entry per (manifest descriptor, platform).
    pub fn new(entries: &[(Descriptor, Platform)]) -> DockerManifestList {
        DockerManifestList {
            schema_version: 2,
            media_type: DOCKER_MANIFEST_LIST.to_string(),
            manifests: entries
                .iter()
                .map(|(d, p)| DockerListEntry {
                    media_type: d.media_type.clone(),
                    size: d.size,
                    digest: d.digest,
                    platform: DockerPlatform {
                        architecture: p.architecture.clone(),
                        os: p.os.clone(),
                        os_version: p.os_version.clone(),
                        os_features: p.os_features.clone(),
                        variant: p.variant.clone(),
                    },
                })
                .collect(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        gojson::to_vec(self).expect("a manifest list always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_manifest_bytes() {
        let c = Digest::of(b"c");
        let l = Digest::of(b"l");
        let mut annotations = BTreeMap::new();
        annotations.insert("k".to_string(), "v".to_string());
        let m = ImageManifest {
            format: ManifestFormat::Oci,
            config: Descriptor::new(OCI_CONFIG, c, 10),
            layers: vec![Descriptor::new(OCI_LAYER_GZIP, l, 20)],
            annotations,
        };
        let json = String::from_utf8(m.to_json()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{c}","size":10}},"layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{l}","size":20}}],"annotations":{{"k":"v"}}}}"#
            )
        );
        assert_eq!(ImageManifest::from_json(json.as_bytes()).unwrap(), m);
    }

    #[test]
    fn docker_manifest_bytes() {
        let c = Digest::of(b"c");
        let m = ImageManifest {
            format: ManifestFormat::Docker,
            config: Descriptor::new(DOCKER_CONFIG, c, 10),
            layers: vec![],
            annotations: BTreeMap::new(),
        };
        let json = String::from_utf8(m.to_json()).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"{DOCKER_CONFIG}","size":10,"digest":"{c}"}},"layers":[]}}"#
            )
        );
        assert_eq!(ImageManifest::from_json(json.as_bytes()).unwrap(), m);
    }

    #[test]
    fn media_types() {
        assert_eq!(
            ManifestFormat::Docker
                .layer_media_type(Compression::Gzip)
                .unwrap(),
            DOCKER_LAYER_GZIP
        );
        assert!(matches!(
            ManifestFormat::Docker.layer_media_type(Compression::Zstd),
            Err(ManifestError::ZstdInDocker)
        ));
        assert_eq!("zstd".parse::<Compression>(), Ok(Compression::Zstd));
        assert!("lz4".parse::<Compression>().is_err());
    }

    #[test]
    fn manifest_list() {
        let d = Descriptor::new(DOCKER_MANIFEST, Digest::of(b"m"), 5);
        let list = DockerManifestList::new(&[(d, Platform::host())]);
        let json = String::from_utf8(list.to_json()).unwrap();
        assert!(json.starts_with(&format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":5,"#
        )));
    }
}
