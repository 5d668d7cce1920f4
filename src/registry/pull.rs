//! Pulling an image into the store.
//!
//! Manifest (an index or list is narrowed to one platform first), config,
//! then the layers: blobs are downloaded in parallel (`max_parallel`)
//! straight into the store's [`BlobWriter`], whose commit checks the
//! digest and size from the manifest, so a wrong blob is never stored.
//! Layers are extracted in order as their blobs arrive, each on its parent.
//!
//! How the diff IDs are reconciled: while extracting, the uncompressed
//! stream's digest is checked against the config's diff ID, and the layer
//! is recorded under that verified registry diff ID (so its chain ID is the
//! image's own, and no second pass re-tars the extracted tree). The config
//! is kept verbatim (image ID = config digest). Re-tarring the directory
//! would not reproduce the registry's stream, so the original blob is
//! recorded on the layer under `COMPRESSION:REGISTRY-DIFF-ID` (see
//! [`crate::image::from_store::pulled_blob_key`]): a push sends the original
//! bytes, and the export re-compresses from them when asked for another
//! compression. A layer whose (parent, diff ID) pair is already in the
//! store is neither fetched nor extracted again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use serde::Deserialize;

use super::client::{Client, RegistryOptions};
use super::conf::{PullSource, RegistriesConf};
use super::error::{RegistryError, Result};
use super::platform::{platform_string, Index};
use crate::digest::Digest;
use crate::image::from_store::pulled_blob_key;
use crate::image::manifest::{self, Descriptor, ImageManifest, ManifestFormat};
use crate::image::Platform;
use crate::layer::tee::Tee;
use crate::layer::{extract_layer, ExtractOptions};
use crate::reference::{normalize_docker, Reference};
use crate::registry::progress::BlobBars;
use crate::store::{ChainId, ImageRecord, Lease, Store, StoreError};

const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const DOCKER_SCHEMA1_PLAIN: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// What a pull reports as it goes (skopeo-style lines, or progress bars).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullEvent {
    /// Trying a name (short names and mirrors may try several).
    Trying {
        name: String,
    },
    /// A layer blob is present: `skipped` when it was already in the store.
    Blob {
        digest: Digest,
        size: u64,
        skipped: bool,
    },
    /// Bytes of a blob received so far.
    BlobProgress {
        digest: Digest,
        received: u64,
        size: u64,
    },
    Config {
        digest: Digest,
    },
    Done {
        id: Digest,
    },
    /// `--all-platforms`: image `number` of `count` (from 1), listed as `digest`.
    ListImage {
        number: usize,
        count: usize,
        digest: Digest,
    },
}

/// Prints skopeo-style progress lines on stderr (stdout is kept for the
/// image ID): "Copying blob sha256:… done"; on a terminal, a bar per blob
/// in flight shows bytes received, rate and ETA.
pub fn stderr_printer(quiet: bool) -> impl Fn(PullEvent) + Sync {
    let bars = BlobBars::stderr();
    move |event| {
        if quiet {
            return;
        }
        match event {
            PullEvent::Trying { name } => bars.line(&format!("Trying to pull {name}...")),
            PullEvent::Config { digest } => {
                bars.line("Getting image source signatures");
                bars.line(&format!("Copying config {digest} done"));
            }
            PullEvent::Blob {
                digest, skipped, ..
            } => {
                let note = if skipped {
                    "skipped: already exists"
                } else {
                    "done"
                };
                bars.finish(&digest, &format!("Copying blob {digest} {note}"));
            }
            PullEvent::BlobProgress {
                digest,
                received,
                size,
            } => bars.update(&digest, received, size),
            PullEvent::Done { .. } => bars.line("Writing manifest to image destination"),
            PullEvent::ListImage {
                number,
                count,
                digest,
            } => {
                if number == 1 {
                    bars.line(&format!(
                        "Copying {count} images generated from {count} images in list"
                    ));
                }
                bars.line(&format!("Copying image {digest} ({number}/{count})"));
            }
        }
    }
}

/// What the pull is for.
#[derive(Clone, Debug)]
pub struct PullOptions {
    pub registry: RegistryOptions,
    /// The platform wanted from an index (default: the host's).
    pub platform: Platform,
    /// Extract with the owners the layer says (false in single-id rootless mode).
    pub extract: ExtractOptions,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            registry: RegistryOptions::default(),
            platform: Platform::host(),
            extract: ExtractOptions::default(),
        }
    }
}

