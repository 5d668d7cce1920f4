//! `rbuild manifest create|add|annotate|remove|inspect|rm|push`: manifest lists
//! (multi-platform images), with buildah's command set and output. A list
//! is named by name or ID prefix; `inspect` reads a registry reference when
//! no local list has the name (always for `docker://`); `rm` removes only
//! the list, leaving its images and blobs for `prune`, as buildah does.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use super::GlobalOptions;
use crate::digest::Digest;
use crate::image::lookup::{local_name, lookup_image};
use crate::registry::manifest_list::{self, lookup_list, AddOptions, ListDocument};
use crate::registry::RegistryError;
use crate::store::{Store, StoreError};

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
    /// Change an entry's platform fields or annotations.
    Annotate(AnnotateArgs),
    /// Remove an entry (by manifest digest) from a manifest list.
    Remove(RemoveArgs),
    /// Print a manifest list's index as JSON.
    Inspect(InspectArgs),
    /// Remove manifest lists (their images stay).
    Rm(RmArgs),
    /// Exit 0 when the manifest list exists, 1 when it does not.
    Exists(ExistsArgs),
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
    #[command(flatten)]
    pub entry: EntryArgs,
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// The list (name or ID).
    pub list: String,
    /// The entry: its manifest digest, or a local image it lists.
    pub instance: String,
    #[command(flatten)]
    pub entry: EntryArgs,
}

/// The platform fields and annotations of a list entry, as `manifest add`
/// and `manifest annotate` take them; a field left out keeps the image
/// config's value (add) or the entry's (annotate).
#[derive(Debug, clap::Args)]
pub struct EntryArgs {
    /// The OS to list it under (default: the image's, or the entry's).
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// The architecture to list it under (default: the image's, or the entry's).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// The architecture variant.
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
    /// The list (name or ID); with no local list of that name, or with
    /// `docker://`, the manifest or index in its registry.
    pub list: String,
    #[command(flatten)]
    pub registry: super::pull::RegistryArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExistsArgs {
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
        ManifestCommand::Annotate(a) => annotate(store, a),
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
    // Every image first: a name that does not resolve leaves no list behind.
    let images = args
        .images
        .iter()
        .map(|image| {
            lookup_image(store, image)
                .with_context(|| format!("image {image:?} for manifest list {name}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let list = match manifest_list::create(store, &name, &images) {
        Ok(l) => l,
        Err(RegistryError::Store(StoreError::ListExists(_))) if args.amend => {
            let mut list = store.list(&name)?;
            for (rec, image) in images.iter().zip(&args.images) {
                list = manifest_list::add(store, &list, rec, &AddOptions::default())
                    .with_context(|| format!("adding {image} to {name}"))?
                    .0;
            }
            list
        }
        Err(e) => return Err(e).with_context(|| format!("creating manifest list {name}")),
    };
    println!("{}", list.id.hex());
    Ok(0)
}

fn add(store: &Store, args: AddArgs) -> anyhow::Result<i32> {
    let list = lookup_list(store, &args.list)?;
    if args.image.contains("://") {
        bail!(
            "{}: only images in local storage can be added; pull it first (rbuild pull)",
            args.image
        );
    }
    let rec = lookup_image(store, &args.image)
        .with_context(|| format!("image {:?} for manifest list {}", args.image, list.name))?;
    let opts = AddOptions {
        os: args.entry.os,
        arch: args.entry.arch,
        variant: args.entry.variant,
        os_version: args.entry.os_version,
        os_features: args.entry.os_features,
        annotations: parse_annotations(&args.entry.annotations)?,
    };
    let (list, digest) = manifest_list::add(store, &list, &rec, &opts)
        .with_context(|| format!("adding {} to {}", args.image, list.name))?;
    println!("{}: {digest}", list.id.hex());
    Ok(0)
}

/// Re-adds the entry's image with its current description, changed by the
/// flags: `add` replaces an entry of the same manifest, and an edit the
/// flags do not name keeps what an earlier `add --arch …` set.
fn annotate(store: &Store, args: AnnotateArgs) -> anyhow::Result<i32> {
    let list = lookup_list(store, &args.list)?;
    let digest: Digest = match args.instance.parse() {
        Ok(d) => d,
        Err(_) => {
            let rec = lookup_image(store, &args.instance).with_context(|| {
                format!(
                    "{:?} is neither a manifest digest nor a local image",
                    args.instance
                )
            })?;
            rec.manifest
        }
    };
    let doc = manifest_list::read_document(store, &list)?;
    let Some(entry) = doc.entries.iter().find(|e| e.digest == digest) else {
        bail!(
            "manifest list {:?} has no entry {digest}; `rbuild manifest inspect {}` shows its entries",
            list.name,
            list.name
        );
    };
    let Some(instance) = list.instances.iter().find(|i| i.manifest == digest) else {
        bail!(
            "entry {digest} of manifest list {:?} is not an image in local storage; only those can be annotated",
            list.name
        );
    };
    let rec = store.image(&instance.image)?;
    let platform = entry.platform.clone().unwrap_or_default();
    let keep = |flag: Option<String>, now: &str| flag.or_else(|| Some(now.to_string()));
    let mut annotations = entry.annotations.clone();
    annotations.extend(parse_annotations(&args.entry.annotations)?);
    let opts = AddOptions {
        os: keep(args.entry.os, &platform.os),
        arch: keep(args.entry.arch, &platform.architecture),
        variant: keep(args.entry.variant, &platform.variant),
        os_version: keep(args.entry.os_version, &platform.os_version),
        os_features: if args.entry.os_features.is_empty() {
            platform.os_features.clone()
        } else {
            args.entry.os_features
        },
        annotations,
    };
    let (list, digest) = manifest_list::add(store, &list, &rec, &opts)
        .with_context(|| format!("annotating {digest} in {}", list.name))?;
    println!("{}: {digest}", list.id.hex());
    Ok(0)
}

fn remove(store: &Store, args: RemoveArgs) -> anyhow::Result<i32> {
    let list = lookup_list(store, &args.list)?;
    let digest: Digest = args
        .digest
        .parse()
        .with_context(|| format!("{:?} is not a manifest digest (sha256:…)", args.digest))?;
    let list = manifest_list::remove(store, &list, &digest)?;
    println!("{}: {digest}", list.id.hex());
    Ok(0)
}

/// A local list's index; else (and always for `docker://REF`) the manifest
/// or index REF names in its registry, as buildah's `manifest inspect` does.
fn inspect(store: &Store, args: InspectArgs) -> anyhow::Result<i32> {
    let remote = match args.list.strip_prefix("docker://") {
        Some(reference) => reference,
        None => match lookup_list(store, &args.list) {
            Ok(list) => {
                let doc = manifest_list::read_document(store, &list)?;
                println!("{}", String::from_utf8_lossy(&doc.to_pretty_json()));
                return Ok(0);
            }
            Err(e) if e.is_not_found() => &args.list,
            Err(e) => return Err(e.into()),
        },
    };
    let opts = super::pull::pull_options(&args.registry, None)?;
    let (bytes, _media_type, _digest) = match crate::registry::pull::fetch_manifest(remote, &opts)
    {
        Ok(found) => found,
        Err(e) if args.list.starts_with("docker://") => {
            return Err(e).with_context(|| format!("inspecting {}", args.list))
        }
        Err(e) => bail!(
            "{}: no manifest list of that name in local storage (`rbuild manifest create` makes one, `rbuild images` lists them), and reading it from a registry failed: {e}",
            args.list
        ),
    };
    let pretty = match ListDocument::parse(&bytes) {
        Ok(doc) => doc.to_pretty_json(),
        Err(_) => indent_json(&bytes),
    };
    println!("{}", String::from_utf8_lossy(&pretty));
    Ok(0)
}

/// JSON re-indented with four spaces, keys in their order (Go's
/// `json.Indent`, which buildah uses for a manifest that is not a list).
/// Bytes that are not JSON come back unchanged.
fn indent_json(bytes: &[u8]) -> Vec<u8> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len() * 2);
    let mut depth = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut Vec<u8>, depth: usize| {
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 4));
    };
    let mut iter = bytes.iter().copied().peekable();
    while let Some(b) = iter.next() {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'"' => {
                in_string = true;
                out.push(b);
            }
            b'{' | b'[' => {
                out.push(b);
                while iter.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    iter.next();
                }
                if matches!(iter.peek(), Some(b'}' | b']')) {
                    // Empty: `{}` / `[]` as Go prints them.
                    if let Some(close) = iter.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(b),
        }
    }
    out
}

