//! `rbuild rename CONTAINER NEW-NAME`.

use super::GlobalOptions;
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    /// The container (name or ID).
    pub container: String,
    /// Its new name.
    pub new_name: String,
}

pub fn run(global: &GlobalOptions, args: RenameArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let wc = WorkingContainer::open(&access.store, &args.container)?;
    if wc.name() == args.new_name {
        anyhow::bail!(
            "renaming a container with the same name as its current name ({:?})",
            args.new_name
        );
    }
    access.store.rename_container(wc.name(), &args.new_name)?;
    Ok(0)
}
