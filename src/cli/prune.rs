//! `rbuild prune` (dangling images, then whatever no image, cache entry or
//! running build uses; `--all` also drops the build cache) and
//! `rbuild cache prune [--filter until=…]`.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};

use super::GlobalOptions;

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Also remove the whole build cache.
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Debug, clap::Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Remove build cache entries (and the layers only they kept).
    Prune(CachePruneArgs),
}

#[derive(Debug, clap::Args)]
pub struct CachePruneArgs {
    /// `until=DURATION` (e.g. `24h`, `90m`) or `until=UNIX-SECONDS`:
    /// only entries older than that.
    #[arg(long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
}

fn parse_until(value: &str) -> anyhow::Result<SystemTime> {
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    let d =
        crate::containerfile::instructions::duration::parse_go_duration(value).map_err(|e| {
            anyhow::anyhow!("until={value}: {e}; use a duration like 24h or unix seconds")
        })?;
    Ok(SystemTime::now() - d)
}

pub fn run(global: &GlobalOptions, args: PruneArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    if args.all {
        let n = access.store.clear_cache()?;
        println!("removed {n} build cache entries");
    }
    let report = access.store.prune()?;
    for id in &report.images_removed {
        println!("{}", id.hex());
    }
    println!(
        "removed {} blobs ({} bytes) and {} layers",
        report.gc.blobs_removed.len(),
        report.gc.blob_bytes_freed,
        report.gc.layers_removed.len()
    );
    Ok(0)
}

pub fn run_cache(global: &GlobalOptions, args: CacheArgs) -> anyhow::Result<i32> {
    let CacheCommand::Prune(args) = args.command;
    let mut until = None;
    for f in &args.filters {
        match f.split_once('=') {
            Some(("until", v)) => {
                until = Some(parse_until(v).with_context(|| format!("--filter {f}"))?)
            }
            _ => bail!("--filter {f:?}: the only cache filter is until=DURATION|UNIX-SECONDS"),
        }
    }
    let access = super::store_access::open(global)?;
    let n = access.store.prune_cache(until)?;
    let gc = access.store.gc()?;
    println!(
        "removed {n} build cache entries, {} layers and {} blobs",
        gc.layers_removed.len(),
        gc.blobs_removed.len()
    );
    Ok(0)
}
