//! `rbuild push IMAGE [DEST]`: push an image to a registry
//! (`docker://HOST/REPO[:TAG]`, the default: the image's own name) or
//! export it to `oci:DIR[:ref]`, `oci-archive:FILE[:ref]`,
//! `docker-archive:FILE[:ref]` or `dir:DIR`. A manifest list goes with
//! all its images (see `manifest_push`).

use std::path::PathBuf;

use anyhow::Context;

use super::GlobalOptions;
use crate::image::from_store::StoreImage;
use crate::image::lookup::Found;
use crate::image::manifest::ManifestFormat;
use crate::image::{export_with_progress, Compression, Destination, ExportEvent, ExportOptions};

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image (name or ID).
    pub image: String,
    /// Where to: docker://REGISTRY/REPO[:TAG] or TRANSPORT:DETAILS (default: docker://IMAGE).
    pub destination: Option<String>,
    /// Layer compression.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd", "none", "uncompressed"])]
    pub compression_format: String,
    /// Manifest format (default: as the image was built).
    #[arg(short, long, value_parser = ["oci", "docker", "v2s2"])]
    pub format: Option<String>,
    /// Write the manifest digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
    /// Layers uncompressed (`--compression-format none`), as buildah's `-D`.
    #[arg(short = 'D', long)]
    pub disable_compression: bool,
    /// For a manifest list: push its images too, not only the index.
    /// rbuild's default is true (an OCI layout without them is unusable);
    /// `--all=false` pushes the index alone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub all: bool,
    /// For a manifest list: remove it from local storage after the push.
    #[arg(long)]
    pub rm: bool,
    /// Accepted for buildah command lines: rbuild copies no signatures.
    #[arg(long)]
    pub remove_signatures: bool,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

