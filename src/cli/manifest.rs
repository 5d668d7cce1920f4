//! `rbuild manifest create|add|remove|inspect|rm|push`: manifest lists
//! (multi-platform images), with buildah's command set and output.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use super::GlobalOptions;
use crate::digest::Digest;
use crate::image::lookup::{local_name, lookup_image};
use crate::registry::manifest_list::{self, lookup_list, AddOptions};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub command: ManifestCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ManifestCommand {
    /// Create a manifest list, optionally with images in it.
    Create(CreateArgs),
    /// Add an image to a manifest list.
    Add(AddArgs),
    /// Remove an entry (by manifest digest) from a manifest list.
    Remove(RemoveArgs),
    /// Print a manifest list's index as JSON.
    Inspect(InspectArgs),
    /// Remove manifest lists (their images stay).
    Rm(RmArgs),
    /// Exit 0 when the manifest list exists, 1 when it does not.
    Exists(InspectArgs),
    /// Push a manifest list and its images (docker://, oci:, oci-archive:).
    Push(super::manifest_push::ManifestPushArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The list's name.
    pub list: String,
    /// Local images to add.
    pub images: Vec<String>,
    /// Use the list of that name when it exists already.
    #[arg(long)]
    pub amend: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The list (name or ID).
    pub list: String,
    /// The local image to add.
    pub image: String,
    /// The OS to list it under (default: its config's).
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// The architecture to list it under (default: its config's).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// The architecture variant (default: its config's).
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
    /// The OS version.
    #[arg(long, value_name = "VERSION")]
    pub os_version: Option<String>,
    /// OS features, comma-separated.
    #[arg(long, value_name = "FEATURES", value_delimiter = ',')]
    pub os_features: Vec<String>,
    /// An annotation on the entry.
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The list (name or ID).
    pub list: String,
    /// The manifest digest of the entry to remove.
    pub digest: String,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The list (name or ID).
    pub list: String,
}

#[derive(Debug, clap::Args)]
pub struct RmArgs {
    /// The lists (names or IDs).
    #[arg(required = true)]
    pub lists: Vec<String>,
}

pub fn run(global: &GlobalOptions, args: ManifestArgs) -> anyhow::Result<i32> {
    let access = super::store_access::open(global)?;
    let store = &access.store;
    match args.command {
        ManifestCommand::Create(a) => create(store, a),
        ManifestCommand::Add(a) => add(store, a),
        ManifestCommand::Remove(a) => remove(store, a),
        ManifestCommand::Inspect(a) => inspect(store, a),
        ManifestCommand::Rm(a) => rm(store, a),
        ManifestCommand::Exists(a) => match lookup_list(store, &a.list) {
            Ok(_) => Ok(0),
            Err(e) if e.is_not_found() => Ok(1),
            Err(e) => Err(e.into()),
        },
        ManifestCommand::Push(a) => super::manifest_push::run(store, a),
    }
}

/// The list a user names: by name (normalised as buildah does) or ID.
pub(super) fn find_list(
    store: &Store,
    name_or_id: &str,
) -> anyhow::Result<crate::store::ManifestList> {
    match lookup_list(store, name_or_id) {
        Ok(l) => Ok(l),
        Err(e) if e.is_not_found() => {
            let bare = name_or_id.trim_start_matches("sha256:");
            let by_id: Vec<_> = store
                .lists()?
                .into_iter()
                .filter(|l| bare.len() >= 3 && l.id.hex().starts_with(bare))
                .collect();
            match <[_; 1]>::try_from(by_id) {
                Ok([one]) => Ok(one),
                Err(_) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn parse_annotations(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--annotation {a:?}: expected KEY=VALUE"),
        })
        .collect()
}

fn create(store: &Store, args: CreateArgs) -> anyhow::Result<i32> {
    let name = local_name(&args.list).with_context(|| format!("list name {:?}", args.list))?;
    let mut list = match manifest_list::create(store, &name) {
        Ok(l) => l,
        Err(crate::registry::RegistryError::Store(crate::store::StoreError::ListExists(_)))
            if args.amend =>
        {
            store.list(&name)?
        }
        Err(e) => return Err(e).with_context(|| format!("creating manifest list {name}")),
    };
    for image in &args.images {
        let rec = lookup_image(store, image)?;
        list = manifest_list::add(store, &list, &rec, &AddOptions::default())
            .with_context(|| format!("adding {image} to {name}"))?
            .0;
    }
    println!("{}", list.id.hex());
    Ok(0)
}

fn add(store: &Store, args: AddArgs) -> anyhow::Result<i32> {
    let list = find_list(store, &args.list)?;
    if args.image.contains("://") {
        bail!(
            "{}: only images in local storage can be added; pull it first (rbuild pull)",
            args.image
        );
    }
    let rec = lookup_image(store, &args.image)?;
    let opts = AddOptions {
        os: args.os,
        arch: args.arch,
        variant: args.variant,
        os_version: args.os_version,
        os_features: args.os_features,
        annotations: parse_annotations(&args.annotations)?,
    };
    let (list, digest) = manifest_list::add(store, &list, &rec, &opts)
        .with_context(|| format!("adding {} to {}", args.image, list.name))?;
    println!("{}: {digest}", list.id.hex());
    Ok(0)
}

fn remove(store: &Store, args: RemoveArgs) -> anyhow::Result<i32> {
    let list = find_list(store, &args.list)?;
    let digest: Digest = args
        .digest
        .parse()
        .with_context(|| format!("{:?} is not a manifest digest (sha256:…)", args.digest))?;
    let list = manifest_list::remove(store, &list, &digest)?;
    println!("{}: {digest}", list.id.hex());
    Ok(0)
}

fn inspect(store: &Store, args: InspectArgs) -> anyhow::Result<i32> {
    let list = find_list(store, &args.list)?;
    let doc = manifest_list::read_document(store, &list)?;
    println!("{}", String::from_utf8_lossy(&doc.to_pretty_json()));
    Ok(0)
}

fn rm(store: &Store, args: RmArgs) -> anyhow::Result<i32> {
    let mut failed = false;
    for name in &args.lists {
        match find_list(store, name) {
            Ok(list) => {
                store.remove_list(&list.name)?;
                println!("untagged: {}", list.name);
                println!("{}", list.id.hex());
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    store.gc()?;
    Ok(if failed { 1 } else { 0 })
}
