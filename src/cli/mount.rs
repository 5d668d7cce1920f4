//! `rbuild mount [CONTAINER…]`: mounts containers and prints the merged
//! rootfs path (with no argument: lists mounted containers). As root the
//! mount is made in the caller's mount namespace; unprivileged, it is only
//! usable inside `rbuild unshare`, as with buildah.

use anyhow::bail;

use super::GlobalOptions;
use crate::container::mounts::{is_mounted, mount, mount_point};
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct MountArgs {
    /// Containers (names or IDs).
    pub containers: Vec<String>,
    /// Full IDs when listing.
    #[arg(long)]
    pub notruncate: bool,
}

/// Refuses where a mount would vanish with the command: an unprivileged
/// caller outside `rbuild unshare` gets a new namespace per command.
pub fn require_shared_namespace(what: &str) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() && crate::sandbox::current_state().is_none() {
        bail!(
            "cannot {what} rootless outside rbuild's user namespace: the mount would vanish when rbuild exits; \
             run it inside `rbuild unshare`, e.g. rbuild unshare -- sh -c 'cp file $(rbuild mount CONTAINER)/'"
        );
    }
    Ok(())
}

pub fn run(global: &GlobalOptions, args: MountArgs) -> anyhow::Result<i32> {
    require_shared_namespace("mount a container")?;
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    if args.containers.is_empty() {
        for rec in store.containers()? {
            let wc = WorkingContainer::open(store, &rec.name)?;
            let path = mount_point(&access.runroot, &wc);
            if is_mounted(&path) {
                println!("{} {}", rec.name, path.display());
            }
        }
        return Ok(0);
    }
    let several = args.containers.len() > 1;
    for name in &args.containers {
        let wc = WorkingContainer::open(store, name)?;
        let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
        let path = mount(store, &access.runroot, &wc)?;
        if several {
            println!("{} {}", wc.name(), path.display());
        } else {
            println!("{}", path.display());
        }
    }
    Ok(0)
}