/// The result of a pull.
#[derive(Clone, Debug)]
pub struct Pulled {
    pub record: ImageRecord,
    /// The name it is stored under (`host/repo:tag` or `host/repo@digest`).
    pub name: String,
    pub manifest_digest: Digest,
}

/// The fully qualified names a typed image name may mean, in order.
///
/// A name with a registry is itself. A short name uses
/// `unqualified-search-registries`: one registry is used directly; several
/// are an error in the default `enforcing` mode (a non-interactive run must
/// never silently pick one) and are tried in order in `permissive` mode.
/// Without any search registries configured, docker's rule applies
/// (`alpine` → `docker.io/library/alpine`).
pub fn resolve_name(name: &str, conf: &RegistriesConf) -> Result<Vec<Reference>> {
    let typed = Reference::parse(name)
        .map_err(|e| RegistryError::Config(format!("image name {name:?}: {e}")))?;
    let qualify = |registry: &str| -> Result<Reference> {
        let full = format!("{registry}/{name}");
        normalize_docker(&full)
            .map_err(|e| RegistryError::Config(format!("image name {full:?}: {e}")))
    };
    if !typed.is_short() {
        return normalize_docker(name)
            .map(|r| vec![r])
            .map_err(|e| RegistryError::Config(format!("image name {name:?}: {e}")));
    }
    match conf.search.as_slice() {
        [] => Ok(vec![qualify("docker.io")?]),
        [one] => Ok(vec![qualify(one)?]),
        many => {
            let candidates = many
                .iter()
                .map(|r| qualify(r))
                .collect::<Result<Vec<_>>>()?;
            if conf.short_name_mode.as_deref() == Some("permissive")
                || conf.short_name_mode.as_deref() == Some("disabled")
            {
                Ok(candidates)
            } else {
                let list: Vec<String> = candidates.iter().map(|c| c.to_string()).collect();
                Err(RegistryError::Config(format!(
                    "short name {name:?} is ambiguous: it could be any of {}; rbuild does not pick one in a non-interactive run. Use a fully qualified name, or set short-name-mode = \"permissive\" in {}",
                    list.join(", "),
                    conf.path.as_deref().map_or("registries.conf".into(), |p| p.display().to_string())
                )))
            }
        }
    }
}

/// Pulls `name` (as typed) into the store and names it.
pub fn pull(
    store: &Store,
    lease: &Lease,
    name: &str,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<Pulled> {
    from_first_source(name, progress, |reference, source| {
        pull_from(store, lease, reference, source, opts, progress)
    })
}

/// The manifest or index `name` (as typed) names in its registry: its
/// bytes, media type and digest, nothing stored (`manifest inspect` of a
/// remote reference). Registries are tried as a pull tries them.
pub fn fetch_manifest(name: &str, opts: &PullOptions) -> Result<(Vec<u8>, String, Digest)> {
    from_first_source(name, &|_| {}, |reference, source| {
        let top = fetch_top(reference, source, opts)?;
        Ok((top.bytes, top.media_type, top.digest))
    })
}

/// What `pull --all-platforms` stored.
#[derive(Clone, Debug)]
pub enum PulledAll {
    /// The name was an index: every platform image, and a list named as pulled.
    List {
        list: crate::store::ManifestList,
        images: Vec<ImageRecord>,
    },
    /// The name was a single image (skopeo `--all` copies it as it is).
    Image(Pulled),
}

/// Pulls every image of the index `name` names and stores the index as a
/// manifest list of that name (skopeo's `copy --all`): the index and each
/// instance's manifest are kept byte for byte, and attestation entries
/// (manifest and blobs) are kept as plain blobs, so pushing the list back
/// unchanged gives the same digests.
pub fn pull_all_platforms(
    store: &Store,
    lease: &Lease,
    name: &str,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<PulledAll> {
    from_first_source(name, progress, |reference, source| {
        pull_all_from(store, lease, reference, source, opts, progress)
    })
}

/// Tries each fully qualified name and pull source (mirrors first) in turn.
fn from_first_source<T>(
    name: &str,
    progress: &(dyn Fn(PullEvent) + Sync),
    mut attempt: impl FnMut(&Reference, &PullSource) -> Result<T>,
) -> Result<T> {
    let conf = RegistriesConf::load()?;
    let candidates = resolve_name(name, &conf)?;
    let mut failures = Vec::new();
    for reference in &candidates {
        for source in conf.pull_sources(reference)? {
            progress(PullEvent::Trying {
                name: format!("{}/{}", source.registry, source.repository),
            });
            match attempt(reference, &source) {
                Ok(p) => return Ok(p),
                // Only "not there" and unreachable mirrors move on to the next candidate.
                Err(e)
                    if e.is_not_found()
                        || (source.mirror && matches!(e, RegistryError::Transport { .. })) =>
                {
                    failures.push(format!("{}/{} ({e})", source.registry, source.repository));
                }
                Err(e) => return Err(e),
            }
        }
    }
    Err(RegistryError::NotFoundAnywhere {
        name: name.to_string(),
        tried: failures,
    })
}

#[derive(Deserialize)]
struct ConfigRootfs {
    rootfs: RootfsDiffs,
}

#[derive(Deserialize)]
struct RootfsDiffs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// A manifest's media type: its own `mediaType` field, else an index by
/// shape, else the Content-Type header.
fn media_type_of(bytes: &[u8], header: &str) -> String {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType", default)]
        media_type: String,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) if !p.media_type.is_empty() => p.media_type,
        Ok(p) if p.manifests.is_some() => manifest::OCI_INDEX.to_string(),
        _ => header.split(';').next().unwrap_or("").trim().to_string(),
    }
}

