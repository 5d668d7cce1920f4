//! Pushing a manifest list: every platform image first (each manifest put
//! by its own digest, blobs with the same HEAD check and mounts as a single
//! push), the index last, so a reader never sees an index whose images are
//! missing.
//!
//! The index pushed lists the manifests actually pushed, in the list's
//! order, with each entry's platform and annotations. It is a docker
//! manifest list when `--format docker` asks for one or every image went as
//! a docker manifest, else an OCI index. When nothing changed (a list pulled
//! with `--all-platforms`, pushed with the compression it came with), the
//! stored index bytes are sent, so the digest is the source registry's.
//! Attestation entries (pulled with the list) go as they came: their blobs,
//! then their manifest bytes under their own digest, the entry unchanged.

use std::path::PathBuf;

use super::client::{Access, Client};
use super::error::{RegistryError, Result};
use super::manifest_list::{ListDocument, ListKind};
use super::push::{connect, push_image, PushEvent, PushOptions, Pushed, Target};
use crate::digest::Digest;
use crate::image::manifest::{Descriptor, ImageManifest, ManifestFormat};
use crate::image::source::ExportSource;
use crate::reference::Reference;

/// One image of the list, as the push needs it.
pub struct ListInstanceSource<'a> {
    pub source: &'a (dyn ExportSource + Sync),
    /// The list's entry for it (platform, annotations).
    pub entry: Descriptor,
    /// The manifest it is stored with: a pulled image's registry manifest
    /// or the local one; gives its format and annotations, and its bytes
    /// when they describe what is pushed.
    pub stored_manifest: Vec<u8>,
}

/// An entry of the list that is not an image (an attestation), pushed as
/// stored: every blob, then the manifest bytes.
pub struct ListArtifactSource {
    /// The list's entry for it, pushed unchanged.
    pub entry: Descriptor,
    /// The manifest bytes (they hash to `entry.digest`).
    pub manifest: Vec<u8>,
    /// The blobs the manifest names: digest, size and the file holding them.
    pub blobs: Vec<(Digest, u64, PathBuf)>,
}

/// How to push a list.
#[derive(Clone, Debug)]
pub struct ListPushOptions {
    /// Registry, compression and mount sources; `format` and `annotations`
    /// are taken per image unless `format` below forces one.
    pub base: PushOptions,
    /// `--format`: the manifest and list format for every image.
    pub format: Option<ManifestFormat>,
    /// `--all`: push the images too (false: only the index, whose images
    /// must already be in the repository).
    pub all: bool,
}

/// What a list push wrote.
#[derive(Clone, Debug)]
pub struct PushedList {
    pub digest: Digest,
    pub document: ListDocument,
    pub images: Vec<Pushed>,
}

/// What a list push reports, around each image's [`PushEvent`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListPushEvent {
    /// About to push `count` images.
    Start { count: usize },
    /// Image `number` of `count` (from 1), listed as `digest`.
    Image {
        number: usize,
        count: usize,
        digest: Digest,
    },
    /// An event of the image being pushed.
    Push(PushEvent),
    /// The index is in place.
    Index { digest: Digest },
}

