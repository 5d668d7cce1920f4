//! The `docker://` branch of `rbuild push`: a stored image to a registry.

use anyhow::Context;

use super::push::PushArgs;
use crate::image::from_store::StoreImage;
use crate::image::manifest::{ImageManifest, ManifestFormat};
use crate::image::Compression;
use crate::reference::{normalize_docker, Reference};
use crate::registry::progress::BlobBars;
use crate::registry::{push, PushEvent, PushOptions};
use crate::store::{ImageRecord, Store};

/// Pushes the image `rec` (what `args.image` resolved to) to `docker://name`.
pub fn run(store: &Store, args: &PushArgs, rec: &ImageRecord, name: &str) -> anyhow::Result<i32> {
    let destination =
        normalize_docker(name).with_context(|| format!("destination docker://{name}"))?;
    let registry_opts = args.registry.options()?;
    let lease = store.lease()?;
    lease.protect_image(&rec.id)?;
    let source = StoreImage::open(store, rec)?;
    let stored = ImageManifest::from_json(&store.read_blob(&rec.manifest)?).ok();
    let format = match args.format.as_deref() {
        Some("docker") | Some("v2s2") => ManifestFormat::Docker,
        Some(_) => ManifestFormat::Oci,
        None => stored.as_ref().map_or(ManifestFormat::Oci, |m| m.format),
    };
    let compression: Compression = args
        .compression_format
        .parse()
        .with_context(|| "--compression-format".to_string())?;
    // Repositories of the same registry the image came from can lend their blobs.
    let mount_from = rec
        .names
        .iter()
        .filter_map(|n| Reference::parse(n).ok())
        .filter(|r| r.registry == destination.registry)
        .map(|r| r.repository)
        .collect();
    let opts = PushOptions {
        registry: registry_opts,
        format,
        compression,
        annotations: stored.map(|m| m.annotations).unwrap_or_default(),
        mount_from,
    };
    if !args.quiet {
        BlobBars::stderr().line("Getting image source signatures");
    }
    let printer = printer(args.quiet);
    let pushed = push(&source, &destination, &opts, &printer)
        .with_context(|| format!("pushing {} to docker://{destination}", args.image))?;
    if let Some(path) = &args.digestfile {
        std::fs::write(path, pushed.manifest_digest.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(0)
}

/// skopeo's lines for one image's push, on stderr; blob bars on a terminal.
pub(super) fn printer(quiet: bool) -> impl Fn(PushEvent) + Sync {
    let bars = BlobBars::stderr();
    move |event: PushEvent| {
        if quiet {
            return;
        }
        match event {
            PushEvent::Blob {
                blob,
                existed,
                mounted,
                ..
            } => {
                let note = if existed {
                    "skipped: already exists"
                } else if mounted {
                    "skipped: mounted from another repository"
                } else {
                    "done"
                };
                bars.finish(
                    &blob.digest,
                    &format!("Copying blob {} {note}", blob.digest),
                );
            }
            PushEvent::BlobProgress { digest, sent, size } => bars.update(&digest, sent, size),
            PushEvent::Config { blob, .. } => {
                bars.line(&format!("Copying config {} done", blob.digest))
            }
            PushEvent::Manifest { .. } => bars.line("Writing manifest to image destination"),
        }
    }
}