fn is_index(media_type: &str) -> bool {
    media_type == manifest::OCI_INDEX || media_type == manifest::DOCKER_MANIFEST_LIST
}

/// A registry connection for `source` and the top manifest `reference` names.
struct Top {
    client: Client,
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
    url: String,
}

fn fetch_top(reference: &Reference, source: &PullSource, opts: &PullOptions) -> Result<Top> {
    let mut ropts = opts.registry.clone();
    if source.insecure && ropts.tls_verify.is_none() {
        ropts.tls_verify = Some(false);
    }
    let client = Client::connect(&source.registry, &ropts)?;
    let repo = source.repository.as_str();
    let tag_or_digest = match &reference.digest {
        Some(d) => d.to_string(),
        None => reference.tag_or_latest().to_string(),
    };
    let (bytes, media_type, digest) = client.get_manifest(repo, &tag_or_digest)?;
    let url = client.url(&format!("{repo}/manifests/{tag_or_digest}"));
    let media_type = media_type_of(&bytes, &media_type);
    Ok(Top {
        client,
        bytes,
        media_type,
        digest,
        url,
    })
}

/// The name a pulled image or list is stored under.
fn stored_name(reference: &Reference) -> String {
    match &reference.digest {
        Some(d) => format!(
            "{}/{}@{d}",
            reference.registry.as_deref().unwrap_or_default(),
            reference.repository
        ),
        None => reference.to_string(),
    }
}

fn pull_from(
    store: &Store,
    lease: &Lease,
    reference: &Reference,
    source: &PullSource,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<Pulled> {
    let Top {
        client,
        mut bytes,
        mut media_type,
        mut digest,
        url,
    } = fetch_top(reference, source, opts)?;
    let repo = source.repository.as_str();
    if is_index(&media_type) {
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
                url: url.clone(),
                why: e.to_string(),
            })?;
        let entry = index
            .select(&opts.platform)
            .ok_or_else(|| RegistryError::NoSuchPlatform {
                image: reference.to_string(),
                wanted: platform_string(&opts.platform),
                available: index.platforms(),
            })?;
        let (b, m, d) = client.get_manifest(repo, &entry.digest.to_string())?;
        media_type = media_type_of(&b, &m);
        bytes = b;
        digest = d;
    }
    let name = stored_name(reference);
    let record = store_image(
        store,
        lease,
        &client,
        repo,
        &bytes,
        &media_type,
        &url,
        vec![name.clone()],
        opts,
        progress,
    )?;
    Ok(Pulled {
        record,
        name,
        manifest_digest: digest,
    })
}