/// Pushes `document` and its images (and attestations) to `destination`.
pub fn push_list(
    document: &ListDocument,
    stored_index: &[u8],
    instances: &[ListInstanceSource<'_>],
    artifacts: &[ListArtifactSource],
    destination: &Reference,
    opts: &ListPushOptions,
    progress: &(dyn Fn(ListPushEvent) + Sync),
) -> Result<PushedList> {
    let (client, repo) = connect(destination, &opts.base)?;
    let mut entries = Vec::new();
    let mut images = Vec::new();
    if opts.all {
        let count = document.entries.len();
        progress(ListPushEvent::Start { count });
        // In the document's order, so an unchanged list gives the same index.
        for (i, doc_entry) in document.entries.iter().enumerate() {
            progress(ListPushEvent::Image {
                number: i + 1,
                count,
                digest: doc_entry.digest,
            });
            if let Some(inst) = instances
                .iter()
                .find(|s| s.entry.digest == doc_entry.digest)
            {
                let pushed = push_instance(&client, &repo, inst, opts, progress)?;
                let mut entry = inst.entry.clone();
                entry.media_type = pushed.manifest.media_type().to_string();
                entry.digest = pushed.manifest_digest;
                entry.size = pushed.manifest_size;
                entries.push(entry);
                images.push(pushed);
            } else if let Some(art) = artifacts
                .iter()
                .find(|a| a.entry.digest == doc_entry.digest)
            {
                push_artifact(&client, &repo, art)?;
                entries.push(art.entry.clone());
            } else {
                return Err(RegistryError::Config(format!(
                    "the list's entry {} has neither an image nor stored blobs to push",
                    doc_entry.digest
                )));
            }
        }
    } else {
        entries = document.entries.clone();
    }
    let kind = match opts.format {
        Some(f) => ListKind::for_format(f),
        None if opts.all && !images.is_empty() => {
            if images
                .iter()
                .all(|p| p.manifest.format == ManifestFormat::Docker)
            {
                ListKind::Docker
            } else {
                ListKind::Oci
            }
        }
        None => document.kind,
    };
    let pushed_doc = ListDocument {
        kind,
        entries,
        annotations: match kind {
            ListKind::Oci => document.annotations.clone(),
            ListKind::Docker => Default::default(),
        },
    };
    let bytes = match ListDocument::parse(stored_index) {
        Ok(stored) if stored == pushed_doc => stored_index.to_vec(),
        _ => pushed_doc.to_json(),
    };
    let (reference, want) = match &destination.digest {
        Some(d) => (d.to_string(), Some(*d)),
        None => (destination.tag_or_latest().to_string(), None),
    };
    let digest = client.put_manifest(&repo, &reference, kind.media_type(), &bytes)?;
    if let Some(want) = want.filter(|w| *w != digest) {
        return Err(RegistryError::Config(format!(
            "the destination names digest {want}, but the index pushed is {digest}"
        )));
    }
    progress(ListPushEvent::Index { digest });
    Ok(PushedList {
        digest,
        document: pushed_doc,
        images,
    })
}

/// Pushes an attestation as stored: blobs the repository lacks, then the
/// manifest under its digest.
fn push_artifact(client: &Client, repo: &str, art: &ListArtifactSource) -> Result<()> {
    let access = Access::Push(repo.to_string());
    for (digest, size, path) in &art.blobs {
        if client.head_blob(repo, digest, &access)?.is_none() {
            client.upload_blob_file(repo, digest, *size, path, &|_| {})?;
        }
    }
    let media_type = if art.entry.media_type.is_empty() {
        crate::image::manifest::OCI_MANIFEST
    } else {
        art.entry.media_type.as_str()
    };
    let digest = client.put_manifest(
        repo,
        &art.entry.digest.to_string(),
        media_type,
        &art.manifest,
    )?;
    if digest != art.entry.digest {
        return Err(RegistryError::Config(format!(
            "the registry stored attestation manifest {} as {digest}",
            art.entry.digest
        )));
    }
    Ok(())
}

fn push_instance(
    client: &Client,
    repo: &str,
    inst: &ListInstanceSource<'_>,
    opts: &ListPushOptions,
    progress: &(dyn Fn(ListPushEvent) + Sync),
) -> Result<Pushed> {
    let stored = ImageManifest::from_json(&inst.stored_manifest).ok();
    let mut image_opts = opts.base.clone();
    image_opts.format = opts
        .format
        .or(stored.as_ref().map(|m| m.format))
        .unwrap_or_default();
    image_opts.annotations = stored.map(|m| m.annotations).unwrap_or_default();
    let forward = |e: PushEvent| progress(ListPushEvent::Push(e));
    push_image(
        client,
        repo,
        inst.source,
        &Target::OwnDigest,
        &image_opts,
        Some(&inst.stored_manifest),
        &forward,
    )
}