fn rm(store: &Store, args: RmArgs) -> anyhow::Result<i32> {
    let mut failed = false;
    // buildah's report order: every name untagged, then the IDs.
    let mut untagged = Vec::new();
    let mut removed = Vec::new();
    for name in &args.lists {
        let gone = lookup_list(store, name).and_then(|list| {
            store.remove_list(&list.name)?;
            Ok(list)
        });
        match gone {
            Ok(list) => {
                untagged.push(list.name);
                removed.push(list.id);
            }
            Err(e) => {
                eprintln!("Error: {e:#}");
                failed = true;
            }
        }
    }
    for n in &untagged {
        println!("untagged: {n}");
    }
    for id in &removed {
        println!("{}", id.hex());
    }
    // buildah exits 125 when any list could not be removed.
    Ok(if failed { 125 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::indent_json;

    #[test]
    fn json_is_indented_as_go_does_it() {
        let raw = br#"{"schemaVersion":2,"config":{"digest":"sha256:ab","size":1},"layers":[],"annotations":{},"x":["a\"b,{}",1]}"#;
        let want = "{\n    \"schemaVersion\": 2,\n    \"config\": {\n        \"digest\": \"sha256:ab\",\n        \"size\": 1\n    },\n    \"layers\": [],\n    \"annotations\": {},\n    \"x\": [\n        \"a\\\"b,{}\",\n        1\n    ]\n}";
        assert_eq!(String::from_utf8(indent_json(raw)).unwrap(), want);
        assert_eq!(indent_json(b"not json"), b"not json");
    }
}
