//! `docker-archive:FILE[:NAME[:TAG]]`: what `docker save` writes and
//! `docker load` / `skopeo copy docker-archive:` read: `manifest.json`
//! (Config, RepoTags, Layers), the config as `<hex>.json`, each layer
//! uncompressed as `<diff-id hex>.tar`, and a `repositories` file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::oci_archive::{close_tar, open_tar};
use super::sink::{BlobKind, Naming};
use super::{write_image_blobs, ExportError, Exported, Progress};
use crate::image::gojson;
use crate::image::manifest::{Compression, ManifestFormat};
use crate::image::source::ExportSource;

#[derive(Serialize)]
struct ManifestItem<'a> {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<&'a str>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// `name` with `:latest` added when it has no tag.
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

pub(super) fn export(
    source: &dyn ExportSource,
    file: &Path,
    reference: Option<&str>,
    progress: Progress<'_>,
) -> Result<Exported, ExportError> {
    let (tmp, mut sink) = open_tar(file, Naming::DockerSave)?;
    let manifest = write_image_blobs(
        source,
        &mut sink,
        ManifestFormat::Docker,
        Compression::None,
        &BTreeMap::new(),
        progress,
    )?;
    let tagged = reference.map(with_tag);
    let item = ManifestItem {
        config: Naming::DockerSave.name(BlobKind::Config, &manifest.config.digest),
        repo_tags: tagged.iter().map(String::as_str).collect(),
        layers: manifest
            .layers
            .iter()
            .map(|l| Naming::DockerSave.name(BlobKind::Layer, &l.digest))
            .collect(),
    };
    let json = gojson::to_vec(&[item]).expect("manifest.json always serialises");
    sink.put_named("manifest.json", &json)?;
    if let (Some(tagged), Some(top)) = (&tagged, manifest.layers.last()) {
        let split = tagged.rfind(':').unwrap_or(tagged.len());
        let (name, tag) = (&tagged[..split], &tagged[split + 1..]);
        let mut tags = BTreeMap::new();
        tags.insert(tag, top.digest.hex());
        let mut repositories = BTreeMap::new();
        repositories.insert(name, tags);
        let json = gojson::to_vec(&repositories).expect("repositories always serialises");
        sink.put_named("repositories", &json)?;
    }
    close_tar(tmp, sink, file)?;
    let manifest_digest = crate::digest::Digest::of(&manifest.to_json());
    Ok(Exported {
        config_digest: manifest.config.digest,
        manifest,
        manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_default_to_latest() {
        assert_eq!(with_tag("app"), "app:latest");
        assert_eq!(with_tag("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(with_tag("localhost:5000/app:1"), "localhost:5000/app:1");
    }
}
