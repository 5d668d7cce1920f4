//! Export transports: parse a destination such as `oci:DIR[:ref]` and write
//! an image there from an [`ExportSource`].
//!
//! Supported: `oci:` (OCI image layout), `oci-archive:` (the same as a tar),
//! `docker-archive:` (docker save format), `dir:` (containers/image's
//! directory format). `docker://` is recognised and reported as not yet
//! supported; the registry module will implement it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use super::config::Platform;
use super::manifest::{
    Compression, Descriptor, DockerManifestList, ImageManifest, ManifestError, ManifestFormat,
    OciIndex, DOCKER_MANIFEST_LIST, OCI_INDEX,
};
use super::source::{BlobInfo, ExportSource, SourceError};
use crate::digest::Digest;

mod dir;
mod docker_archive;
mod oci;
mod oci_archive;
pub mod sink;

use sink::{BlobKind, BlobSink};

/// The transports `push` can write to, as users type them.
pub const SUPPORTED: &str =
    "oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME[:TAG]], dir:DIR";

/// Why a destination was refused or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("unknown transport in {0:?}: supported are {SUPPORTED}")]
    UnknownTransport(String),
    #[error(
        "transport {transport:?} in {input:?} is not yet supported; supported are {SUPPORTED}"
    )]
    NotYetSupported { transport: String, input: String },
    #[error("{input:?}: {why}")]
    BadDestination { input: String, why: String },
    #[error("{what} ({}): {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Source {
        what: String,
        #[source]
        source: SourceError,
    },
    #[error("blob written into {} is not what the source claimed: claimed {} ({} bytes), got {} ({} bytes)",
        path.display(), claimed.digest, claimed.size, got.digest, got.size)]
    BlobMismatch {
        path: PathBuf,
        claimed: BlobInfo,
        got: BlobInfo,
    },
    #[error("layer {index} has diff ID {expected} in the config, but its uncompressed stream hashes to {got}: the layer changed on disk")]
    DiffIdMismatch {
        index: usize,
        expected: Digest,
        got: Digest,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{} is not a valid {what}: {why}", path.display())]
    Corrupt {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// A parsed destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Oci {
        dir: PathBuf,
        reference: Option<String>,
    },
    OciArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    DockerArchive {
        file: PathBuf,
        reference: Option<String>,
    },
    Dir {
        dir: PathBuf,
    },
}

impl FromStr for Destination {
    type Err = ExportError;

    fn from_str(input: &str) -> Result<Destination, ExportError> {
        let Some((transport, rest)) = input.split_once(':') else {
            return Err(ExportError::UnknownTransport(input.to_string()));
        };
        let bad = |why: &str| ExportError::BadDestination {
            input: input.to_string(),
            why: why.to_string(),
        };
        // containers/image splits path and reference at the first colon.
        let split = |rest: &str| -> Result<(PathBuf, Option<String>), ExportError> {
            let (path, reference) = match rest.split_once(':') {
                Some((p, r)) => (p, Some(r.to_string())),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(bad("the path is empty"));
            }
            if reference.as_deref() == Some("") {
                return Err(bad("the reference after the path is empty"));
            }
            Ok((PathBuf::from(path), reference))
        };
        match transport {
            "oci" | "oci-archive" => {
                let (path, reference) = split(rest)?;
                if let Some(r) = &reference {
                    validate_oci_ref(r).map_err(bad)?;
                }
                Ok(if transport == "oci" {
                    Destination::Oci {
                        dir: path,
                        reference,
                    }
                } else {
                    Destination::OciArchive {
                        file: path,
                        reference,
                    }
                })
            }
            "docker-archive" => {
                let (file, reference) = split(rest)?;
                if reference.as_deref().is_some_and(|r| r.contains('@')) {
                    return Err(bad(
                        "docker-archive names cannot hold a digest; use NAME[:TAG]",
                    ));
                }
                Ok(Destination::DockerArchive { file, reference })
            }
            "dir" => {
                if rest.is_empty() {
                    return Err(bad("the path is empty"));
                }
                Ok(Destination::Dir {
                    dir: PathBuf::from(rest),
                })
            }
            "docker" | "docker-daemon" | "containers-storage" => {
                Err(ExportError::NotYetSupported {
                    transport: transport.to_string(),
                    input: input.to_string(),
                })
            }
            _ => Err(ExportError::UnknownTransport(input.to_string())),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let with_ref =
            |f: &mut fmt::Formatter<'_>, t: &str, p: &PathBuf, r: &Option<String>| match r {
                Some(r) => write!(f, "{t}:{}:{r}", p.display()),
                None => write!(f, "{t}:{}", p.display()),
            };
        match self {
            Destination::Oci { dir, reference } => with_ref(f, "oci", dir, reference),
            Destination::OciArchive { file, reference } => {
                with_ref(f, "oci-archive", file, reference)
            }
            Destination::DockerArchive { file, reference } => {
                with_ref(f, "docker-archive", file, reference)
            }
            Destination::Dir { dir } => write!(f, "dir:{}", dir.display()),
        }
    }
}

