//! `rbuild from [--name N] IMAGE|scratch`: makes a working container and
//! prints its name (`IMAGE-working-container`, `-1`, `-2`, … when taken).

use anyhow::bail;

use super::GlobalOptions;
use crate::container::WorkingContainer;

#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// The base image (name or ID), or `scratch`.
    pub image: String,
    /// Name of the working container (default: IMAGE-working-container).
    #[arg(long)]
    pub name: Option<String>,
    /// Pull policy: missing (default), never, always, newer. rbuild has no
    /// registry client yet, so the image must be in the store.
    #[arg(long, num_args = 0..=1, default_missing_value = "missing", value_name = "POLICY",
          value_parser = ["missing", "never", "always", "newer", "true", "false", "ifmissing", "ifnewer"])]
    pub pull: Option<String>,
    /// Print nothing but the container name.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalOptions, args: FromArgs) -> anyhow::Result<i32> {
    if matches!(
        args.pull.as_deref(),
        Some("always" | "newer" | "true" | "ifnewer")
    ) {
        bail!(
            "--pull={}: rbuild cannot contact registries yet; import the image (`rbuild import ROOTFS.tar NAME`) and use --pull=missing",
            args.pull.as_deref().unwrap_or_default()
        );
    }
    let access = super::store_access::open(global)?;
    let wc = WorkingContainer::create(&access.store, &args.image, args.name.as_deref())?;
    println!("{}", wc.name());
    Ok(0)
}
