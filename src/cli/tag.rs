//! `rbuild tag IMAGE|LIST NAME...`: add names to an image, or to a manifest
//! list (buildah tags the list itself, not its image for this platform).

use anyhow::Context;

use super::GlobalOptions;
use crate::image::lookup::{local_name, lookup, Found};

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image or manifest list (name or ID).
    pub image: String,
    /// New names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: TagArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let found = lookup(store, &args.image)?;
    for n in &args.names {
        let name = local_name(n).with_context(|| format!("tag {n:?}"))?;
        match &found {
            Found::List(list) => {
                if list.name != name {
                    store.tag_list(&list.name, &name).with_context(|| {
                        format!("tagging manifest list {} as {name}", list.name)
                    })?;
                }
            }
            // One name means one thing: a list holding it gives it up
            // (the store moves it under its lock).
            Found::Image(rec) => store.tag(&rec.id, &name)?,
        }
    }
    Ok(0)
}
