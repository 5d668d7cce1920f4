//! Opening the store for a subcommand: enter the rootless user namespace
//! first (before any thread exists), then resolve `--root`/`--runroot`.

use std::path::PathBuf;

use anyhow::Context;

use super::GlobalOptions;
use crate::store::{default_root, default_runroot, Store};

/// The store and run root a command works in.
pub struct StoreAccess {
    pub store: Store,
    pub runroot: PathBuf,
}

/// Enters rbuild's user namespace (re-executing when unprivileged) and
/// opens the store.
pub fn open(global: &GlobalOptions) -> anyhow::Result<StoreAccess> {
    crate::sandbox::enter_user_namespace().context("setting up the rootless user namespace")?;
    if nix::unistd::geteuid().is_root() {
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

/// As root, store operations get a private mount namespace too, as they do
/// rootless: the layer overlays a build mounts then vanish with the process,
/// even after `kill -9`, instead of staying mounted on the host. Must run
/// before any thread exists (unshare(CLONE_NEWNS) refuses a process that
/// shares its filesystem state with other threads).
fn private_mount_namespace() -> anyhow::Result<()> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    unshare(CloneFlags::CLONE_NEWNS).context(
        "creating a private mount namespace for the build (unshare(CLONE_NEWNS) as root)",
    )?;
    // Without this, mounts made here would propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / a private mount tree in the build's mount namespace")?;
    Ok(())
}
