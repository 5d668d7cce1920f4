//! `rbuild umount [--all] CONTAINER…`: unmounts what `rbuild mount` mounted
//! and prints the container IDs.

use anyhow::bail;

use super::GlobalOptions;
use crate::container::mounts::umount;
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct UmountArgs {
    /// Containers (names or IDs).
    pub containers: Vec<String>,
    /// Unmount every container.
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(global: &GlobalOptions, args: UmountArgs) -> anyhow::Result<i32> {
    if args.containers.is_empty() && !args.all {
        bail!("umount needs at least one container name or ID, or --all");
    }
    super::mount::require_shared_namespace("unmount a container")?;
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    let names: Vec<String> = if args.all {
        store.containers()?.into_iter().map(|r| r.name).collect()
    } else {
        args.containers.clone()
    };
    for name in &names {
        let wc = WorkingContainer::open(store, name)?;
        let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
        if umount(&access.runroot, &wc)? || !args.all {
            println!("{}", wc.state.id);
        }
    }
    Ok(0)
}
