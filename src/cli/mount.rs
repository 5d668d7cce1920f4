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
    /// JSON output (buildah's `container` and `mountPoint` keys).
    #[arg(long)]
    pub json: bool,
}

/// One `--json` entry; `container` is left out when one container was named.
#[derive(serde::Serialize)]
struct JsonMount {
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(rename = "mountPoint")]
    mount_point: String,
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
    let mut mounts: Vec<JsonMount> = Vec::new();
    let mut failed = false;
    if args.containers.is_empty() {
        for rec in store.containers()? {
            let wc = WorkingContainer::open(store, &rec.name)?;
            let path = mount_point(&access.runroot, &wc);
            if is_mounted(&path) {
                mounts.push(JsonMount {
                    container: Some(rec.name),
                    mount_point: path.display().to_string(),
                });
            }
        }
    }
    let several = args.containers.len() > 1;
    for name in &args.containers {
        // One that fails does not stop the others; the exit code says it.
        let mounted = WorkingContainer::open(store, name).and_then(|wc| {
            let _lock = crate::container::ContainerLock::acquire(&access.runroot, &wc)?;
            mount(store, &access.runroot, &wc)
        });
        match mounted {
            Ok(path) => mounts.push(JsonMount {
                container: several.then(|| name.clone()),
                mount_point: path.display().to_string(),
            }),
            Err(e) => {
                eprintln!("Error: mounting container {name:?}: {e}");
                failed = true;
            }
        }
    }
    if args.json {
        let json = crate::image::gojson::to_vec_indent(&mounts, "    ")?;
        println!("{}", String::from_utf8_lossy(&json));
    } else {
        for m in &mounts {
            match &m.container {
                Some(c) => println!("{c} {}", m.mount_point),
                None => println!("{}", m.mount_point),
            }
        }
    }
    Ok(if failed { 125 } else { 0 })
}