/// image-spec's grammar for `org.opencontainers.image.ref.name`:
/// components of alphanumerics joined by `-._:@+` (or `--`), split by `/`.
fn validate_oci_ref(reference: &str) -> Result<(), &'static str> {
    let ok = reference.split('/').all(|component| {
        !component.is_empty()
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric())
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:@+".contains(c))
    });
    if ok {
        Ok(())
    } else {
        Err("an OCI reference is letters, digits and -._:@+ in /-separated parts, each starting and ending with a letter or digit")
    }
}

/// How to write the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Honoured by `dir:`. OCI layouts (`oci:`, `oci-archive:`) always get
    /// OCI manifests, as containers/image converts for them (its layout
    /// reader finds nothing else); `docker-archive:` is always docker.
    pub format: ManifestFormat,
    /// Ignored by `docker-archive:`, which holds uncompressed layers.
    pub compression: Compression,
    /// Manifest annotations (OCI manifests only).
    pub annotations: BTreeMap<String, String>,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            format: ManifestFormat::Oci,
            compression: Compression::Gzip,
            annotations: BTreeMap::new(),
        }
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    pub manifest: ImageManifest,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
}

/// What an export has just done, for `push` to report as buildah does
/// ("Copying blob …", "Copying config …", "Writing manifest …").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportEvent {
    /// A layer blob is in place; `reused` when it came from the source's
    /// cache rather than being made now.
    Layer {
        index: usize,
        blob: BlobInfo,
        reused: bool,
    },
    Config {
        blob: BlobInfo,
    },
    Manifest {
        digest: Digest,
    },
}

/// Receives [`ExportEvent`]s as the export goes.
pub type Progress<'a> = &'a mut dyn FnMut(ExportEvent);

/// Writes the image from `source` to `destination`.
pub fn export(
    source: &dyn ExportSource,
    destination: &Destination,
    options: &ExportOptions,
) -> Result<Exported, ExportError> {
    export_with_progress(source, destination, options, &mut |_| {})
}

/// [`export`], reporting each step to `progress`.
pub fn export_with_progress(
    source: &dyn ExportSource,
    destination: &Destination,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<Exported, ExportError> {
    let top = Top::Image(source);
    let only =
        |(_, mut images): (Digest, Vec<Exported>)| images.pop().expect("one image was exported");
    let exported = match destination {
        Destination::Oci { dir, reference } => only(oci::export(
            &top,
            dir,
            reference.as_deref(),
            options,
            progress,
        )?),
        Destination::OciArchive { file, reference } => only(oci_archive::export(
            &top,
            file,
            reference.as_deref(),
            options,
            progress,
        )?),
        Destination::DockerArchive { file, reference } => {
            docker_archive::export(source, file, reference.as_deref(), progress)?
        }
        Destination::Dir { dir: path } => dir::export(source, path, options, progress)?,
    };
    progress(ExportEvent::Manifest {
        digest: exported.manifest_digest,
    });
    Ok(exported)
}

/// What a multi-platform export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedIndex {
    /// The index (OCI) or manifest list (docker) digest.
    pub digest: Digest,
    /// Each image, in the order given.
    pub images: Vec<Exported>,
}

