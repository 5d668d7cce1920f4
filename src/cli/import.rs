//! `rbuild import SOURCE [NAME]`: a rootfs tarball (plain, gzip, bzip2, xz
//! or zstd) or a directory becomes a one-layer image — how the demo and the
//! tests get a busybox base without a registry.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;

use super::GlobalOptions;
use crate::build::write_image;
use crate::image::created_by::{self, ContentSummary};
use crate::image::lookup::local_name;
use crate::image::manifest::ManifestFormat;
use crate::image::{ImageConfigBuilder, Platform, Timestamp};
use crate::layer::copy::{copy_tree, CopyMode};
use crate::layer::{decompressing_reader, diff_id, extract_plain, ExtractOptions, TarOptions};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A rootfs tarball or directory.
    pub source: PathBuf,
    /// The image name (stored as localhost/NAME:latest when short).
    pub name: Option<String>,
    /// Set the config's command, e.g. `--cmd /bin/sh` (JSON array or words).
    #[arg(long)]
    pub cmd: Option<String>,
    /// Creation time in seconds since the epoch.
    #[arg(long, value_name = "SECONDS")]
    pub timestamp: Option<i64>,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(global: &GlobalOptions, args: ImportArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let name = args
        .name
        .as_deref()
        .map(local_name)
        .transpose()
        .with_context(|| format!("image name {:?}", args.name))?;
    let source = args.source.clone();
    let preserve = ExtractOptions::default();
    let chain = store
        .import_layer(
            None,
            |upper| -> anyhow::Result<(crate::digest::Digest, u64)> {
                if source.is_dir() {
                    copy_tree(&source, upper, CopyMode::Plain)
                        .with_context(|| format!("copying {}", source.display()))?;
                } else {
                    let file = File::open(&source)
                        .with_context(|| format!("opening {}", source.display()))?;
                    let reader = decompressing_reader(BufReader::new(file))
                        .with_context(|| format!("reading {}", source.display()))?;
                    extract_plain(reader, upper, &preserve)
                        .with_context(|| format!("extracting {}", source.display()))?;
                }
                Ok(diff_id(upper, &TarOptions::default())?)
            },
        )
        .with_context(|| format!("importing {}", args.source.display()))?;
    let meta = store.layer_meta(&chain)?;
    let created = match args.timestamp {
        Some(t) => Timestamp::from_unix(t).context("--timestamp is out of range")?,
        None => Timestamp::now(),
    };
    let mut config = ImageConfigBuilder::scratch(Platform::host());
    config.set_env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    if let Some(cmd) = &args.cmd {
        let argv: Vec<String> = serde_json::from_str(cmd)
            .unwrap_or_else(|_| cmd.split_whitespace().map(str::to_string).collect());
        config.set_cmd(argv);
    }
    config.set_created(created);
    config.add_layer(
        meta.diff_id,
        created,
        &created_by::copy("ADD", false, &ContentSummary::File(meta.diff_id), "/"),
    );
    let image = config.build();
    let lease = store.lease()?;
    let record = write_image(
        store,
        &lease,
        &image.to_oci_json(),
        &[chain],
        ManifestFormat::Oci,
        &Default::default(),
        name.into_iter().collect(),
    )?;
    println!("{}", record.id.hex());
    Ok(0)
}
