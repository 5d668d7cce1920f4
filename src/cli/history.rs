//! `rbuild history IMAGE`: the image's history, newest first.

use std::io::Write;

use anyhow::Context;

use super::GlobalOptions;
use crate::image::format::Template;
use crate::image::inspect::{history_rows, history_table};
use crate::image::lookup::lookup_image;
use crate::image::{Image, Timestamp};

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The image (name or ID).
    pub image: String,
    /// Do not truncate the output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Print sizes in bytes and times as timestamps.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Print only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Go template per row.
    #[arg(long)]
    pub format: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &GlobalOptions, args: HistoryArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let rec = lookup_image(store, &args.image)?;
    let image = Image::from_json(&store.read_blob(&rec.id)?)?;
    let mut sizes = Vec::new();
    for chain in &rec.layers {
        sizes.push(store.layer_meta(chain)?.size);
    }
    let rows = history_rows(&rec.id, &image, &sizes, Timestamp::now());
    // Written, not println!'d: a closed pipe is an error to report, not a panic.
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r.id)?;
        }
    } else if let Some(fmt) = &args.format {
        let template = Template::parse(fmt).with_context(|| format!("--format {fmt:?}"))?;
        for r in &rows {
            writeln!(
                out,
                "{}",
                template.render(&r.template_value(args.human, args.no_trunc))?
            )?;
        }
    } else {
        write!(out, "{}", history_table(&rows, args.no_trunc, args.human))?;
    }
    Ok(0)
}
