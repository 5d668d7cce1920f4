//! `rbuild rm [--all] CONTAINER…`: removes working containers (unmounting
//! them first) and prints their IDs.

use anyhow::bail;

use super::GlobalOptions;
use crate::container::mounts::umount;
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// Containers (names or IDs).
    pub containers: Vec<String>,
    /// Remove every working container.
    #[arg(short, long)]
    pub all: bool,
}

pub fn run(global: &GlobalOptions, args: RmArgs) -> anyhow::Result<i32> {
    if args.containers.is_empty() && !args.all {
        bail!("rm needs at least one container name or ID, or --all");
    }
    // `rm -a NAME` is a typo, not "remove everything": refuse it as buildah does.
    if args.all && !args.containers.is_empty() {
        bail!("when using the --all switch, you may not pass any containers names or IDs");
    }
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    let mut names = args.containers.clone();
    if args.all {
        names = store.containers()?.into_iter().map(|r| r.name).collect();
    }
    let mut failed = false;
    for name in &names {
        let removed = WorkingContainer::open(store, name).and_then(|wc| {
            let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
            umount(&access.runroot, &wc)?;
            store.remove_container(wc.name())?;
            // The lock file and mount point dir die with the container.
            let _ = std::fs::remove_dir_all(access.runroot.join("containers").join(&wc.state.id));
            Ok(wc.state.id)
        });
        match removed {
            Ok(id) => println!("{id}"),
            Err(e) => {
                eprintln!("Error: removing container {name:?}: {e}");
                failed = true;
            }
        }
    }
    // buildah exits 125 when any container could not be removed.
    Ok(if failed { 125 } else { 0 })
}
