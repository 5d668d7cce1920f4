//! Pushing an image to a registry from any [`ExportSource`].
//!
//! Layers go in parallel (`max_parallel`): a blob the source already has on
//! disk is checked with HEAD first and not uploaded when the registry has
//! it; otherwise a cross-repository mount is tried from the repositories the
//! caller knows the blob came from, and only then is it uploaded, streaming
//! from the file (one PUT, or PATCH chunks). A layer the source must make
//! first is made once (the store keeps it for the next push). The config
//! follows, the manifest last, so a reader never sees a manifest whose
//! blobs are missing.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::{Access, Client, RegistryOptions};
use super::error::{RegistryError, Result};
use crate::digest::Digest;
use crate::image::manifest::{Descriptor, ImageManifest, ManifestFormat};
use crate::image::source::{BlobInfo, ExportSource};
use crate::image::Compression;
use crate::reference::Reference;

/// How to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    pub format: ManifestFormat,
    pub compression: Compression,
    pub annotations: BTreeMap<String, String>,
    /// Repositories on the destination registry that may already hold the
    /// blobs (where the image was pulled from): tried as mount sources.
    pub mount_from: Vec<String>,
}

/// What a push reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushEvent {
    /// A layer is in the registry: `existed` when it was there already,
    /// `mounted` when another repository lent it.
    Blob {
        index: usize,
        blob: BlobInfo,
        existed: bool,
        mounted: bool,
    },
    /// Bytes of a layer blob uploaded so far.
    BlobProgress {
        digest: Digest,
        sent: u64,
        size: u64,
    },
    Config {
        blob: BlobInfo,
        existed: bool,
    },
    Manifest {
        digest: Digest,
    },
}

/// What a push wrote.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub manifest: ImageManifest,
    pub manifest_digest: Digest,
    /// The size of the manifest bytes sent.
    pub manifest_size: u64,
}

