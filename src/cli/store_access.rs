//! Opening the store for a subcommand: enter the rootless user namespace
//! first (before any thread exists), then resolve `--root`/`--runroot`.

use std::path::PathBuf;

use anyhow::Context;

use super::GlobalOptions;
use crate::store::{default_root, default_runroot, Store};

fn private_mount_namespace() -> anyhow::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS)
        .context("unshare(CLONE_NEWNS) for a private mount namespace")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private in rbuild's mount namespace")?;
    Ok(())
}

/// The store and run root a command works in.
pub struct StoreAccess {
    pub store: Store,
    pub runroot: PathBuf,
}

/// Enters rbuild's user namespace (re-executing when unprivileged) and
/// opens the store.
pub fn open(global: &GlobalOptions) -> anyhow::Result<StoreAccess> {
    let userns =
        crate::sandbox::enter_user_namespace().context("setting up the rootless user namespace")?;
    if !userns.is_rootless() {
        // As root, layer mounts go into a private mount namespace of this
        // process, so a killed build leaves no stray mounts on the host.
        private_mount_namespace()?;
    }
    let root = match &global.root {
        Some(r) => r.clone(),
        None => default_root().context("finding the default storage root")?,
    };
    let runroot = global.runroot.clone().unwrap_or_else(default_runroot);
    let store =
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))?;
    Ok(StoreAccess { store, runroot })
}
