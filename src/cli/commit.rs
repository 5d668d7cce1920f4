//! `rbuild commit [flags] CONTAINER [IMAGE]`: the container's changes as a
//! new layer and an image; prints the image ID. IMAGE may be a transport
//! (`oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`, `dir:DIR`,
//! `docker://NAME`), as with buildah: the image goes there, not into the
//! store.

use anyhow::Context;

use super::GlobalOptions;
use crate::container::{CommitOptions, WorkingContainer};
use crate::image::lookup::local_name;
use crate::image::ManifestFormat;

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// The working container.
    pub container: String,
    /// Name for the image.
    pub image: Option<String>,
    /// A Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, EXPOSE,
    /// LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD), repeatable.
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    /// Commit message, stored in the history entry.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Image author.
    #[arg(long)]
    pub author: Option<String>,
    /// Make one layer holding the whole rootfs.
    #[arg(long)]
    pub squash: bool,
    /// Remove the container after committing.
    #[arg(long)]
    pub rm: bool,
    /// Image format.
    #[arg(short, long, default_value = "oci", value_parser = ["oci", "docker"])]
    pub format: String,
    /// Created time (seconds since the epoch) for the image, history and file mtimes.
    #[arg(long)]
    pub timestamp: Option<i64>,
    /// Print only the image ID (no progress lines when IMAGE is a transport).
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID, as `sha256:HEX`, to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<std::path::PathBuf>,
    /// Add the image to this manifest list (created when missing).
    #[arg(long, value_name = "LIST")]
    pub manifest: Option<String>,
    /// Leave layers uncompressed when IMAGE is a transport (buildah's
    /// default; `-D=false` compresses with --compression-format).
    #[arg(short = 'D', long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_value = "true", default_missing_value = "true")]
    pub disable_compression: bool,
    /// Layer compression for a transport IMAGE with `-D=false`.
    #[arg(long, default_value = "gzip", value_parser = ["gzip", "zstd"])]
    pub compression_format: String,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

/// Whether `image` names a transport destination rather than a store name.
fn transport_destination(image: &str) -> bool {
    image.starts_with("docker://") || image.parse::<crate::image::Destination>().is_ok()
}

pub fn run(global: &GlobalOptions, mut args: CommitArgs) -> anyhow::Result<i32> {
    let destination = args.image.take_if(|i| transport_destination(i));
    if let (Some(dest), Some(_)) = (&destination, &args.manifest) {
        anyhow::bail!("--manifest needs the image in local storage; commit to a name, not to {dest}, then push the list");
    }
    let names = match &args.image {
        Some(n) => vec![local_name(n).with_context(|| format!("image name {n:?}"))?],
        None => Vec::new(),
    };
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    let lease = store.lease()?;
    let mut wc = WorkingContainer::open(store, &args.container)?;
    let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
    let opts = CommitOptions {
        changes: args.change,
        message: args.message,
        author: args.author,
        squash: args.squash,
        format: if args.format == "docker" {
            ManifestFormat::Docker
        } else {
            ManifestFormat::Oci
        },
        timestamp: args.timestamp,
        names,
    };
    let record = crate::container::commit(store, &lease, &access.runroot, &mut wc, &opts)?;
    if let Some(dest) = destination {
        // The lease keeps the unnamed image from a concurrent prune.
        lease.protect_image(&record.id)?;
        let push = super::push::PushArgs {
            image: record.id.hex().to_string(),
            destination: Some(dest.clone()),
            compression_format: if args.disable_compression {
                "none".into()
            } else {
                args.compression_format.clone()
            },
            format: Some(args.format.clone()),
            digestfile: None,
            quiet: args.quiet,
            disable_compression: false,
            all: true,
            rm: false,
            remove_signatures: false,
            registry: args.registry.clone(),
        };
        let pushed = super::push::run(global, push);
        // Only the destination gets the image: drop the store's copy unless
        // it was already there under a name (an identical earlier commit).
        if record.names.is_empty() {
            store.remove_image(&record.id)?;
            store.gc()?;
        }
        pushed.with_context(|| format!("committing {} to {dest}", args.container))?;
    }
    if let Some(list) = &args.manifest {
        add_to_list(store, list, &record)?;
    }
    if let Some(path) = &args.iidfile {
        std::fs::write(path, record.id.to_string())
            .with_context(|| format!("--iidfile: writing {}", path.display()))?;
    }
    if args.rm {
        crate::container::mounts::umount(&access.runroot, &wc)?;
        store.remove_container(wc.name())?;
    }
    println!("{}", record.id.hex());
    Ok(0)
}

/// `--manifest LIST`: the committed image joins the list, which is made
/// when it does not exist yet (as buildah does).
fn add_to_list(
    store: &crate::store::Store,
    list: &str,
    record: &crate::store::ImageRecord,
) -> anyhow::Result<()> {
    use crate::registry::manifest_list;
    let result = match manifest_list::lookup_list(store, list) {
        Ok(existing) => manifest_list::add(store, &existing, record, &Default::default()).map(drop),
        Err(e) if e.is_not_found() => {
            let name = local_name(list).with_context(|| format!("--manifest {list:?}"))?;
            manifest_list::create(store, &name, std::slice::from_ref(record)).map(drop)
        }
        Err(e) => return Err(e).with_context(|| format!("--manifest {list}")),
    };
    result.with_context(|| format!("--manifest: adding {} to {list}", record.id.short()))
}