/// Pushes `source` to `destination` (a fully qualified reference).
pub fn push(
    source: &(dyn ExportSource + Sync),
    destination: &Reference,
    opts: &PushOptions,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<Pushed> {
    let (client, repo) = connect(destination, opts)?;
    let target = match &destination.digest {
        Some(d) => Target::Digest(*d),
        None => Target::Tag(destination.tag_or_latest().to_string()),
    };
    push_image(&client, &repo, source, &target, opts, None, progress)
}

/// The client for `destination`'s registry, and its repository.
pub(super) fn connect(destination: &Reference, opts: &PushOptions) -> Result<(Client, String)> {
    let registry = destination.registry.as_deref().ok_or_else(|| {
        RegistryError::Config(format!("destination {destination} has no registry"))
    })?;
    let client = Client::connect(registry, &opts.registry)?;
    Ok((client, destination.repository.clone()))
}

/// Which reference a manifest is put under.
pub(super) enum Target {
    /// A tag.
    Tag(String),
    /// This digest, which the manifest must have.
    Digest(Digest),
    /// The manifest's own digest (an instance of a list).
    OwnDigest,
}

/// Pushes one image into `repo`: layers, config, then the manifest under
/// `target`. When `original` (the manifest the image came with) describes
/// exactly what was pushed, its bytes are sent instead of new ones, so a
/// pulled image goes back with the digest it had.
pub(super) fn push_image(
    client: &Client,
    repo: &str,
    source: &(dyn ExportSource + Sync),
    target: &Target,
    opts: &PushOptions,
    original: Option<&[u8]>,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<Pushed> {
    let media_type = opts
        .format
        .layer_media_type(opts.compression)
        .map_err(|e| RegistryError::Config(e.to_string()))?;
    let layers = source.layers();
    let results: Mutex<Vec<Option<BlobInfo>>> = Mutex::new(vec![None; layers.len()]);
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..opts.registry.max_parallel.max(1).min(layers.len()) {
            scope.spawn(|| loop {
                if abort.load(Ordering::Relaxed) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= layers.len() {
                    break;
                }
                match push_layer(source, client, repo, index, opts, progress) {
                    Ok(info) => {
                        results.lock().unwrap_or_else(|p| p.into_inner())[index] = Some(info);
                    }
                    Err(e) => {
                        abort.store(true, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut descriptors = Vec::new();
    for (i, info) in results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .enumerate()
    {
        let info =
            info.ok_or_else(|| RegistryError::Config(format!("layer {i} was not pushed")))?;
        if opts.compression == Compression::None && info.digest != layers[i].diff_id {
            return Err(RegistryError::Config(format!(
                "layer {i}: the uncompressed blob hashes to {} but the config's diff ID is {}",
                info.digest, layers[i].diff_id
            )));
        }
        descriptors.push(Descriptor::new(media_type, info.digest, info.size));
    }

    let config = source.config().map_err(|source| RegistryError::Source {
        what: "reading the image config".into(),
        source,
    })?;
    let config_digest = Digest::of(&config);
    let access = Access::Push(repo.to_string());
    let existed = client.head_blob(repo, &config_digest, &access)?.is_some();
    if !existed && !try_mounts(client, repo, &config_digest, &opts.mount_from)? {
        client.upload_blob_bytes(repo, &config)?;
    }
    let config_info = BlobInfo {
        digest: config_digest,
        size: config.len() as u64,
    };
    progress(PushEvent::Config {
        blob: config_info,
        existed,
    });
    let manifest = ImageManifest {
        format: opts.format,
        config: Descriptor::new(
            opts.format.config_media_type(),
            config_digest,
            config_info.size,
        ),
        layers: descriptors,
        annotations: match opts.format {
            ManifestFormat::Oci => opts.annotations.clone(),
            ManifestFormat::Docker => BTreeMap::new(),
        },
    };
    let bytes = match original {
        Some(o) if ImageManifest::from_json(o).is_ok_and(|m| m == manifest) => o.to_vec(),
        _ => manifest.to_json(),
    };
    let own = Digest::of(&bytes);
    let reference = match target {
        Target::Tag(t) => t.clone(),
        Target::Digest(d) => d.to_string(),
        Target::OwnDigest => own.to_string(),
    };
    let digest = client.put_manifest(repo, &reference, manifest.media_type(), &bytes)?;
    if let Target::Digest(want) = target {
        if *want != digest {
            return Err(RegistryError::Config(format!(
                "the destination names digest {want}, but the manifest pushed is {digest}"
            )));
        }
    }
    progress(PushEvent::Manifest { digest });
    Ok(Pushed {
        manifest,
        manifest_digest: digest,
        manifest_size: bytes.len() as u64,
    })
}

/// A finished blob on disk: the source's own file or a temp file.
enum BlobFile {
    Source(PathBuf),
    Temp(tempfile::NamedTempFile),
}

impl BlobFile {
    fn path(&self) -> &std::path::Path {
        match self {
            BlobFile::Source(p) => p,
            BlobFile::Temp(t) => t.path(),
        }
    }
}

fn source_err(index: usize) -> impl FnOnce(crate::image::SourceError) -> RegistryError {
    move |source| RegistryError::Source {
        what: format!("making the blob of layer {index}"),
        source,
    }
}

/// The layer's blob as a file, made first when the source has none.
fn layer_file(
    source: &(dyn ExportSource + Sync),
    index: usize,
    compression: Compression,
) -> Result<(BlobInfo, BlobFile)> {
    if let Some((info, path)) = source.cached_layer_blob(index, compression) {
        return Ok((info, BlobFile::Source(path)));
    }
    // Sources that cache (the store) keep what they make: make it, then use that copy.
    source
        .write_layer_blob(index, compression, &mut io::sink())
        .map_err(source_err(index))?;
    if let Some((info, path)) = source.cached_layer_blob(index, compression) {
        return Ok((info, BlobFile::Source(path)));
    }
    let tmp = tempfile::NamedTempFile::new().map_err(RegistryError::io(
        "creating a temp file",
        std::env::temp_dir(),
    ))?;
    let file = tmp
        .reopen()
        .map_err(RegistryError::io("opening", tmp.path()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let info = source
        .write_layer_blob(index, compression, &mut out)
        .map_err(source_err(index))?;
    out.flush()
        .map_err(RegistryError::io("writing", tmp.path()))?;
    let declared = source.layers()[index].diff_id;
    if info.diff_id != declared {
        return Err(source_err(index)(
            format!(
                "the layer's tar stream hashes to {} but the image declares {declared}",
                info.diff_id
            )
            .into(),
        ));
    }
    Ok((info.blob, BlobFile::Temp(tmp)))
}

/// Asks the registry to mount `digest` from each of `sources` in turn.
fn try_mounts(client: &Client, repo: &str, digest: &Digest, sources: &[String]) -> Result<bool> {
    for from in sources.iter().filter(|f| f.as_str() != repo) {
        if client.mount_blob(repo, digest, from)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn push_layer(
    source: &(dyn ExportSource + Sync),
    client: &Client,
    repo: &str,
    index: usize,
    opts: &PushOptions,
    progress: &(dyn Fn(PushEvent) + Sync),
) -> Result<BlobInfo> {
    let (info, file) = layer_file(source, index, opts.compression)?;
    let access = Access::Push(repo.to_string());
    if client.head_blob(repo, &info.digest, &access)?.is_some() {
        progress(PushEvent::Blob {
            index,
            blob: info,
            existed: true,
            mounted: false,
        });
        return Ok(info);
    }
    if try_mounts(client, repo, &info.digest, &opts.mount_from)? {
        progress(PushEvent::Blob {
            index,
            blob: info,
            existed: false,
            mounted: true,
        });
        return Ok(info);
    }
    let sent = |sent: u64| {
        progress(PushEvent::BlobProgress {
            digest: info.digest,
            sent,
            size: info.size,
        })
    };
    client.upload_blob_file(repo, &info.digest, info.size, file.path(), &sent)?;
    progress(PushEvent::Blob {
        index,
        blob: info,
        existed: false,
        mounted: false,
    });
    Ok(info)
}