/// Writes several images, one per platform, under one OCI index (or docker
/// manifest list with `ManifestFormat::Docker`) to `oci:` or `oci-archive:`.
pub fn export_index(
    images: &[(&dyn ExportSource, Platform)],
    destination: &Destination,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<ExportedIndex, ExportError> {
    let top = Top::Index(images);
    let (digest, images) = match destination {
        Destination::Oci { dir, reference } => {
            oci::export(&top, dir, reference.as_deref(), options, progress)?
        }
        Destination::OciArchive { file, reference } => {
            oci_archive::export(&top, file, reference.as_deref(), options, progress)?
        }
        other => {
            return Err(ExportError::BadDestination {
                input: other.to_string(),
                why: "multi-platform images can be written to oci: and oci-archive: only".into(),
            })
        }
    };
    progress(ExportEvent::Manifest { digest });
    Ok(ExportedIndex { digest, images })
}

/// What goes at the top of a layout: one image, or an index of several.
pub(super) enum Top<'a> {
    Image(&'a dyn ExportSource),
    Index(&'a [(&'a dyn ExportSource, Platform)]),
}

/// Writes everything `top` needs into `sink`: blobs, manifests and, for an
/// index, the index itself. Returns the descriptor a layout lists and the
/// images written.
pub(super) fn write_top(
    top: &Top<'_>,
    sink: &mut dyn BlobSink,
    options: &ExportOptions,
    progress: Progress<'_>,
) -> Result<(Descriptor, Vec<Exported>), ExportError> {
    let mut write_one = |source: &dyn ExportSource,
                         progress: Progress<'_>|
     -> Result<(Descriptor, Exported), ExportError> {
        let manifest = write_image_blobs(
            source,
            sink,
            options.format,
            options.compression,
            &options.annotations,
            progress,
        )?;
        let info = sink.put_bytes(BlobKind::Manifest, &manifest.to_json())?;
        let descriptor = Descriptor::new(manifest.media_type(), info.digest, info.size);
        let exported = Exported {
            config_digest: manifest.config.digest,
            manifest,
            manifest_digest: info.digest,
        };
        Ok((descriptor, exported))
    };
    match top {
        Top::Image(source) => {
            let (descriptor, exported) = write_one(*source, progress)?;
            Ok((descriptor, vec![exported]))
        }
        Top::Index(images) => {
            let mut entries = Vec::new();
            let mut exported = Vec::new();
            for (source, platform) in images.iter() {
                let (descriptor, image) = write_one(*source, &mut *progress)?;
                entries.push((descriptor, platform.clone()));
                exported.push(image);
            }
            let (media_type, bytes) = match options.format {
                ManifestFormat::Oci => {
                    let index = OciIndex {
                        manifests: entries
                            .into_iter()
                            .map(|(mut d, p)| {
                                d.platform = Some(p);
                                d
                            })
                            .collect(),
                        ..OciIndex::default()
                    };
                    (OCI_INDEX, index.to_json())
                }
                ManifestFormat::Docker => (
                    DOCKER_MANIFEST_LIST,
                    DockerManifestList::new(&entries).to_json(),
                ),
            };
            let info = sink.put_bytes(BlobKind::Manifest, &bytes)?;
            Ok((
                Descriptor::new(media_type, info.digest, info.size),
                exported,
            ))
        }
    }
}

