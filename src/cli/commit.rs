//! `rbuild commit [flags] CONTAINER [IMAGE]`: the container's changes as a
//! new layer and an image; prints the image ID.

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
    /// Print only the image ID (the default output anyway).
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalOptions, args: CommitArgs) -> anyhow::Result<i32> {
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
    if args.rm {
        crate::container::mounts::umount(&access.runroot, &wc)?;
        store.remove_container(wc.name())?;
    }
    println!("{}", record.id.hex());
    Ok(0)
}