fn pull_all_from(
    store: &Store,
    lease: &Lease,
    reference: &Reference,
    source: &PullSource,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<PulledAll> {
    let top = fetch_top(reference, source, opts)?;
    let repo = source.repository.as_str();
    let name = stored_name(reference);
    if !is_index(&top.media_type) {
        let record = store_image(
            store,
            lease,
            &top.client,
            repo,
            &top.bytes,
            &top.media_type,
            &top.url,
            vec![name.clone()],
            opts,
            progress,
        )?;
        return Ok(PulledAll::Image(Pulled {
            record,
            name,
            manifest_digest: top.digest,
        }));
    }
    let doc = super::manifest_list::ListDocument::parse(&top.bytes).map_err(|why| {
        RegistryError::BadManifest {
            url: top.url.clone(),
            why,
        }
    })?;
    let mut instances = Vec::new();
    let mut images = Vec::new();
    let mut artifacts = Vec::new();
    let count = doc.entries.len();
    for (i, entry) in doc.entries.iter().enumerate() {
        progress(PullEvent::ListImage {
            number: i + 1,
            count,
            digest: entry.digest,
        });
        // Attestations (BuildKit's `unknown/unknown` entries) are not
        // images: they are kept as blobs, so the list pushes back as it came.
        if super::manifest_list::is_attestation(entry) {
            artifacts.push(store_artifact(
                store,
                lease,
                &top.client,
                repo,
                entry,
                progress,
            )?);
            continue;
        }
        let (bytes, header, digest) = top.client.get_manifest(repo, &entry.digest.to_string())?;
        let url = top
            .client
            .url(&format!("{repo}/manifests/{}", entry.digest));
        if digest != entry.digest || Digest::of(&bytes) != entry.digest {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: entry.digest,
                actual: Digest::of(&bytes),
                size: bytes.len() as u64,
            });
        }
        let media_type = media_type_of(&bytes, &header);
        if is_index(&media_type) {
            return Err(RegistryError::BadManifest {
                url,
                why: "an index inside an index is not supported".into(),
            });
        }
        let record = store_image(
            store,
            lease,
            &top.client,
            repo,
            &bytes,
            &media_type,
            &url,
            Vec::new(),
            opts,
            progress,
        )?;
        // The unnamed instance image was protected in the lease before
        // its record was written (`write_image`), so a `prune` racing with
        // this pull cannot take it before the list names it.
        let manifest = store.put_blob(&bytes)?;
        lease.protect_blob(&manifest)?;
        instances.push(crate::store::ListInstance {
            manifest,
            image: record.id,
        });
        images.push(record);
    }
    let list = super::manifest_list::store_pulled(store, &name, &top.bytes, instances, artifacts)?;
    Ok(PulledAll::List { list, images })
}

/// A manifest's blobs, as far as keeping an attestation needs them.
#[derive(Deserialize)]
struct BlobRefs {
    #[serde(default)]
    config: Option<BlobRef>,
    #[serde(default)]
    layers: Vec<BlobRef>,
}

#[derive(Deserialize)]
struct BlobRef {
    digest: Digest,
    size: u64,
}