/// Writes every layer blob (cached ones copied, the rest streamed from the
/// source) and the config; returns the manifest that describes them.
fn write_image_blobs(
    source: &dyn ExportSource,
    sink: &mut dyn BlobSink,
    format: ManifestFormat,
    compression: Compression,
    annotations: &BTreeMap<String, String>,
    progress: Progress<'_>,
) -> Result<ImageManifest, ExportError> {
    let media_type = format.layer_media_type(compression)?;
    let mut layers = Vec::new();
    for (index, layer) in source.layers().iter().enumerate() {
        let (info, reused) = match source.cached_layer_blob(index, compression) {
            Some((info, path)) => {
                sink.put_file(BlobKind::Layer, info, &path)?;
                (info, true)
            }
            None => {
                let mut diff_id = None;
                let mut produce = |w: &mut dyn Write| {
                    let written = source.write_layer_blob(index, compression, w)?;
                    diff_id = Some(written.diff_id);
                    Ok(written.blob)
                };
                let info = sink.put_stream(BlobKind::Layer, &mut produce)?;
                if let Some(got) = diff_id.filter(|d| *d != layer.diff_id) {
                    return Err(ExportError::DiffIdMismatch {
                        index,
                        expected: layer.diff_id,
                        got,
                    });
                }
                (info, false)
            }
        };
        // An uncompressed blob is its own diff: check cached ones too.
        if compression == Compression::None && info.digest != layer.diff_id {
            return Err(ExportError::DiffIdMismatch {
                index,
                expected: layer.diff_id,
                got: info.digest,
            });
        }
        progress(ExportEvent::Layer {
            index,
            blob: info,
            reused,
        });
        layers.push(Descriptor::new(media_type, info.digest, info.size));
    }
    let config = source.config().map_err(|source| ExportError::Source {
        what: "reading the image config".to_string(),
        source,
    })?;
    let config_info = sink.put_bytes(BlobKind::Config, &config)?;
    progress(ExportEvent::Config { blob: config_info });
    Ok(ImageManifest {
        format,
        config: Descriptor::new(
            format.config_media_type(),
            config_info.digest,
            config_info.size,
        ),
        layers,
        annotations: match format {
            ManifestFormat::Oci => annotations.clone(),
            ManifestFormat::Docker => BTreeMap::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Destination, ExportError> {
        s.parse()
    }

    #[test]
    fn parses_each_transport() {
        assert_eq!(
            parse("oci:/tmp/lay:v1").unwrap(),
            Destination::Oci {
                dir: "/tmp/lay".into(),
                reference: Some("v1".into())
            }
        );
        assert_eq!(
            parse("oci-archive:a.tar").unwrap(),
            Destination::OciArchive {
                file: "a.tar".into(),
                reference: None
            }
        );
        assert_eq!(
            parse("docker-archive:/x.tar:app:1.0").unwrap(),
            Destination::DockerArchive {
                file: "/x.tar".into(),
                reference: Some("app:1.0".into())
            }
        );
        assert_eq!(
            parse("dir:/d").unwrap(),
            Destination::Dir { dir: "/d".into() }
        );
        assert_eq!(
            parse("oci:/tmp/lay:v1").unwrap().to_string(),
            "oci:/tmp/lay:v1"
        );
    }

    #[test]
    fn explains_refusals() {
        let err = parse("docker://quay.io/x").unwrap_err();
        assert!(matches!(err, ExportError::NotYetSupported { .. }));
        assert!(err.to_string().contains("not yet supported"), "{err}");
        let err = parse("ftp:/x").unwrap_err();
        assert!(err.to_string().contains("oci-archive:FILE"), "{err}");
        assert!(matches!(
            parse("/just/a/path"),
            Err(ExportError::UnknownTransport(_))
        ));
        assert!(matches!(
            parse("oci:"),
            Err(ExportError::BadDestination { .. })
        ));
        assert!(matches!(
            parse("oci:/d:"),
            Err(ExportError::BadDestination { .. })
        ));
        assert!(matches!(
            parse("oci:/d:-bad"),
            Err(ExportError::BadDestination { .. })
        ));
        assert!(matches!(
            parse("oci:/d:a//b"),
            Err(ExportError::BadDestination { .. })
        ));
        assert!(matches!(
            parse("docker-archive:/x.tar:a@sha256:00"),
            Err(ExportError::BadDestination { .. })
        ));
        assert!(parse("oci:/d:my/app:1.0").is_ok());
    }
}
