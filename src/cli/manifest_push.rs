//! `rbuild manifest push [--all] LIST DEST` and `rbuild push LIST DEST`
//! when LIST is a manifest list: every image, then the index, to a
//! registry (`docker://`), or an OCI layout (`oci:`, `oci-archive:`).

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::pull::RegistryArgs;
use crate::image::from_store::StoreImage;
use crate::image::manifest::ManifestFormat;
use crate::image::{Compression, Destination, ExportOptions, ExportSource};
use crate::reference::{normalize_docker, Reference};
use crate::registry::manifest_list::read_document;
use crate::registry::progress::BlobBars;
use crate::registry::push_list::{
    push_list, ListArtifactSource, ListInstanceSource, ListPushEvent, ListPushOptions,
};
use crate::registry::PushOptions;
use crate::store::{ManifestList, Store};

#[derive(Debug, clap::Args)]
pub struct ManifestPushArgs {
    /// The list (name or ID).
    pub list: String,
    /// Where to: docker://REGISTRY/REPO[:TAG], oci:DIR[:REF] or oci-archive:FILE[:REF]
    /// (default: docker://LIST).
    pub destination: Option<String>,
    /// Push the list's images too, not only the index (buildah's default).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub all: bool,
    /// Layer compression.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none", "uncompressed"])]
    pub compression_format: String,
    /// Manifest format for the images and the list: oci (an OCI index) or
    /// docker (a docker manifest list); default: as the images are.
    #[arg(short, long, value_parser = ["oci", "docker", "v2s2"])]
    pub format: Option<String>,
    /// Write the index digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Remove the list from local storage after a successful push.
    #[arg(long)]
    pub rm: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(store: &Store, args: ManifestPushArgs) -> anyhow::Result<i32> {
    let list = crate::image::lookup::lookup_list(store, &args.list)?;
    let dest = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("docker://{}", list.name));
    let request = ListPush {
        destination: dest,
        all: args.all,
        compression_format: args.compression_format,
        format: args.format,
        digestfile: args.digestfile,
        quiet: args.quiet,
        registry: args.registry,
    };
    push(store, &list, &request)?;
    if args.rm {
        store.remove_list(&list.name)?;
        store.gc()?;
    }
    Ok(0)
}

/// What to push a list with (from `manifest push` or `push`).
pub(super) struct ListPush {
    pub destination: String,
    pub all: bool,
    pub compression_format: String,
    pub format: Option<String>,
    pub digestfile: Option<PathBuf>,
    pub quiet: bool,
    pub registry: RegistryArgs,
}

