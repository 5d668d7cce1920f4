//! `rbuild umount [--all] CONTAINER…`: unmounts what `rbuild mount` mounted
//! and prints the IDs of the containers it unmounted, as buildah does: one
//! that was not mounted prints nothing, and one that fails does not stop
//! the others (the exit code says it).

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
    if args.all && !args.containers.is_empty() {
        bail!("when using the --all switch, you may not pass any container IDs");
    }
    super::mount::require_shared_namespace("unmount a container")?;
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    let names: Vec<String> = if args.all {
        store.containers()?.into_iter().map(|r| r.name).collect()
    } else {
        args.containers.clone()
    };
    let mut failed = false;
    for name in &names {
        let done = WorkingContainer::open(store, name).and_then(|wc| {
            let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
            Ok(umount(&access.runroot, &wc)?.then_some(wc.state.id))
        });
        match done {
            Ok(Some(id)) => println!("{id}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("Error: unmounting container {name:?}: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}