pub fn run(global: &GlobalOptions, mut args: PushArgs) -> anyhow::Result<i32> {
    if args.disable_compression {
        args.compression_format = "none".into();
    }
    let dest_text = args
        .destination
        .clone()
        .unwrap_or_else(|| format!("docker://{}", args.image));
    let access = super::store_access::open(global)?;
    let store = &access.store;
    // The name resolves as in every other command; a manifest list pushes
    // every platform image, then its index.
    let rec = match crate::image::lookup::lookup(store, &args.image)? {
        Found::Image(rec) => rec,
        Found::List(list) => {
            let request = super::manifest_push::ListPush {
                destination: dest_text,
                all: args.all,
                compression_format: args.compression_format.clone(),
                format: args.format.clone(),
                digestfile: args.digestfile.clone(),
                quiet: args.quiet,
                registry: args.registry.clone(),
            };
            super::manifest_push::push(store, &list, &request)?;
            if args.rm {
                store.remove_list(&list.name)?;
                store.gc()?;
            }
            return Ok(0);
        }
    };
    if let Some(name) = registry_destination(&dest_text) {
        return super::push_registry::run(store, &args, &rec, &name);
    }
    let destination: Destination = dest_text
        .parse()
        .with_context(|| format!("destination {dest_text:?}"))?;
    // A docker archive's RepoTags entry must be an image name docker can
    // load; buildah refuses `docker-archive:f.tar:bad:ref:x` the same way.
    if let Destination::DockerArchive {
        reference: Some(r), ..
    } = &destination
    {
        crate::reference::Reference::parse(r).with_context(|| {
            format!("destination {dest_text:?}: {r:?} is not an image name for the archive")
        })?;
    }
    let _lease = {
        let lease = store.lease()?;
        lease.protect_image(&rec.id)?;
        lease
    };
    let source = StoreImage::open(store, &rec)?;
    let stored =
        crate::image::manifest::ImageManifest::from_json(&store.read_blob(&rec.manifest)?).ok();
    let stored_format = stored.as_ref().map_or(ManifestFormat::Oci, |m| m.format);
    let requested = match args.format.as_deref() {
        Some("docker") | Some("v2s2") => Some(ManifestFormat::Docker),
        Some(_) => Some(ManifestFormat::Oci),
        None => None,
    };
    let format = layout_format(&destination, requested, stored_format)?;
    let compression: Compression = args
        .compression_format
        .parse()
        .with_context(|| "--compression-format".to_string())?;
    let options = ExportOptions {
        format,
        compression,
        // `bud --annotation` values live on the stored manifest.
        annotations: stored.map(|m| m.annotations).unwrap_or_default(),
    };
    let quiet = args.quiet;
    if !quiet {
        eprintln!("Getting image source signatures");
    }
    let there = blobs_already_at(&destination);
    let exported = export_with_progress(&source, &destination, &options, &mut |event| {
        if !quiet {
            print_export_event(&event, "manifest", &there);
        }
    })
    .with_context(|| format!("pushing {} to {dest_text}", args.image))?;
    if let Some(path) = &args.digestfile {
        std::fs::write(path, exported.manifest_digest.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(0)
}

/// The manifest format to write: an OCI layout (`oci:`, `oci-archive:`)
/// holds OCI manifests only — skopeo and umoci skip any other media type in
/// its index — so a docker-format image is converted there, as
/// containers/image does; asking for docker there explicitly is an error.
fn layout_format(
    destination: &Destination,
    requested: Option<ManifestFormat>,
    stored: ManifestFormat,
) -> anyhow::Result<ManifestFormat> {
    let oci_only = matches!(
        destination,
        Destination::Oci { .. } | Destination::OciArchive { .. }
    );
    match (oci_only, requested) {
        (true, Some(ManifestFormat::Docker)) => Err(anyhow::anyhow!(
            "--format docker: an OCI layout destination holds only OCI manifests; use docker-archive: or dir: for a docker manifest"
        )),
        (true, _) => Ok(ManifestFormat::Oci),
        (false, Some(format)) => Ok(format),
        (false, None) => Ok(stored),
    }
}

/// The image name when `dest` means a registry: `docker://NAME`, or a bare
/// image name without a transport (as buildah reads it).
pub(super) fn registry_destination(dest: &str) -> Option<String> {
    if let Some(rest) = dest.strip_prefix("docker://") {
        return Some(rest.to_string());
    }
    match dest.parse::<Destination>() {
        Err(crate::image::ExportError::UnknownTransport(_))
            if crate::reference::Reference::parse(dest).is_ok() =>
        {
            Some(dest.to_string())
        }
        _ => None,
    }
}

/// skopeo's progress lines for an export; `top` is what the last line
/// names ("manifest", or "manifest list" for a list).
/// The blobs an `oci:` layout holds before an export writes into it: only
/// those are "already there". Every other destination is written afresh.
pub(super) fn blobs_already_at(destination: &Destination) -> std::collections::HashSet<String> {
    match destination {
        Destination::Oci { dir, .. } => std::fs::read_dir(dir.join("blobs/sha256"))
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| format!("sha256:{}", e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Default::default(),
    }
}

/// Progress goes to stderr, as buildah's does: stdout stays for what a
/// script captures (`id=$(rbuild commit c oci:dir)`). A layer is "skipped:
/// already exists" only when the destination had it (`there`), as skopeo
/// means it — not because the store had the compressed blob cached.
pub(super) fn print_export_event(
    event: &ExportEvent,
    top: &str,
    there: &std::collections::HashSet<String>,
) {
    match event {
        ExportEvent::Layer { blob, .. } => {
            let note = if there.contains(&blob.digest.to_string()) {
                "skipped: already exists"
            } else {
                "done"
            };
            eprintln!("Copying blob {} {note}", blob.digest);
        }
        ExportEvent::Config { blob } => eprintln!("Copying config {} done", blob.digest),
        ExportEvent::Manifest { .. } => eprintln!("Writing {top} to image destination"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(s: &str) -> Destination {
        s.parse().unwrap()
    }

    #[test]
    fn layouts_get_oci_manifests_others_keep_the_image_format() {
        let docker = ManifestFormat::Docker;
        let oci = ManifestFormat::Oci;
        assert_eq!(layout_format(&dest("oci:/x:a"), None, docker).unwrap(), oci);
        assert_eq!(
            layout_format(&dest("oci-archive:/x.tar"), None, docker).unwrap(),
            oci
        );
        assert!(layout_format(&dest("oci:/x"), Some(docker), oci).is_err());
        assert_eq!(
            layout_format(&dest("dir:/x"), None, docker).unwrap(),
            docker
        );
        assert_eq!(
            layout_format(&dest("docker-archive:/x.tar"), Some(oci), docker).unwrap(),
            oci
        );
    }
}