/// Pushes `list` as `request` says; returns the index digest.
pub(super) fn push(
    store: &Store,
    list: &ManifestList,
    request: &ListPush,
) -> anyhow::Result<crate::digest::Digest> {
    let compression: Compression = request
        .compression_format
        .parse()
        .with_context(|| "--compression-format".to_string())?;
    let format = match request.format.as_deref() {
        Some("docker") | Some("v2s2") => Some(ManifestFormat::Docker),
        Some(_) => Some(ManifestFormat::Oci),
        None => None,
    };
    let lease = store.lease()?;
    let doc = read_document(store, list)?;
    let index_bytes = store.read_blob(&list.index)?;
    // Each entry's image, opened as an export source, in the list's order;
    // attestation entries are pushed from their stored blobs.
    let mut records = Vec::new();
    let mut artifacts = Vec::new();
    for entry in &doc.entries {
        if let Some(art) = list.artifact_for(&entry.digest) {
            artifacts.push(artifact_source(store, &lease, entry, art)?);
            continue;
        }
        let id = list.image_for(&entry.digest).with_context(|| {
            format!(
                "manifest list {}: entry {} has no image in local storage",
                list.name, entry.digest
            )
        })?;
        lease.protect_image(&id)?;
        let rec = store.image(&id)?;
        records.push((entry.clone(), rec));
    }
    let mut sources = Vec::new();
    for (_, rec) in &records {
        sources.push(StoreImage::open(store, rec)?);
    }
    let digest = match super::push::registry_destination(&request.destination) {
        Some(name) => {
            let destination =
                normalize_docker(&name).with_context(|| format!("destination docker://{name}"))?;
            let mut instances = Vec::new();
            for ((entry, _), source) in records.iter().zip(&sources) {
                instances.push(ListInstanceSource {
                    source,
                    entry: entry.clone(),
                    stored_manifest: store.read_blob(&entry.digest)?,
                });
            }
            // The repository a pulled list came from can lend its blobs.
            let mount_from = Reference::parse(&list.name)
                .ok()
                .filter(|r| r.registry == destination.registry)
                .map(|r| vec![r.repository])
                .unwrap_or_default();
            let opts = ListPushOptions {
                base: PushOptions {
                    registry: request.registry.options()?,
                    format: ManifestFormat::Oci,
                    compression,
                    annotations: Default::default(),
                    mount_from,
                },
                format,
                all: request.all,
            };
            let printer = printer(request.quiet);
            let pushed = push_list(
                &doc,
                &index_bytes,
                &instances,
                &artifacts,
                &destination,
                &opts,
                &printer,
            )
            .with_context(|| format!("pushing {} to docker://{destination}", list.name))?;
            pushed.digest
        }
        None => {
            let destination: Destination = request
                .destination
                .parse()
                .with_context(|| format!("destination {}", request.destination))?;
            if !matches!(
                destination,
                Destination::Oci { .. } | Destination::OciArchive { .. }
            ) {
                bail!(
                    "{}: a manifest list can be pushed to docker://, oci: and oci-archive: only",
                    request.destination
                );
            }
            if !artifacts.is_empty() {
                log::warn!(
                    "{}: leaving out {} attestation entr{} (an OCI layout export writes images only)",
                    request.destination,
                    artifacts.len(),
                    if artifacts.len() == 1 { "y" } else { "ies" }
                );
            }
            if format == Some(ManifestFormat::Docker) {
                bail!("--format docker: an OCI layout destination holds only OCI indexes and manifests");
            }
            let images: Vec<(&dyn ExportSource, crate::image::Platform)> = records
                .iter()
                .zip(&sources)
                .map(|((entry, _), s)| {
                    (
                        s as &dyn ExportSource,
                        entry.platform.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let options = ExportOptions {
                format: ManifestFormat::Oci,
                compression,
                annotations: Default::default(),
            };
            let quiet = request.quiet;
            let there = super::push::blobs_already_at(&destination);
            crate::image::transport::export_index(&images, &destination, &options, &mut |e| {
                if !quiet {
                    super::push::print_export_event(&e, "manifest list", &there)
                }
            })
            .with_context(|| format!("pushing {} to {}", list.name, request.destination))?
            .digest
        }
    };
    if let Some(path) = &request.digestfile {
        std::fs::write(path, digest.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(digest)
}

/// A stored attestation entry, as `push_list` sends it.
fn artifact_source(
    store: &Store,
    lease: &crate::store::Lease,
    entry: &crate::image::manifest::Descriptor,
    art: &crate::store::ListArtifact,
) -> anyhow::Result<ListArtifactSource> {
    lease.protect_blob(&art.manifest)?;
    let mut blobs = Vec::new();
    for digest in &art.blobs {
        lease.protect_blob(digest)?;
        let size = store
            .blob_size(digest)
            .with_context(|| format!("attestation {}: blob {digest}", entry.digest))?;
        blobs.push((*digest, size, store.blob_path(digest)));
    }
    Ok(ListArtifactSource {
        entry: entry.clone(),
        manifest: store.read_blob(&art.manifest)?,
        blobs,
    })
}

/// skopeo's lines for a list copy, on stderr; blob bars on a terminal.
fn printer(quiet: bool) -> impl Fn(ListPushEvent) + Sync {
    let bars = BlobBars::stderr();
    let image_printer = super::push_registry::printer(quiet);
    move |event| {
        if quiet {
            return;
        }
        match event {
            ListPushEvent::Start { count } => {
                bars.line("Getting image list signatures");
                bars.line(&format!(
                    "Copying {count} images generated from {count} images in list"
                ));
            }
            ListPushEvent::Image {
                number,
                count,
                digest,
            } => bars.line(&format!("Copying image {digest} ({number}/{count})")),
            ListPushEvent::Push(e) => image_printer(e),
            ListPushEvent::Index { .. } => bars.line("Writing manifest list to image destination"),
        }
    }
}
