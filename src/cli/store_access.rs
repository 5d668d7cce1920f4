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
    crate::sandbox::enter_user_namespace()
        .context("setting up the rootless user namespace")?;
    let root = match &global.root {
        Some(r) => r.clone(),
        None => default_root().context("finding the default storage root")?,
    };
    let runroot = global.runroot.clone().unwrap_or_else(default_runroot);
    let store =
        Store::open(&root).with_context(|| format!("opening the store at {}", root.display()))?;
    Ok(StoreAccess { store, runroot })
}
