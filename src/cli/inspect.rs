//! `rbuild inspect [--type image] [--format T] IMAGE`: the image as buildah
//! prints it.

use std::io::Write;

use anyhow::{bail, Context};

use super::GlobalOptions;
use crate::image::format::Template;
use crate::image::inspect::ImageInspect;
use crate::image::lookup::lookup_image;
use crate::image::manifest::ImageManifest;
use crate::image::Image;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image (name or ID).
    pub name: String,
    /// What to inspect.
    #[arg(short, long = "type", default_value = "image", value_parser = ["image"])]
    pub kind: String,
    /// Go template applied to the inspect data.
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn run(global: &GlobalOptions, args: InspectArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let store = &access.store;
    if args.kind != "image" {
        bail!("--type {}: only images can be inspected", args.kind);
    }
    let rec = lookup_image(store, &args.name)?;
    let config_bytes = store.read_blob(&rec.id)?;
    let manifest_bytes = store.read_blob(&rec.manifest)?;
    let image = Image::from_json(&config_bytes)?;
    let manifest = ImageManifest::from_json(&manifest_bytes)?;
    let name = rec
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| args.name.clone());
    let inspect = ImageInspect::new(
        &name,
        &image,
        &config_bytes,
        &manifest_bytes,
        &manifest.annotations,
    );
    // Written, not println!'d: a closed pipe is an error to report, not a panic.
    let mut out = std::io::stdout().lock();
    match &args.format {
        Some(fmt) => {
            let template = Template::parse(fmt).with_context(|| format!("--format {fmt:?}"))?;
            writeln!(out, "{}", template.render_serialize(&inspect)?)?;
        }
        None => out.write_all(&inspect.to_json())?,
    }
    Ok(0)
}
