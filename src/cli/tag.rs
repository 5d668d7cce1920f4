//! `rbuild tag IMAGE NAME...`: add names to an image.

use anyhow::Context;

use super::GlobalOptions;
use crate::image::lookup::{local_name, lookup_image};

#[derive(Debug, clap::Args)]
pub struct TagArgs {
    /// The image (name or ID).
    pub image: String,
    /// New names.
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: TagArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let rec = lookup_image(&access.store, &args.image)?;
    for n in &args.names {
        let name = local_name(n).with_context(|| format!("tag {n:?}"))?;
        access.store.tag(&rec.id, &name)?;
    }
    Ok(0)
}