/// Stores an attestation entry as it is in the registry: its manifest and
/// every blob it names, checked against their digests, as plain blobs.
fn store_artifact(
    store: &Store,
    lease: &Lease,
    client: &Client,
    repo: &str,
    entry: &Descriptor,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<crate::store::ListArtifact> {
    let (bytes, _, _) = client.get_manifest(repo, &entry.digest.to_string())?;
    let url = client.url(&format!("{repo}/manifests/{}", entry.digest));
    if Digest::of(&bytes) != entry.digest {
        return Err(RegistryError::DigestMismatch {
            url,
            expected: entry.digest,
            actual: Digest::of(&bytes),
            size: bytes.len() as u64,
        });
    }
    let refs: BlobRefs =
        serde_json::from_slice(&bytes).map_err(|e| RegistryError::BadManifest {
            url: url.clone(),
            why: format!("the attestation manifest cannot be read: {e}"),
        })?;
    let mut blobs = Vec::new();
    for blob in refs.config.iter().chain(&refs.layers) {
        if !store.has_blob(&blob.digest) {
            download_blob(store, client, repo, &blob.digest, blob.size, None, progress)?;
        }
        lease.protect_blob(&blob.digest)?;
        if !blobs.contains(&blob.digest) {
            blobs.push(blob.digest);
        }
    }
    let manifest = store.put_blob(&bytes)?;
    lease.protect_blob(&manifest)?;
    Ok(crate::store::ListArtifact { manifest, blobs })
}

/// Stores the image `bytes` (a manifest) describes: config, then layers.
#[allow(clippy::too_many_arguments)]
fn store_image(
    store: &Store,
    lease: &Lease,
    client: &Client,
    repo: &str,
    bytes: &[u8],
    media_type: &str,
    url: &str,
    names: Vec<String>,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<ImageRecord> {
    let url = url.to_string();
    if media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_PLAIN {
        return Err(RegistryError::BadManifest {
            url,
            why: "docker schema1 manifests are not supported (they are deprecated); push the image again with a current tool".into(),
        });
    }
    let manifest = ImageManifest::from_json(bytes).map_err(|e| RegistryError::BadManifest {
        url: url.clone(),
        why: e.to_string(),
    })?;
    let config_bytes = client.get_small_blob(repo, &manifest.config.digest)?;
    progress(PullEvent::Config {
        digest: manifest.config.digest,
    });
    let diff_ids = serde_json::from_slice::<ConfigRootfs>(&config_bytes)
        .map_err(|e| RegistryError::BadManifest {
            url: url.clone(),
            why: format!("the config's rootfs.diff_ids cannot be read: {e}"),
        })?
        .rootfs
        .diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::BadManifest {
            url,
            why: format!(
                "the manifest lists {} layers but the config has {} diff IDs",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let chains = fetch_layers(
        store, lease, client, repo, &manifest, &diff_ids, opts, progress,
    )?;
    let annotations = match manifest.format {
        ManifestFormat::Oci => manifest.annotations.clone(),
        ManifestFormat::Docker => BTreeMap::new(),
    };
    let record = crate::build::write_image(
        store,
        lease,
        &config_bytes,
        &chains,
        manifest.format,
        &annotations,
        names,
    )?;
    progress(PullEvent::Done { id: record.id });
    Ok(record)
}

/// (parent chain, blob digest) → the layer made from it earlier.
fn known_layers(store: &Store) -> Result<HashMap<(Option<ChainId>, Digest), ChainId>> {
    let mut out = HashMap::new();
    for chain in store.layers()? {
        let Ok(meta) = store.layer_meta(&chain) else {
            continue;
        };
        for blob in meta.compressed.values() {
            out.insert((meta.parent, blob.digest), chain);
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn fetch_layers(
    store: &Store,
    lease: &Lease,
    client: &Client,
    repo: &str,
    manifest: &ImageManifest,
    diff_ids: &[Digest],
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<Vec<ChainId>> {
    let known = known_layers(store)?;
    // Layers already made from the same (parent, blob): walk the chain as
    // far as known layers reach; those are neither fetched nor extracted.
    let mut parent: Option<ChainId> = None;
    let mut reusable = Vec::new();
    for layer in &manifest.layers {
        match known.get(&(parent, layer.digest)) {
            Some(c) if store.has_layer(c) => {
                reusable.push(*c);
                parent = Some(*c);
            }
            _ => break,
        }
    }
    // The first layer needing each missing blob downloads it.
    let mut needed: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    for (i, layer) in manifest.layers.iter().enumerate().skip(reusable.len()) {
        if !store.has_blob(&layer.digest) && seen.insert(layer.digest) {
            needed.push(i);
        }
    }
    // Each protection rewrites the lease file: protect what is downloaded,
    // and of the reused layers only the topmost (its parents come with it).
    for &i in &needed {
        lease.protect_blob(&manifest.layers[i].digest)?;
    }
    if let Some(top) = reusable.last() {
        lease.protect_layer(top)?;
    }
    let claimed: Vec<AtomicBool> = manifest
        .layers
        .iter()
        .map(|_| AtomicBool::new(false))
        .collect();
    let abort = AtomicBool::new(false);
    let next_extract = std::sync::atomic::AtomicUsize::new(reusable.len());
    let (tx, rx) = mpsc::channel::<(usize, Result<()>)>();
    std::thread::scope(|scope| -> Result<Vec<ChainId>> {
        // Workers take blobs from the top of the image down, while this
        // thread extracts from the bottom up and streams the blob it needs
        // next straight into extraction (workers leave it the next two), so
        // a big layer downloads and extracts at the same time.
        let workers = opts.registry.max_parallel.max(1).min(needed.len());
        for _ in 0..workers {
            let tx = tx.clone();
            let (claimed, abort, needed, next_extract) = (&claimed, &abort, &needed, &next_extract);
            scope.spawn(move || loop {
                if abort.load(Ordering::Relaxed) {
                    break;
                }
                // Leave the next two layers in line to this thread, which
                // streams them into extraction.
                let reserved = next_extract.load(Ordering::SeqCst) + 1;
                let pick = needed
                    .iter()
                    .rev()
                    .filter(|&&i| i > reserved)
                    .find(|&&i| !claimed[i].swap(true, Ordering::SeqCst));
                let Some(&i) = pick else {
                    if needed.iter().all(|&i| claimed[i].load(Ordering::SeqCst)) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    continue;
                };
                let layer = &manifest.layers[i];
                let result = download_blob(
                    store,
                    client,
                    repo,
                    &layer.digest,
                    layer.size,
                    None,
                    progress,
                );
                if tx.send((i, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let result = (|| {
            for (layer, _) in manifest.layers.iter().zip(&reusable) {
                progress(PullEvent::Blob {
                    digest: layer.digest,
                    size: layer.size,
                    skipped: true,
                });
            }
            let mut arrived: HashSet<Digest> = HashSet::new();
            let mut chains = reusable.clone();
            let mut parent = reusable.last().copied();
            for layer in manifest.layers.iter().skip(reusable.len()) {
                let i = chains.len();
                next_extract.store(i, Ordering::SeqCst);
                let diff_id = &diff_ids[i];
                let downloader = needed
                    .iter()
                    .copied()
                    .find(|&n| manifest.layers[n].digest == layer.digest);
                let chain = match downloader {
                    Some(n) if n == i && !claimed[i].swap(true, Ordering::SeqCst) => {
                        let c = extract_streaming(
                            store,
                            client,
                            repo,
                            parent.as_ref(),
                            layer.digest,
                            layer.size,
                            diff_id,
                            opts,
                            progress,
                        )?;
                        arrived.insert(layer.digest);
                        c
                    }
                    Some(_) => {
                        while !arrived.contains(&layer.digest) {
                            let (n, r) = rx.recv().map_err(|_| RegistryError::Protocol {
                                url: client.url(repo),
                                why: "a download thread stopped without a result".into(),
                            })?;
                            r?;
                            arrived.insert(manifest.layers[n].digest);
                        }
                        extract_one(store, parent.as_ref(), &layer.digest, diff_id, opts)?
                    }
                    None => {
                        progress(PullEvent::Blob {
                            digest: layer.digest,
                            size: layer.size,
                            skipped: true,
                        });
                        extract_one(store, parent.as_ref(), &layer.digest, diff_id, opts)?
                    }
                };
                lease.protect_layer(&chain)?;
                chains.push(chain);
                parent = Some(chain);
            }
            Ok(chains)
        })();
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        result
    })
}

/// Sends what is written to a channel: the extracting side of a download
/// that is extracted while it arrives.
struct ChanWriter(mpsc::SyncSender<Vec<u8>>);

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(buf.to_vec()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the layer extraction stopped",
            )
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads what a [`ChanWriter`] sent; end of stream when it is dropped.
struct ChanReader {
    rx: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl std::io::Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Downloads a blob into the store while extracting it as the layer on
/// `parent`. The extracted layer is committed only after the blob's digest
/// checked out, so a bad blob leaves neither blob nor layer behind.
#[allow(clippy::too_many_arguments)]
fn extract_streaming(
    store: &Store,
    client: &Client,
    repo: &str,
    parent: Option<&ChainId>,
    blob: Digest,
    size: u64,
    registry_diff_id: &Digest,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<ChainId> {
    let mut format = None;
    let chain = store.import_layer(parent, |upper| -> Result<(Digest, u64)> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(32);
        let (downloaded, extracted) = std::thread::scope(|s| {
            let dl = s.spawn(move || {
                download_blob(
                    store,
                    client,
                    repo,
                    &blob,
                    size,
                    Some(ChanWriter(tx)),
                    progress,
                )
            });
            let mut reader = ChanReader {
                rx,
                chunk: Vec::new(),
                pos: 0,
            };
            let extracted = extract_layer(&mut reader, upper, &opts.extract);
            // On a failed extraction, let the download finish: its digest
            // check tells a corrupted blob from a genuinely bad layer.
            if extracted.is_err() {
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
            }
            drop(reader);
            let downloaded = dl.join().unwrap_or_else(|_| {
                Err(RegistryError::Protocol {
                    url: client.url(repo),
                    why: "the download thread panicked".into(),
                })
            });
            (downloaded, extracted)
        });
        // A bad download explains a failed extraction, not the other way round.
        downloaded?;
        let stats = extracted?;
        check_diff_id(store, &blob, &stats.diff_id, registry_diff_id)?;
        format = Some(stats.format);
        // Keyed by the verified registry diff ID: no second pass re-tarring
        // the extracted tree, and the chain IDs are the image's own.
        Ok((stats.diff_id, stats.diff_size))
    })?;
    record_pulled_blob(store, &chain, &blob, format, registry_diff_id)?;
    Ok(chain)
}

fn check_diff_id(store: &Store, blob: &Digest, got: &Digest, want: &Digest) -> Result<()> {
    if got != want {
        return Err(RegistryError::Protocol {
            url: store.blob_path(blob).display().to_string(),
            why: format!(
                "layer blob {blob} uncompresses to {got} but the image config says its diff ID is {want}"
            ),
        });
    }
    Ok(())
}

fn record_pulled_blob(
    store: &Store,
    chain: &ChainId,
    blob: &Digest,
    format: Option<crate::layer::compress::StreamFormat>,
    registry_diff_id: &Digest,
) -> Result<()> {
    let compression = match format {
        Some(crate::layer::compress::StreamFormat::Gzip) => crate::image::Compression::Gzip,
        Some(crate::layer::compress::StreamFormat::Zstd) => crate::image::Compression::Zstd,
        _ => crate::image::Compression::None,
    };
    let size = store.blob_size(blob)?;
    store.record_compressed_blob(
        chain,
        &pulled_blob_key(compression, registry_diff_id),
        *blob,
        size,
    )?;
    Ok(())
}

/// Downloads one blob into the store (and into `also`, when given); the
/// commit checks digest and size.
fn download_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    digest: &Digest,
    size: u64,
    also: Option<ChanWriter>,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<()> {
    let mut writer = store.blob_writer()?;
    let url = client.url(&format!("{repo}/blobs/{digest}"));
    let mut report = |received| {
        progress(PullEvent::BlobProgress {
            digest: *digest,
            received,
            size,
        })
    };
    match also {
        Some(mut extra) => {
            let mut both = Tee {
                main: &mut writer,
                copy: &mut extra,
            };
            client.get_blob(repo, digest, size, &mut both, &mut report)?;
        }
        None => {
            client.get_blob(repo, digest, size, &mut writer, &mut report)?;
        }
    }
    match writer.commit(Some((*digest, size))) {
        Ok(_) => {}
        Err(crate::store::StoreError::DigestMismatch { expected, actual }) => {
            return Err(RegistryError::DigestMismatch {
                url,
                expected,
                actual,
                size,
            })
        }
        Err(e) => return Err(e.into()),
    }
    progress(PullEvent::Blob {
        digest: *digest,
        size,
        skipped: false,
    });
    Ok(())
}

/// Extracts a stored blob as a layer on `parent`, checking the registry's
/// diff ID, and records the blob on the layer.
fn extract_one(
    store: &Store,
    parent: Option<&ChainId>,
    blob: &Digest,
    registry_diff_id: &Digest,
    opts: &PullOptions,
) -> Result<ChainId> {
    let mut format = None;
    let chain = store.import_layer(parent, |upper| -> Result<(Digest, u64)> {
        let file = store.open_blob(blob)?;
        let stats = extract_layer(
            std::io::BufReader::with_capacity(1 << 20, file),
            upper,
            &opts.extract,
        )?;
        check_diff_id(store, blob, &stats.diff_id, registry_diff_id)?;
        format = Some(stats.format);
        Ok((stats.diff_id, stats.diff_size))
    })?;
    record_pulled_blob(store, &chain, blob, format, registry_diff_id)?;
    Ok(chain)
}

/// When to contact the registry (`--pull`, `--policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Always pull; layers already in the store are not fetched again.
    Always,
    /// Pull only when the store has no image of that name (the default).
    #[default]
    Missing,
    /// Never pull: the image must be in the store.
    Never,
    /// Pull, but keep using the stored image when the registry cannot be
    /// reached or no longer has it.
    Newer,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<PullPolicy, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" | "true" => Ok(PullPolicy::Always),
            "missing" | "ifmissing" | "false" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            "newer" | "ifnewer" => Ok(PullPolicy::Newer),
            _ => Err(format!(
                "pull policy {s:?}: expected always, missing, never or newer"
            )),
        }
    }
}

/// The stored image `name` names, pulling it as `policy` says.
pub fn pull_with_policy(
    store: &Store,
    lease: &Lease,
    name: &str,
    policy: PullPolicy,
    opts: &PullOptions,
    progress: &(dyn Fn(PullEvent) + Sync),
) -> Result<ImageRecord> {
    // A stored manifest list gives its image for the wanted platform.
    let local = || crate::image::lookup::lookup_image_for(store, name, &opts.platform);
    match policy {
        PullPolicy::Never => local().map_err(|e| {
            RegistryError::Config(format!(
                "{e}; the pull policy is \"never\", so it is not pulled"
            ))
        }),
        // A local list without the wanted platform counts as missing, as
        // with libimage (its lookup error does not stop the pull).
        PullPolicy::Missing => match local() {
            Ok(rec) => Ok(rec),
            Err(e) if e.is_not_found() || matches!(e, StoreError::ListNoInstance { .. }) => {
                pull(store, lease, name, opts, progress).map(|p| p.record)
            }
            Err(e) => Err(e.into()),
        },
        PullPolicy::Always => pull(store, lease, name, opts, progress).map(|p| p.record),
        PullPolicy::Newer => match pull(store, lease, name, opts, progress) {
            Ok(p) => Ok(p.record),
            Err(e) => match local() {
                Ok(rec) => {
                    log::warn!("pulling {name} failed ({e}); using the stored image");
                    Ok(rec)
                }
                Err(_) => Err(e),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn policies_parse() {
        assert_eq!("always".parse::<PullPolicy>(), Ok(PullPolicy::Always));
        assert_eq!("true".parse::<PullPolicy>(), Ok(PullPolicy::Always));
        assert_eq!("ifmissing".parse::<PullPolicy>(), Ok(PullPolicy::Missing));
        assert_eq!("never".parse::<PullPolicy>(), Ok(PullPolicy::Never));
        assert_eq!("newer".parse::<PullPolicy>(), Ok(PullPolicy::Newer));
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }

    #[test]
    fn short_names_follow_the_search_list() {
        let none = RegistriesConf::default();
        assert_eq!(
            resolve_name("alpine", &none).unwrap()[0].to_string(),
            "docker.io/library/alpine:latest"
        );
        assert_eq!(
            resolve_name("127.0.0.1:5000/app:1", &none).unwrap()[0].to_string(),
            "127.0.0.1:5000/app:1"
        );
        let one = RegistriesConf::parse(
            "unqualified-search-registries = [\"quay.io\"]",
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(
            resolve_name("x/app", &one).unwrap()[0].to_string(),
            "quay.io/x/app:latest"
        );
        let many = RegistriesConf::parse(
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]",
            Path::new("c"),
        )
        .unwrap();
        let err = resolve_name("app", &many).unwrap_err().to_string();
        assert!(
            err.contains("quay.io/app:latest") && err.contains("docker.io/library/app:latest"),
            "{err}"
        );
        let permissive = RegistriesConf::parse(
            "unqualified-search-registries = [\"quay.io\", \"docker.io\"]\nshort-name-mode = \"permissive\"",
            Path::new("c"),
        )
        .unwrap();
        assert_eq!(resolve_name("app", &permissive).unwrap().len(), 2);
    }
}
