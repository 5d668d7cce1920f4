//! `rbuild copy` and `rbuild add [--chown] [--chmod] [--from IMAGE|CONTAINER]
//! CONTAINER SRC… DEST`: COPY and ADD into a working container.

use anyhow::bail;

use super::GlobalOptions;
use crate::container::files::parse_chmod;
use crate::container::{CopyRequest, WorkingContainer};

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// Owner of what is copied (user[:group], names looked up in the container).
    #[arg(long)]
    pub chown: Option<String>,
    /// Mode of what is copied (octal).
    #[arg(long)]
    pub chmod: Option<String>,
    /// Copy from this image or working container instead of the host.
    #[arg(long)]
    pub from: Option<String>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
    /// The working container.
    pub container: String,
    /// Sources, then the destination.
    #[arg(required = true, num_args = 1..)]
    pub paths: Vec<String>,
}

/// `add` is true for `rbuild add` (URLs and archives are unpacked).
pub fn run(global: &GlobalOptions, args: CopyArgs, add: bool) -> anyhow::Result<i32> {
    let mut paths = args.paths;
    if paths.len() < 2 {
        bail!(
            "give at least one source and a destination: rbuild {} CONTAINER SRC… DEST",
            if add { "add" } else { "copy" }
        );
    }
    let dest = paths.pop().unwrap_or_default();
    let chmod = args.chmod.as_deref().map(parse_chmod).transpose()?;
    let access = super::store_access::open(global)?;
    let wc = WorkingContainer::open(&access.store, &args.container)?;
    let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
    crate::container::copy(
        &access.store,
        &access.runroot,
        &wc,
        &CopyRequest {
            sources: paths,
            dest,
            chown: args.chown,
            chmod,
            from: args.from,
            add,
        },
    )?;
    Ok(0)
}
